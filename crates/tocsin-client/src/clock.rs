//! Suspend/resume detection by comparing the monotonic clock with the wall clock.
//!
//! On Linux (and macOS) the monotonic clock behind [`Instant`] stops while the machine
//! sleeps, and so do tokio timers: after a resume the heartbeat would take up to a
//! full timeout to notice the socket is dead. The wall clock keeps counting through
//! the sleep, so when wall time advanced more than monotonic time between two checks,
//! the machine was suspended (or the clock was set forward) and the engine should
//! reconnect at once. A wall clock that went *back* beyond the threshold is reported
//! too: timestamps taken before it are no longer comparable.
//!
//! Where the monotonic clock counts sleep (Windows), no jump shows; the OS resume
//! signal, where the app has one, covers that case.
//!
//! The clocks are passed in through [`Clock`] so tests simulate a jump without sleeping.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{Stream, StreamExt, stream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The default gap between wall and monotonic time that counts as a jump: well above
/// scheduling noise and NTP slewing, well below a heartbeat timeout's worth of sleep.
pub const DEFAULT_JUMP_THRESHOLD: Duration = Duration::from_secs(5);

/// A source of both clocks, so tests can fake them.
pub trait Clock: Send + Sync {
    /// Monotonic time (stops during suspend on Linux and macOS).
    fn now_mono(&self) -> Instant;
    /// Wall-clock time (keeps counting through suspend; may be set back or forward).
    fn now_wall(&self) -> SystemTime;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_mono(&self) -> Instant {
        Instant::now()
    }

    fn now_wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Which way the wall clock moved relative to the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JumpDirection {
    /// Wall time ran ahead: a resume from suspend (or the clock was set forward).
    Forward,
    /// Wall time went back: the clock was set back.
    Backward,
}

/// A detected discontinuity between the two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    /// Which way the wall clock moved.
    pub direction: JumpDirection,
    /// How far apart the two clocks drifted since the previous check (for a resume,
    /// roughly how long the machine slept).
    pub by: Duration,
}

/// Remembers the two clocks at the last check and compares the next reading with them.
#[derive(Debug, Clone)]
pub struct ClockWatch {
    last_mono: Instant,
    last_wall: SystemTime,
    threshold: Duration,
}

impl ClockWatch {
    /// Starts watching from the given readings.
    pub fn new(now_mono: Instant, now_wall: SystemTime, threshold: Duration) -> Self {
        ClockWatch {
            last_mono: now_mono,
            last_wall: now_wall,
            threshold,
        }
    }

    /// Starts watching from `clock`'s current readings.
    pub fn start(clock: &dyn Clock, threshold: Duration) -> Self {
        ClockWatch::new(clock.now_mono(), clock.now_wall(), threshold)
    }

    /// Compares the new readings with the previous ones (and keeps the new ones):
    /// a jump when the wall clock moved more than `threshold` away from the
    /// monotonic clock in either direction.
    pub fn check(&mut self, now_mono: Instant, now_wall: SystemTime) -> Option<Jump> {
        let mono = now_mono.saturating_duration_since(self.last_mono);
        let wall = now_wall.duration_since(self.last_wall);
        self.last_mono = now_mono;
        self.last_wall = now_wall;
        let (direction, by) = match wall {
            Ok(ahead) if ahead >= mono => (JumpDirection::Forward, ahead - mono),
            Ok(ahead) => (JumpDirection::Backward, mono - ahead),
            Err(back) => (
                JumpDirection::Backward,
                mono.saturating_add(back.duration()),
            ),
        };
        (by > self.threshold).then_some(Jump { direction, by })
    }
}

/// Checks the clocks at each item of `ticks` against `watch` (whose readings are the
/// baseline) and sends each jump on `tx`. Ends when `ticks` ends or the receiver is
/// gone. A jump found while one is still unread is dropped: one pending jump already
/// makes the engine reconnect.
pub async fn run_watch(
    clock: Arc<dyn Clock>,
    mut watch: ClockWatch,
    ticks: impl Stream<Item = ()>,
    tx: mpsc::Sender<Jump>,
) {
    let mut ticks = pin!(ticks);
    loop {
        tokio::select! {
            () = tx.closed() => return,
            tick = ticks.next() => {
                if tick.is_none() {
                    return;
                }
            }
        }
        if let Some(jump) = watch.check(clock.now_mono(), clock.now_wall()) {
            tracing::info!(
                ?jump,
                "clock jump: the machine probably resumed from suspend"
            );
            if let Err(TrySendError::Closed(_)) = tx.try_send(jump) {
                return;
            }
        }
    }
}

