//! The realm's rate limits for HTTP bridge requests. A WAMP session has its own token
//! buckets (`router::quota`); a bridge session lives for one request, so buckets of its
//! own would start full every time and limit nothing. The realm's per-session rates
//! (`publications_per_second`, `calls_per_second` and their bursts) apply instead per
//! authid, as if each principal held one session, and per peer address for anonymous
//! requests, whose authids are made up per request.
//!
//! Bounded: at most `MAX_KEYS` buckets per kind. Full buckets (a client that has not
//! been near its limit lately) are forgotten when the map fills, which changes no
//! answer; when every bucket is still in use, a new client is refused until some fill
//! again (fail closed, logged), so a flood of addresses cannot exhaust memory.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Rate, RealmLimits};

/// Buckets kept per kind (publications, calls) at most.
pub const MAX_KEYS: usize = 10_000;

/// Whose bucket a request spends from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    Authid(String),
    /// An anonymous request's peer address (without port).
    Address(String),
}

/// Why a request is refused: over its rate (with the wait until the next token), or
/// the map of buckets is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Over(Duration),
    Full,
}

#[derive(Debug, Default)]
pub struct BridgeRates {
    publications: Option<DefaultKeyedRateLimiter<RateKey>>,
    calls: Option<DefaultKeyedRateLimiter<RateKey>>,
}

fn limiter(rate: Option<Rate>) -> Option<DefaultKeyedRateLimiter<RateKey>> {
    let rate = rate?;
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
    Some(RateLimiter::hashmap(Quota::per_second(per_second).allow_burst(burst)))
}

impl BridgeRates {
    pub fn new(limits: &RealmLimits) -> BridgeRates {
        BridgeRates { publications: limiter(limits.publications), calls: limiter(limits.calls) }
    }

    /// Takes a token for a publication of `key`.
    pub fn publication(&self, key: &RateKey) -> Result<(), Refused> {
        take(self.publications.as_ref(), key)
    }

    /// Takes a token for a call of `key`.
    pub fn call(&self, key: &RateKey) -> Result<(), Refused> {
        take(self.calls.as_ref(), key)
    }
}

fn take(limiter: Option<&DefaultKeyedRateLimiter<RateKey>>, key: &RateKey) -> Result<(), Refused> {
    let Some(limiter) = limiter else { return Ok(()) };
    if limiter.len() >= MAX_KEYS {
        limiter.retain_recent();
        if limiter.len() >= MAX_KEYS {
            tracing::warn!(keys = limiter.len(), "HTTP bridge rate limits: every bucket is in use; a request is refused");
            return Err(Refused::Full);
        }
    }
    limiter.check_key(key).map_err(|not_until| Refused::Over(not_until.wait_time_from(DefaultClock::default().now())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bucket_per_authid_and_per_anonymous_address() {
        let limits = RealmLimits { publications: Some(Rate { per_second: 10, burst: 3 }), ..RealmLimits::default() };
        let rates = BridgeRates::new(&limits);
        let alice = RateKey::Authid("alice".into());
        let taken = (0..10).filter(|_| rates.publication(&alice).is_ok()).count();
        assert_eq!(taken, 3, "the burst, and not one more at once");
        match rates.publication(&alice) {
            Err(Refused::Over(wait)) => assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}"),
            other => panic!("expected a wait, got {other:?}"),
        }
        // Another principal, and an anonymous address spelled like an authid, have their own.
        assert_eq!(rates.publication(&RateKey::Authid("bob".into())), Ok(()));
        assert_eq!(rates.publication(&RateKey::Address("alice".into())), Ok(()));
        assert!((0..100).all(|_| rates.call(&alice).is_ok()), "no limit on calls");
    }

    #[test]
    fn full_buckets_are_forgotten_and_the_map_is_bounded() {
        let limits = RealmLimits { calls: Some(Rate { per_second: 1_000_000, burst: 1 }), ..RealmLimits::default() };
        let rates = BridgeRates::new(&limits);
        for i in 0..MAX_KEYS {
            assert_eq!(rates.call(&RateKey::Address(format!("10.0.{}.{}", i / 256, i % 256))), Ok(()));
        }
        // A microsecond refills every bucket: the map makes room for the newcomer.
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(rates.call(&RateKey::Authid("new".into())), Ok(()));
        let limiter = rates.calls.as_ref().unwrap();
        assert!(limiter.len() < 10, "{}", limiter.len());

        let slow = BridgeRates::new(&RealmLimits { calls: Some(Rate { per_second: 1, burst: 1 }), ..RealmLimits::default() });
        for i in 0..MAX_KEYS {
            assert_eq!(slow.call(&RateKey::Address(i.to_string())), Ok(()));
        }
        assert_eq!(slow.call(&RateKey::Authid("late".into())), Err(Refused::Full));
    }
}
