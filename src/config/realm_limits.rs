//! The `[limits]` table of a realm: what one realm (one tenant) may use, beside the
//! router-wide `[limits]` of the main file. Every value is optional and off by default.

use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Source};
use super::raw::RawRealmLimits;
use super::RealmLimits;

/// Validates a realm's `[limits]` found in `src`.
pub(super) fn realm_limits(src: &Source, raw: &RawRealmLimits, errors: &mut Vec<ConfigError>) -> RealmLimits {
    RealmLimits { max_call_timeout: positive(src, "max_call_timeout_ms", &raw.max_call_timeout_ms, errors).map(Duration::from_millis) }
}

/// A value that must be above zero when given.
fn positive(src: &Source, key: &str, v: &Option<Spanned<i64>>, errors: &mut Vec<ConfigError>) -> Option<u64> {
    let v = v.as_ref()?;
    match u64::try_from(*v.get_ref()) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errors.push(src.error(v.span(), format!("`{key}` must be greater than 0, got {}", v.get_ref())));
            None
        }
    }
}
