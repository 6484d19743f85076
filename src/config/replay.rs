//! The `[replay]` table of a realm: the realm's memory budget for stored events, the
//! database of durable topics, and the `[[replay.topics]]` rules that say which topics
//! are stored and how much of each. Like the rest of the configuration, every error is
//! collected with its file, line and column.

use std::collections::HashMap;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Source};
use super::raw::{RawReplay, RawTopic};
use super::uri::uri_and_policy;
use super::{ReplayConfig, TopicRetention};
use crate::wamp::uri::{is_reserved, MatchPolicy};

/// Below this a realm budget holds too few events to be worth a store.
const MIN_BUDGET_BYTES: i64 = 1024 * 1024;
/// A per-topic byte limit below this would not hold one ordinary event with its
/// overhead (`replay::event::OVERHEAD`).
const MIN_MAX_BYTES: i64 = 1024;
/// More events per topic than this is a database's job, not a replay ring's; it also
/// catches a digit too many.
const MAX_MAX_EVENTS: i64 = 10_000_000;

/// Validates `[replay]` of a realm found in `src`.
pub(super) fn replay(src: &Source, raw: RawReplay, errors: &mut Vec<ConfigError>) -> ReplayConfig {
    let before = errors.len();
    let budget = raw
        .budget_bytes
        .as_ref()
        .and_then(|v| bounded(src, "budget_bytes", v, MIN_BUDGET_BYTES, None, errors))
        .unwrap_or(ReplayConfig::DEFAULT_BUDGET_BYTES);
    // Rules are held to the budget only when it is the one written (or the default),
    // not a fallback standing in for an invalid value.
    let budget_known = errors.len() == before;
    if let Some(url) = &raw.database_url {
        database_url(src, url, errors);
    }
    let mut seen: HashMap<(String, MatchPolicy), usize> = HashMap::new();
    let mut topics = Vec::with_capacity(raw.topics.len());
    for t in raw.topics {
        let span = t.uri.span();
        let line = src.position(span.start).0;
        let Some(rule) = topic(src, t, budget_known.then_some(budget), errors) else { continue };
        // The first matching rule wins, so a repeat of a rule could never apply.
        let key = (rule.uri.clone(), rule.policy);
        if let Some(first) = seen.get(&key) {
            let msg = format!(
                "duplicate rule for `{}` (match `{}`), first on line {first}: it would never apply",
                rule.uri, rule.policy
            );
            errors.push(src.error(span, msg));
            continue;
        }
        seen.insert(key, line);
        topics.push(rule);
    }
    ReplayConfig {
        budget_bytes: budget,
        database_url: raw.database_url.map(Spanned::into_inner),
        topics,
    }
}

/// `[replay] database_url` when written: a PostgreSQL URL, as for `[graph]`. Whether
/// one is needed at all (a durable rule and no URL anywhere) is decided at start, as
/// for the graph, because the environment may supply it.
fn database_url(src: &Source, url: &Spanned<String>, errors: &mut Vec<ConfigError>) {
    let u = url.get_ref();
    let msg = if u.is_empty() {
        "database_url must not be empty: leave it out to use the realm's [graph] database, \
         else SWITCHYARD_DATABASE_URL or DATABASE_URL"
    } else if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
        "database_url must be a postgres:// or postgresql:// URL"
    } else {
        return;
    };
    errors.push(src.error(url.span(), msg));
}

/// One rule; `None` when its URI or match policy is unusable (the error is recorded).
/// `budget` is the realm's `budget_bytes`, `None` if the written one is invalid.
fn topic(
    src: &Source,
    raw: RawTopic,
    budget: Option<usize>,
    errors: &mut Vec<ConfigError>,
) -> Option<TopicRetention> {
    let policy = uri_and_policy(src, &raw.uri, raw.match_policy.as_ref(), errors);
    // Meta events and the router's own topics are the protocol's; a client reads them
    // through the meta API, and storing them would let one realm's traffic about
    // sessions crowd out its applications' history.
    if policy.is_some() && is_reserved(raw.uri.get_ref()) {
        let msg = format!(
            "topic `{}` is reserved (`wamp.` URIs belong to the protocol) and cannot be stored",
            raw.uri.get_ref()
        );
        errors.push(src.error(raw.uri.span(), msg));
    }
    let max_events = raw.max_events.as_ref().and_then(|v| {
        bounded(src, "max_events", v, 1, Some(MAX_MAX_EVENTS), errors)
    });
    let max_age = raw.max_age_secs.as_ref().and_then(|v| {
        bounded(src, "max_age_secs", v, 1, None, errors)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
    });
    let max_bytes = raw
        .max_bytes
        .as_ref()
        .and_then(|v| bounded(src, "max_bytes", v, MIN_MAX_BYTES, None, errors));
    // A topic limit above the realm's budget could never be reached: the budget evicts
    // first, so the operator meant something else.
    if let (Some(n), Some(b), Some(v)) = (max_bytes, budget, raw.max_bytes.as_ref()) {
        if n > b {
            let msg = format!("`max_bytes` ({n}) must not be larger than the realm's `budget_bytes` ({b})");
            errors.push(src.error(v.span(), msg));
        }
    }
    Some(TopicRetention {
        uri: raw.uri.into_inner(),
        policy: policy?,
        max_events: max_events.unwrap_or(TopicRetention::DEFAULT_MAX_EVENTS),
        max_age,
        max_bytes,
        durable: raw.durable,
    })
}

/// `value` as a `usize` if it is at least `min` (and at most `max`); otherwise records
/// why not. Read as `i64` so a negative number is this error, not a parse failure.
fn bounded(
    src: &Source,
    key: &str,
    value: &Spanned<i64>,
    min: i64,
    max: Option<i64>,
    errors: &mut Vec<ConfigError>,
) -> Option<usize> {
    let n = *value.get_ref();
    let msg = match max {
        Some(max) if n < min || n > max => format!("`{key}` must be between {min} and {max}, got {n}"),
        None if n < min => format!("`{key}` must be at least {min}, got {n}"),
        _ => return usize::try_from(n).ok(),
    };
    errors.push(src.error(value.span(), msg));
    None
}
