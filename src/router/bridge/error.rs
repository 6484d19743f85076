//! Why an HTTP bridge request did not succeed, with the WAMP error URI each case is
//! known by: the router's own refusals (`WampError`), a rate limit (with how long to
//! wait), and a call answered with ERROR (by its callee, or by the router on its
//! behalf: a timeout, a cancellation), whose URI and payload are passed on as they came.

use std::time::Duration;

use crate::auth::AuthError;
use crate::router::error::WampError;
use crate::wamp::{Args, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Router(#[from] WampError),
    /// Over the realm's publication or call rate.
    #[error("{message}")]
    RateLimited { message: String, retry_after: Duration },
    /// The call ended with an ERROR: its URI and Arguments/ArgumentsKw (JSON).
    #[error("{}", answered_message(.uri, .payload))]
    Answered { uri: String, payload: Args },
    /// Something the router should never do (its own answer unreadable): a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BridgeError {
    pub fn uri(&self) -> &str {
        match self {
            BridgeError::Router(e) => e.uri(),
            BridgeError::RateLimited { .. } => "wamp.error.rate_limited",
            BridgeError::Answered { uri, .. } => uri,
            BridgeError::Internal(_) => "wamp.error.runtime_error",
        }
    }

    /// The credential could not be checked (the token database is unreachable): the
    /// client is not at fault, and may retry.
    pub fn credential_unchecked(&self) -> bool {
        matches!(self, BridgeError::Router(WampError::Auth(AuthError::Unavailable(_))))
    }

    /// How long the client should wait before it tries again, when that is known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BridgeError::RateLimited { retry_after, .. } => Some(*retry_after),
            BridgeError::Router(WampError::Auth(AuthError::Throttled { retry_after_s })) => Some(Duration::from_secs(*retry_after_s)),
            _ => None,
        }
    }
}

/// A credential the bridge cannot read (an `Authorization` scheme other than Bearer and
/// Basic, or a malformed one): `wamp.error.no_auth_method`, as for a HELLO that offers no
/// method the realm accepts.
pub fn no_auth_method(message: impl Into<String>) -> WampError {
    WampError::Auth(AuthError::NoAuthMethod(message.into()))
}

/// What an ERROR says in words: its first argument when that is a string (the router's
/// errors, and most libraries' exceptions, put their message there), else its URI.
fn answered_message(uri: &str, payload: &Args) -> String {
    let first = payload.args.as_ref().and_then(|p| p.to_value().ok()).and_then(|v| match v {
        Value::List(mut l) if !l.is_empty() => match l.swap_remove(0) {
            Value::Str(s) => Some(s),
            _ => None,
        },
        _ => None,
    });
    first.unwrap_or_else(|| format!("the call failed with {uri}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::{Payload, Serializer};

    fn args(json: &str) -> Args {
        Args { args: Some(Payload::from_encoded(Serializer::Json, bytes::Bytes::copy_from_slice(json.as_bytes()))), kwargs: None }
    }

    #[test]
    fn uris_messages_and_waits() {
        let answered = BridgeError::Answered { uri: "com.example.oops".into(), payload: args(r#"["it broke",2]"#) };
        assert_eq!((answered.uri(), answered.to_string().as_str()), ("com.example.oops", "it broke"));
        let bare = BridgeError::Answered { uri: "com.example.oops".into(), payload: args("[3]") };
        assert_eq!(bare.to_string(), "the call failed with com.example.oops");
        let limited = BridgeError::RateLimited { message: "slow down".into(), retry_after: Duration::from_millis(40) };
        assert_eq!((limited.uri(), limited.retry_after()), ("wamp.error.rate_limited", Some(Duration::from_millis(40))));
        let throttled = BridgeError::from(WampError::Auth(AuthError::Throttled { retry_after_s: 6 }));
        assert_eq!((throttled.uri(), throttled.retry_after()), ("wamp.error.authentication_failed", Some(Duration::from_secs(6))));
        assert_eq!(BridgeError::from(WampError::NoSuchProcedure("p".into())).retry_after(), None);
    }
}
