//! Per-session rate limits of a realm (`[limits]` of the realm): token buckets for
//! publications and calls, checked before a request is authorized, so a flooding
//! session costs the router one atomic operation per refused message.
//!
//! At the limit a PUBLISH is dropped (answered with `wamp.error.rate_limited` when it
//! asked for an acknowledgement) and a CALL is answered with that error; both are
//! counted per realm in `/metrics` (`quota_refusals`). Realms share nothing, so one
//! tenant's flood never spends another's tokens.

use std::num::NonZeroU32;

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

    /// Takes a token for a publication; false when the session is over its rate.
    pub fn publication(&self) -> bool {
        self.publications.as_ref().is_none_or(|b| b.check().is_ok())
    }

    /// Takes a token for a call; false when the session is over its rate.
    pub fn call(&self) -> bool {
        self.calls.as_ref().is_none_or(|b| b.check().is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate() {
        let limits = RealmLimits { publications: Some(Rate { per_second: 20, burst: 5 }), ..RealmLimits::default() };
        let rates = Rates::new(&limits);
        let taken = (0..10).filter(|_| rates.publication()).count();
        assert_eq!(taken, 5, "the burst, and not one more at once");
        // One token every 50 ms.
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert_eq!((0..10).filter(|_| rates.publication()).count(), 2);
        assert!((0..1000).all(|_| rates.call()), "no limit on calls");
    }
}
