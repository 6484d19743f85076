//! Decode errors. A malformed message (bytes that are not a WAMP message) is a protocol
//! violation for the session that sent it. A well-formed message whose Arguments or
//! ArgumentsKw the router cannot carry to every peer is an invalid payload: the router
//! refuses that one message (the spec's "payload validation", `wamp.error.invalid_argument`).
//! Every error says what was wrong so the peer's developer can fix it.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum DecodeError {
    #[error("malformed {serializer}: {detail}")]
    Malformed { serializer: &'static str, detail: String },
    #[error("message is not a non-empty array")]
    NotAnArray,
    #[error("unknown message type {0}")]
    UnknownType(u64),
    #[error("{message}: expected {expected} elements, got {got}")]
    Arity { message: &'static str, expected: &'static str, got: usize },
    #[error("{message}.{field}: expected {expected}, got {got}")]
    Field { message: &'static str, field: &'static str, expected: &'static str, got: String },
    /// An element that cannot be accepted, outside any message (see `Header`, `Payload`).
    #[error(transparent)]
    Invalid(#[from] PayloadError),
    /// A header element (an id, a URI, Options or Details) that cannot be accepted.
    #[error("{message} element {element}: {problem}")]
    Header { message: &'static str, element: usize, problem: PayloadError },
    /// Arguments or ArgumentsKw that cannot be accepted; `header` is what the router
    /// needs to answer the message.
    #[error("{message}.{field}: {problem}")]
    Payload { message: &'static str, header: RefusedHeader, field: &'static str, problem: PayloadError },
}

/// What the router needs of a message refused for its payload to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedHeader {
    /// The message type (PUBLISH, CALL, YIELD, ERROR, ...).
    pub code: u64,
    pub request: u64,
    /// ERROR only: the type of the request it answers; 0 otherwise.
    pub request_type: u64,
    /// PUBLISH only: whether the publisher asked for an acknowledgement.
    pub acknowledge: bool,
}

impl DecodeError {
    pub fn malformed(serializer: &'static str, detail: impl ToString) -> DecodeError {
        DecodeError::Malformed { serializer, detail: detail.to_string() }
    }
}

/// Why a well-formed element cannot be accepted: the router could not decode it safely or
/// could not carry it to a peer of another serializer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PayloadError {
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// Valid in its own serializer but not representable in WAMP's data model, so not
    /// in every serializer (e.g. a dict key that is not a string).
    #[error("{0}")]
    Unrepresentable(&'static str),
}
