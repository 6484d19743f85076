//! Decode errors. Every one of them is a protocol violation for the session that sent
//! the bytes; the message says what was wrong so the peer's developer can fix it.

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
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
}

impl DecodeError {
    pub fn malformed(serializer: &'static str, detail: impl ToString) -> DecodeError {
        DecodeError::Malformed { serializer, detail: detail.to_string() }
    }
}
