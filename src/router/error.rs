//! Errors the router answers with, each carrying the WAMP error URI it maps to. They
//! become ERROR replies (with the message as Arguments[0]) or ABORT reasons.

use thiserror::Error;

use crate::auth::{AuthError, Undecided};
use crate::wamp::{dict, Args, Dict, Payload, Serializer, Value};

#[derive(Debug, Clone, PartialEq, Error)]
pub enum WampError {
    #[error("no such realm '{0}'")]
    NoSuchRealm(String),
    /// Authentication refused (no method, wrong secret, throttled).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The authorizer could not decide: refused, fail closed.
    #[error(transparent)]
    AuthorizationFailed(#[from] Undecided),
    #[error("{0}")]
    ProtocolViolation(String),
    #[error("session is not authorized to {action} '{uri}'")]
    NotAuthorized { action: &'static str, uri: String },
    #[error("invalid URI '{0}'")]
    InvalidUri(String),
    #[error("URI of {len} bytes exceeds the limit of {limit} bytes")]
    UriTooLong { len: usize, limit: usize },
    #[error("'{0}' is in the wamp namespace, which is reserved for the router")]
    ReservedUri(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no procedure registered under '{0}'")]
    NoSuchProcedure(String),
    #[error("a procedure is already registered under '{0}'")]
    ProcedureAlreadyExists(String),
    #[error("'{uri}' is registered with invocation policy '{held}', not '{asked}'")]
    InvocationPolicyConflict { uri: String, held: &'static str, asked: &'static str },
    /// The router ended a call at its timeout (spec: dealer-initiated call timeout).
    #[error("{0}")]
    Timeout(String),
    #[error("no registration {0} of this session")]
    NoSuchRegistration(u64),
    #[error("no session {0} in this realm")]
    NoSuchSession(u64),
    #[error("no subscription {0} of this session")]
    NoSuchSubscription(u64),
    #[error("{0}")]
    Canceled(String),
    /// The callee cannot take the call now.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    PayloadSizeExceeded(String),
    #[error("{0}")]
    LimitReached(String),
    /// The other party of a call did not announce a feature the call needs.
    #[error("{0}")]
    FeatureNotSupported(String),
    /// Over a rate of the realm's `[limits]`.
    #[error("{0}")]
    RateLimited(String),
}

impl WampError {
    pub fn uri(&self) -> &'static str {
        match self {
            WampError::NoSuchRealm(_) => "wamp.error.no_such_realm",
            WampError::Auth(e) => e.uri(),
            WampError::AuthorizationFailed(_) => Undecided::URI,
            WampError::ProtocolViolation(_) => "wamp.error.protocol_violation",
            WampError::NotAuthorized { .. } => "wamp.error.not_authorized",
            WampError::InvalidUri(_) | WampError::UriTooLong { .. } | WampError::ReservedUri(_) => {
                "wamp.error.invalid_uri"
            }
            WampError::InvalidArgument(_) => "wamp.error.invalid_argument",
            WampError::NoSuchProcedure(_) => "wamp.error.no_such_procedure",
            WampError::ProcedureAlreadyExists(_) => "wamp.error.procedure_already_exists",
            WampError::InvocationPolicyConflict { .. } => "wamp.error.procedure_exists_with_different_invocation_policy",
            WampError::Timeout(_) => "wamp.error.timeout",
            WampError::NoSuchRegistration(_) => "wamp.error.no_such_registration",
            WampError::NoSuchSubscription(_) => "wamp.error.no_such_subscription",
            WampError::NoSuchSession(_) => "wamp.error.no_such_session",
            WampError::Canceled(_) => "wamp.error.canceled",
            WampError::Unavailable(_) => "wamp.error.unavailable",
            WampError::PayloadSizeExceeded(_) => "wamp.error.payload_size_exceeded",
            WampError::LimitReached(_) => "wamp.error.limit_reached",
            WampError::FeatureNotSupported(_) => "wamp.error.feature_not_supported",
            WampError::RateLimited(_) => "wamp.error.rate_limited",
        }
    }

    /// ABORT/GOODBYE details: `{"message": ...}`.
    pub fn details(&self) -> Dict {
        dict([("message", Value::Str(self.to_string()))])
    }

    /// ERROR payload: the message as the only positional argument, as Crossbar and
    /// autobahn clients expect (`ApplicationError.args[0]`).
    pub fn args(&self, serializer: Serializer) -> Args {
        Args { args: Some(Payload::from_value(serializer, &Value::List(vec![Value::Str(self.to_string())]))), kwargs: None }
    }
}
