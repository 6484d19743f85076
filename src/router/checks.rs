//! The checks of a URI a client sends (length, syntax under the configured rules, the
//! router's reserved namespace) and the reading of an authorizer's answer, shared by
//! WAMP sessions and the HTTP bridge so that both hold requests to the same rules.

use super::error::WampError;
use crate::auth::{Action, Decision, Undecided};
use crate::config::Limits;
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
