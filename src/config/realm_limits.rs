//! The `[limits]` table of a realm: what one realm (one tenant) and each of its
//! sessions may use, beside the router-wide `[limits]` of the main file. Every value
//! is optional and off by default.

use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Source};
use super::raw::RawRealmLimits;
use super::limit_reader::LimitReader;
use super::{Rate, RealmLimits};

/// Validates a realm's `[limits]` found in `src`.
pub(super) fn realm_limits(src: &Source, raw: &RawRealmLimits, errors: &mut Vec<ConfigError>) -> RealmLimits {
    let mut reader = LimitReader { src, errors };
    let mut positive = |key: &str, v: &Option<Spanned<i64>>| reader.int(key, v, false);
    let max_call_timeout = positive("max_call_timeout_ms", &raw.max_call_timeout_ms).map(Duration::from_millis);
    let max_sessions = positive("max_sessions", &raw.max_sessions).map(|n| n as usize);
    let max_sessions_per_authid = positive("max_sessions_per_authid", &raw.max_sessions_per_authid).map(|n| n as usize);
    let publications = rate(positive("publications_per_second", &raw.publications_per_second), positive("publication_burst", &raw.publication_burst));
    let calls = rate(positive("calls_per_second", &raw.calls_per_second), positive("call_burst", &raw.call_burst));
    // A burst without a rate limits nothing: say so rather than ignore it.
    for (key, burst, per_second) in [
        ("publication_burst", &raw.publication_burst, &raw.publications_per_second),
        ("call_burst", &raw.call_burst, &raw.calls_per_second),
    ] {
        if let (Some(b), None) = (burst, per_second) {
            let rate_key = key.replace("_burst", "s_per_second");
            errors.push(src.error(b.span(), format!("`{key}` needs `{rate_key}`")));
        }
    }
    RealmLimits { max_call_timeout, max_sessions, max_sessions_per_authid, publications, calls }
}

/// A bucket refilled at `per_second`, holding `burst` (default: one second's worth).
fn rate(per_second: Option<u64>, burst: Option<u64>) -> Option<Rate> {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    per_second.map(|r| Rate { per_second: clamp(r), burst: clamp(burst.unwrap_or(r)) })
}