/// Spawns [`run_watch`] on a tokio interval of `tick` (missed ticks are not burst
/// after a resume), with the clocks' current readings as the baseline. The task ends
/// when the receiver of `tx` is dropped.
pub fn spawn_watch(
    clock: Arc<dyn Clock>,
    tick: Duration,
    threshold: Duration,
    tx: mpsc::Sender<Jump>,
) -> JoinHandle<()> {
    let watch = ClockWatch::start(clock.as_ref(), threshold);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ticks = stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    });
    tokio::spawn(run_watch(clock, watch, ticks, tx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock whose two readings the test moves by hand.
    struct FakeClock {
        now: Mutex<(Instant, SystemTime)>,
    }

    impl FakeClock {
        fn new() -> Arc<Self> {
            Arc::new(FakeClock {
                now: Mutex::new((Instant::now(), SystemTime::UNIX_EPOCH + secs(1_800_000_000))),
            })
        }

        /// Advances both clocks by `both`, then the wall clock alone by `wall_only`.
        fn advance(&self, both: Duration, wall_only: Duration) {
            let mut now = self.now.lock().expect("lock");
            now.0 += both;
            now.1 += both + wall_only;
        }

        fn set_wall_back(&self, by: Duration) {
            let mut now = self.now.lock().expect("lock");
            now.1 -= by;
        }
    }

    impl Clock for FakeClock {
        fn now_mono(&self) -> Instant {
            self.now.lock().expect("lock").0
        }
        fn now_wall(&self) -> SystemTime {
            self.now.lock().expect("lock").1
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn check(watch: &mut ClockWatch, clock: &FakeClock) -> Option<Jump> {
        watch.check(clock.now_mono(), clock.now_wall())
    }

    #[test]
    fn clocks_in_step_are_not_a_jump() {
        let clock = FakeClock::new();
        let mut watch = ClockWatch::start(clock.as_ref(), DEFAULT_JUMP_THRESHOLD);
        clock.advance(secs(3600), Duration::ZERO);
        assert_eq!(check(&mut watch, &clock), None);
        clock.advance(secs(10), secs(5));
        assert_eq!(
            check(&mut watch, &clock),
            None,
            "exactly the threshold is noise"
        );
    }

    #[test]
    fn a_suspend_is_a_forward_jump_reported_once() {
        let clock = FakeClock::new();
        let mut watch = ClockWatch::start(clock.as_ref(), DEFAULT_JUMP_THRESHOLD);
        clock.advance(secs(2), secs(3600));
        assert_eq!(
            check(&mut watch, &clock),
            Some(Jump {
                direction: JumpDirection::Forward,
                by: secs(3600)
            })
        );
        clock.advance(secs(2), Duration::ZERO);
        assert_eq!(
            check(&mut watch, &clock),
            None,
            "the new readings are the base"
        );
    }

    #[test]
    fn a_clock_set_back_is_a_backward_jump() {
        let clock = FakeClock::new();
        let mut watch = ClockWatch::start(clock.as_ref(), DEFAULT_JUMP_THRESHOLD);
        clock.advance(secs(2), Duration::ZERO);
        clock.set_wall_back(secs(60));
        assert_eq!(
            check(&mut watch, &clock),
            Some(Jump {
                direction: JumpDirection::Backward,
                by: secs(60)
            })
        );
        // Wall behind monotonic without going back in absolute terms.
        clock.advance(secs(20), Duration::ZERO);
        clock.set_wall_back(secs(10));
        assert_eq!(
            check(&mut watch, &clock).map(|j| (j.direction, j.by)),
            Some((JumpDirection::Backward, secs(10)))
        );
        clock.advance(secs(20), Duration::ZERO);
        clock.set_wall_back(secs(4));
        assert_eq!(check(&mut watch, &clock), None, "within the threshold");
    }

    #[tokio::test]
    async fn run_watch_reports_only_the_ticks_that_saw_a_jump() {
        let clock = FakeClock::new();
        let watch = ClockWatch::start(clock.as_ref(), DEFAULT_JUMP_THRESHOLD);
        // Each tick moves the fake clocks when the watch asks for it, i.e. right after
        // it checked the previous one: (both clocks, wall clock alone).
        let steps = [(30, 0), (1, 120), (30, 0), (30, 2), (5, 0)];
        let ticks = stream::iter(steps).map({
            let clock = clock.clone();
            move |(both, wall_only)| clock.advance(secs(both), secs(wall_only))
        });
        let (tx, mut rx) = mpsc::channel(8);
        run_watch(clock.clone(), watch, ticks, tx).await;

        let mut jumps = Vec::new();
        while let Some(jump) = rx.recv().await {
            jumps.push(jump);
        }
        assert_eq!(
            jumps,
            [Jump {
                direction: JumpDirection::Forward,
                by: secs(120)
            }]
        );
    }

    #[tokio::test]
    async fn spawned_watch_sends_on_a_jump_and_stops_when_unheard() {
        let clock = FakeClock::new();
        let (tx, mut rx) = mpsc::channel(1);
        let task = spawn_watch(
            clock.clone(),
            Duration::from_millis(5),
            DEFAULT_JUMP_THRESHOLD,
            tx,
        );
        clock.advance(Duration::ZERO, secs(600));
        let jump = tokio::time::timeout(secs(30), rx.recv())
            .await
            .expect("a jump within the timeout")
            .expect("channel open");
        assert_eq!(jump.by, secs(600));

        drop(rx);
        tokio::time::timeout(secs(30), task)
            .await
            .expect("the task ends once nobody listens")
            .expect("no panic");
    }
}
