//! One clock for the whole benchmark process: microseconds since it started.
//!
//! Publishers and clients live in the same process, so a publish stamps the
//! notification's body with this clock and the receiving client subtracts it from the
//! same clock: end-to-end latency without any clock synchronisation.

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the benchmark process started (monotonic).
pub fn now_us() -> u64 {
    u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Starts the clock; call once at start so the first reading is not the epoch itself.
pub fn start() {
    let _ = epoch();
}

/// The marker a publisher puts in a notification body: `bench-t=<µs>`.
pub fn stamp(at_us: u64) -> String {
    format!("bench-t={at_us}")
}

/// Reads a [`stamp`] back from a body, wherever it is in it.
pub fn read_stamp(body: &str) -> Option<u64> {
    let start = body.find("bench-t=")? + "bench-t=".len();
    let digits: &str = &body[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_from_a_longer_body() {
        let body = format!("Sauvegarde — {} (test)", stamp(123_456));
        assert_eq!(read_stamp(&body), Some(123_456));
        assert_eq!(read_stamp("no stamp here"), None);
    }
}
