//! Per-session rate limits of a realm (`[limits]` of the realm): token buckets for
//! publications and calls, checked before a request is authorized.
//!
//! At the limit a PUBLISH is dropped (answered with `wamp.error.rate_limited` when it
//! asked for an acknowledgement) and a CALL is answered with that error; both are
//! counted per realm in `/metrics` (`quota_refusals`). Then the session reads nothing
//! more from its peer until its bucket holds a token again: what the peer sends
//! meanwhile waits in its socket, so a flooding session costs the router its rate, not
//! its flood, and the CPU it would have taken stays with the other realms. Realms share
//! no bucket.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::{Rate, RealmLimits};

/// The buckets of one session.
#[derive(Debug, Default)]
pub struct Rates {
    publications: Option<DefaultDirectRateLimiter>,
    calls: Option<DefaultDirectRateLimiter>,
}

fn bucket(rate: Option<Rate>) -> Option<DefaultDirectRateLimiter> {
    let rate = rate?;
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
    Some(RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)))
}

impl Rates {
    pub fn new(limits: &RealmLimits) -> Rates {
        Rates { publications: bucket(limits.publications), calls: bucket(limits.calls) }
    }

    /// Takes a token for a publication; when the session is over its rate, how long
    /// until the bucket holds one again.
    pub fn publication(&self) -> Result<(), Duration> {
        take(self.publications.as_ref())
    }

    /// Takes a token for a call; when over the rate, how long until there is one.
    pub fn call(&self) -> Result<(), Duration> {
        take(self.calls.as_ref())
    }
}

fn take(bucket: Option<&DefaultDirectRateLimiter>) -> Result<(), Duration> {
    match bucket.map(RateLimiter::check) {
        None | Some(Ok(())) => Ok(()),
        Some(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate() {
        let limits = RealmLimits { publications: Some(Rate { per_second: 20, burst: 5 }), ..RealmLimits::default() };
        let rates = Rates::new(&limits);
        let taken = (0..10).filter(|_| rates.publication().is_ok()).count();
        assert_eq!(taken, 5, "the burst, and not one more at once");
        // One token every 50 ms: the refusal says how long until the next.
        let wait = rates.publication().unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(50), "{wait:?}");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!((0..10).filter(|_| rates.publication().is_ok()).count(), 2);
        assert!((0..1000).all(|_| rates.call().is_ok()), "no limit on calls");
    }
}
