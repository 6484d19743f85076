//! The checks of a URI a client sends (length, syntax under the configured rules, the
//! router's reserved namespace), waiting for and reading an authorizer's answer, and whether a
//! durable topic can take a publication, shared by WAMP sessions and the HTTP bridge so
//! that both hold requests to the same rules.

use std::future::Future;
use std::sync::Arc;

use super::error::WampError;
use super::metrics::Metrics;
use crate::auth::{Action, Decision, Permissions, Request, Undecided};
use crate::config::Limits;
use crate::replay::durable::Durable;
use crate::replay::{ReplayError, Store};
use crate::wamp::uri::{self, MatchPolicy};

/// At most `max_uri_length` bytes.
pub fn uri_length(limits: &Limits, uri: &str) -> Result<(), WampError> {
    let limit = limits.max_uri_length;
    if uri.len() > limit {
        return Err(WampError::UriTooLong { len: uri.len(), limit });
    }
    Ok(())
}

/// A URI (or, for a pattern policy, a pattern) valid under the configured rules.
pub fn uri(limits: &Limits, uri: &str, policy: MatchPolicy) -> Result<(), WampError> {
    uri_length(limits, uri)?;
    if uri::is_valid(uri, policy, limits.strict_uris) {
        Ok(())
    } else {
        Err(WampError::InvalidUri(uri.to_owned()))
    }
}

/// A URI the client publishes or registers to: valid, and outside the `wamp`
/// namespace, which clients may use only where the router serves it (meta topics to
/// subscribe to, meta procedures to call).
pub fn own_uri(limits: &Limits, uri: &str, policy: MatchPolicy) -> Result<(), WampError> {
    self::uri(limits, uri, policy)?;
    if uri::is_reserved(uri) {
        return Err(WampError::ReservedUri(uri.to_owned()));
    }
    Ok(())
}

/// What a request does with its authorizer's answer: proceed, or the error to answer
/// with (`not_authorized`, or `authorization_failed` when it could not be decided).
pub fn permitted(d: Result<Decision, Undecided>, action: Action, uri: &str) -> Result<Decision, WampError> {
    match d {
        Ok(d) if d.allowed => Ok(d),
        Ok(_) => Err(WampError::NotAuthorized { action: action.as_str(), uri: uri.to_owned() }),
        Err(e) => Err(e.into()),
    }
}

/// The authorizer's answer when it was not in memory (`Check::Ask`): counted as a
/// wait, and as a failure when it cannot be decided. The future owns what it needs, so
/// a session can park it while its later messages wait behind it.
pub fn decide_later(metrics: &Arc<Metrics>, permissions: &Arc<dyn Permissions>, req: Request<'_>) -> impl Future<Output = Result<Decision, Undecided>> + Send + 'static {
    metrics.authorization_waits.inc();
    let (metrics, answer) = (metrics.clone(), permissions.decide(req));
    async move {
        let d = answer.await;
        if d.is_err() {
            metrics.authorization_failures.inc();
        }
        d
    }
}

/// The durable writer whose bounded queue a publication to `topic` must take a place
/// in first (`None`: the topic is not durable). While the event store is offline a
/// durable topic's publication is refused, and counted: it could not be kept.
pub fn durable_queue<'a>(store: &'a Store, metrics: &Metrics, topic: &str) -> Result<Option<&'a Durable>, WampError> {
    store.durable_for(topic).map_err(|offline| {
        metrics.publications_refused_offline.inc();
        WampError::Unavailable(format!("{offline}: the topic is durable, so the event is refused"))
    })
}

/// Why a publication waiting for a place in the durable writer's queue got none.
pub fn no_place(e: ReplayError) -> WampError {
    WampError::Unavailable(format!("the event store cannot take the event: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_syntax_and_the_reserved_namespace() {
        let limits = Limits { max_uri_length: 10, ..Limits::default() };
        assert_eq!(uri(&limits, "com.a.b", MatchPolicy::Exact), Ok(()));
        assert_eq!(uri(&limits, "com.a.bcdef", MatchPolicy::Exact), Err(WampError::UriTooLong { len: 11, limit: 10 }));
        assert_eq!(uri(&limits, "com..b", MatchPolicy::Exact), Err(WampError::InvalidUri("com..b".into())));
        assert_eq!(uri(&limits, "com..b", MatchPolicy::Wildcard), Ok(()));
        assert_eq!(uri(&limits, "wamp.x", MatchPolicy::Exact), Ok(()));
        assert_eq!(own_uri(&limits, "wamp.x", MatchPolicy::Exact), Err(WampError::ReservedUri("wamp.x".into())));
        assert_eq!(own_uri(&limits, "Com.A", MatchPolicy::Exact), Err(WampError::InvalidUri("Com.A".into())));
    }
}
