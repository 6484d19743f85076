//! Errors of authentication and authorization, each carrying the WAMP error URI it
//! maps to. `auth/` does not know the router's own error type: the router converts
//! these (`router/error.rs`), so imports keep flowing one way.

use thiserror::Error;

/// Why a peer was not let in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// None of the offered methods is accepted on this realm.
    #[error("{0}")]
    NoAuthMethod(String),
    /// A wrong, unknown, expired or revoked secret; the message says which when it is
    /// safe to say.
    #[error("{0}")]
    Failed(String),
    #[error("too many failed authentications from this address; retry in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    /// The credential could not be checked (the token database is unreachable):
    /// refused, and not counted as a failed guess.
    #[error("{0}")]
    Unavailable(String),
    /// The HELLO itself is malformed (e.g. `authmethods` is not a list).
    #[error("{0}")]
    Malformed(String),
}

impl AuthError {
    pub fn uri(&self) -> &'static str {
        match self {
            AuthError::NoAuthMethod(_) => "wamp.error.no_auth_method",
            AuthError::Failed(_) | AuthError::Throttled { .. } | AuthError::Unavailable(_) => {
                "wamp.error.authentication_failed"
            }
            AuthError::Malformed(_) => "wamp.error.protocol_violation",
        }
    }
}

/// An authorizer could not decide (its database is unreachable, say). The router
/// refuses: fail closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("authorization could not be decided: {0}")]
pub struct Undecided(pub String);

impl Undecided {
    pub const URI: &'static str = "wamp.error.authorization_failed";
}
