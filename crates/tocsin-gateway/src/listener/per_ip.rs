//! Open TCP connections per source address, capped.
//!
//! One address holding thousands of sockets (silent, or slowly trickling) used up the
//! gateway's file descriptors, and `/healthz` and new WebSockets timed out for
//! everyone. Each accepted connection takes a [`Slot`] for its address and gives it
//! back when it ends; past the cap the connection is answered with a short 503 and
//! closed. IPv6 addresses count per /64 (one host usually holds a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The counts per address. Std mutex: held only to add or remove one.
pub struct PerIp {
    /// The most connections one address may hold; 0 means no cap.
    max: usize,
    /// Open connections per address (absent = none).
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's share of its address's count, returned on drop.
pub struct Slot {
    /// The limiter, to give the slot back.
    limiter: Arc<PerIp>,
    /// The address it counts against.
    key: IpAddr,
}

impl PerIp {
    /// A limiter allowing `max` connections per address (0: unlimited).
    pub fn new(max: usize) -> Arc<PerIp> {
        Arc::new(PerIp {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `peer`, or `None` when the address is at its cap.
    pub fn acquire(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let key = key_of(peer);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            limiter: self.clone(),
            key,
        })
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Each critical section leaves the map consistent.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The address a connection counts against: IPv4 as is (an IPv4-mapped IPv6 address
/// as its IPv4), IPv6 by its /64.
fn key_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_slots_come_back() {
        let limiter = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = limiter.acquire(a).expect("1st");
        let _second = limiter.acquire(a).expect("2nd");
        assert!(limiter.acquire(a).is_none(), "the cap");
        assert!(limiter.acquire(b).is_some(), "per address");
        drop(first);
        assert!(limiter.acquire(a).is_some(), "a slot came back");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = PerIp::new(1);
        let _held = limiter
            .acquire("2001:db8:1:2::1".parse().expect("ip"))
            .expect("1st");
        assert!(
            limiter
                .acquire("2001:db8:1:2::ffff".parse().expect("ip"))
                .is_none()
        );
        assert!(
            limiter
                .acquire("2001:db8:1:3::1".parse().expect("ip"))
                .is_some()
        );
        let _v4 = limiter
            .acquire("192.0.2.7".parse().expect("ip"))
            .expect("v4");
        assert!(
            limiter
                .acquire("::ffff:192.0.2.7".parse().expect("ip"))
                .is_none()
        );
    }

    #[test]
    fn zero_means_no_cap() {
        let limiter = PerIp::new(0);
        let held: Vec<Slot> = (0..100)
            .filter_map(|_| limiter.acquire("10.0.0.1".parse().expect("ip")))
            .collect();
        assert_eq!(held.len(), 100);
    }
}
