//! Throttling of failed authentications: after too many failures from one peer address,
//! further attempts are refused without their secret being checked, so guessing a
//! ticket gets a handful of tries a minute instead of hundreds a second.
//!
//! Two ledgers: one per (address, authid), at `auth_failures_per_minute`, which stops
//! guessing one principal's secret without letting anyone lock a principal out from
//! elsewhere; and one per address at ten times that rate, which stops spraying many
//! authids while leaving room for the many users behind one reverse proxy.
//!
//! Each ledger is GCRA over failures only: a key may fail `burst` times at once, then
//! once per `60 s / rate`. governor implements GCRA too, but has no way to ask whether
//! a key is blocked without spending a cell, and a successful login must not spend one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked per ledger before expired ones are swept; past `HARD_CAP` live keys a new
/// key is not tracked (logged), so a flood of addresses cannot exhaust memory.
const SWEEP_AT: usize = 4_096;
const HARD_CAP: usize = 100_000;

#[derive(Debug)]
struct Ledger {
    /// Time between two allowed failures once the burst is spent.
    interval: Duration,
    /// How far ahead of now a key's theoretical arrival time may run (burst - 1 intervals).
    tolerance: Duration,
    /// Theoretical arrival time of each key's next failure.
    keys: Mutex<HashMap<String, Instant>>,
}

impl Ledger {
    fn new(per_minute: u32) -> Ledger {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        Ledger { interval, tolerance: interval * (per_minute - 1), keys: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // Every critical section leaves the map consistent; a poisoned lock is usable.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `key` must wait before it may fail again; zero when it may try now.
    fn wait(&self, key: &str, now: Instant) -> Duration {
        match self.lock().get(key) {
            Some(&tat) => tat.saturating_duration_since(now + self.tolerance),
            None => Duration::ZERO,
        }
    }

    fn record_failure(&self, key: &str, now: Instant) {
        let mut keys = self.lock();
        if keys.len() >= SWEEP_AT && !keys.contains_key(key) {
            keys.retain(|_, tat| *tat > now);
            if keys.len() >= HARD_CAP {
                tracing::warn!(keys = keys.len(), "authentication throttle full: a failure is not tracked");
                return;
            }
        }
        let tat = keys.entry(key.to_owned()).or_insert(now);
        *tat = (*tat).max(now) + self.interval;
    }
}

#[derive(Debug)]
pub struct Throttle {
    per_principal: Ledger,
    per_address: Ledger,
}

impl Throttle {
    pub fn new(failures_per_minute: u32) -> Throttle {
        Throttle {
            per_principal: Ledger::new(failures_per_minute),
            per_address: Ledger::new(failures_per_minute.saturating_mul(10)),
        }
    }

    /// How long an attempt by `authid` from `address` must wait; zero when it may proceed.
    pub fn wait(&self, address: &str, authid: &str, now: Instant) -> Duration {
        let principal = principal_key(address, authid);
        self.per_principal.wait(&principal, now).max(self.per_address.wait(address, now))
    }

    pub fn record_failure(&self, address: &str, authid: &str, now: Instant) {
        self.per_principal.record_failure(&principal_key(address, authid), now);
        self.per_address.record_failure(address, now);
    }
}

fn principal_key(address: &str, authid: &str) -> String {
    // The address never contains a newline, so the key is unambiguous.
    format!("{address}\n{authid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_then_one_per_interval() {
        let t = Throttle::new(10);
        let now = Instant::now();
        for i in 0..10 {
            assert_eq!(t.wait("10.0.0.1", "alice", now), Duration::ZERO, "failure {i}");
            t.record_failure("10.0.0.1", "alice", now);
        }
        // The eleventh attempt waits one interval (6 s), then one more is allowed.
        assert_eq!(t.wait("10.0.0.1", "alice", now), Duration::from_secs(6));
        assert_eq!(t.wait("10.0.0.1", "alice", now + Duration::from_secs(6)), Duration::ZERO);
        t.record_failure("10.0.0.1", "alice", now + Duration::from_secs(6));
        assert_eq!(t.wait("10.0.0.1", "alice", now + Duration::from_secs(6)), Duration::from_secs(6));
        // Another principal from the same address, and the same one from elsewhere,
        // are not held back.
        assert_eq!(t.wait("10.0.0.1", "bob", now), Duration::ZERO);
        assert_eq!(t.wait("10.0.0.2", "alice", now), Duration::ZERO);
    }

    #[test]
    fn many_authids_from_one_address_hit_the_address_ledger() {
        let t = Throttle::new(2);
        let now = Instant::now();
        for i in 0..20 {
            assert_eq!(t.wait("10.0.0.1", &format!("user{i}"), now), Duration::ZERO, "failure {i}");
            t.record_failure("10.0.0.1", &format!("user{i}"), now);
        }
        assert_eq!(t.wait("10.0.0.1", "user99", now), Duration::from_secs(3));
        assert_eq!(t.wait("10.0.0.2", "user99", now), Duration::ZERO);
    }

    #[test]
    fn expired_keys_are_swept() {
        let l = Ledger::new(60);
        let now = Instant::now();
        for i in 0..SWEEP_AT {
            l.record_failure(&i.to_string(), now);
        }
        assert_eq!(l.lock().len(), SWEEP_AT);
        l.record_failure("late", now + Duration::from_secs(2));
        assert_eq!(l.lock().len(), 1);
    }
}
