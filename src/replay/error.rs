//! What can go wrong in the durable replay store, and what each failure means to a
//! client. Every variant is the router's problem, not the client's: a publisher that
//! asked for acknowledgement of a durable topic is told the publication could not be
//! made durable (`wamp.error.unavailable`), and may publish again.
//!
//! Clone, because one failed commit is reported to every publisher of its batch; the
//! database errors are shared behind an `Arc` for that.

use std::sync::Arc;

use thiserror::Error;

const UNAVAILABLE: &str = "wamp.error.unavailable";

#[derive(Debug, Clone, Error)]
pub enum ReplayError {
    /// The database cannot be reached or went away (connection refused or lost, pool
    /// timed out, server shutting down). The writer reconnects for its next batch.
    #[error("replay database unavailable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// The database answered with an error (a constraint, a missing table).
    #[error("replay database error: {0}")]
    Database(#[source] Arc<sqlx::Error>),
    #[error("replay database migration failed: {0}")]
    Migrate(#[source] Arc<sqlx::migrate::MigrateError>),
    /// The writer task is gone (the router is shutting down, or its runtime stopped):
    /// nothing more will be committed.
    #[error("the replay store's writer has stopped")]
    WriterStopped,
    /// A stored row the schema's checks should have kept out, or that this version
    /// cannot read: `load` stops rather than replay something else than was published.
    #[error("malformed replay row (topic {topic:?}, position {pos}): {what}")]
    Malformed { topic: String, pos: i64, what: String },
    /// A number of an event that PostgreSQL's bigint cannot hold (above 2^63 - 1).
    #[error("{what} {value} does not fit the replay database")]
    OutOfRange { what: &'static str, value: u64 },
}

impl ReplayError {
    /// The WAMP error URI a client is answered with.
    pub fn uri(&self) -> &'static str {
        match self {
            ReplayError::Unavailable(_)
            | ReplayError::Database(_)
            | ReplayError::Migrate(_)
            | ReplayError::WriterStopped
            | ReplayError::Malformed { .. }
            | ReplayError::OutOfRange { .. } => UNAVAILABLE,
        }
    }

    /// True when the failure is the database's absence rather than an answer.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ReplayError::Unavailable(_) | ReplayError::WriterStopped)
    }
}

impl From<sqlx::Error> for ReplayError {
    fn from(e: sqlx::Error) -> ReplayError {
        if unavailable(&e) {
            ReplayError::Unavailable(Arc::new(e))
        } else {
            ReplayError::Database(Arc::new(e))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for ReplayError {
    fn from(e: sqlx::migrate::MigrateError) -> ReplayError {
        ReplayError::Migrate(Arc::new(e))
    }
}

/// Unreachable as for the permission graph (`pg::unreachable`), and also a database
/// that does not exist (3D000: dropped, or not created yet), which the store retries.
fn unavailable(e: &sqlx::Error) -> bool {
    crate::pg::unreachable(e) || crate::pg::is_sqlstate(e, "3D000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_unavailable_to_the_client() {
        let lost = ReplayError::from(sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert!(lost.is_unavailable());
        assert_eq!(lost.uri(), "wamp.error.unavailable");
        let answered = ReplayError::from(sqlx::Error::RowNotFound);
        assert!(!answered.is_unavailable());
        assert_eq!(answered.uri(), "wamp.error.unavailable");
        assert_eq!(ReplayError::WriterStopped.uri(), "wamp.error.unavailable");
        let bad = ReplayError::Malformed { topic: "t".into(), pos: 3, what: "serializer 9".into() };
        assert_eq!(bad.to_string(), "malformed replay row (topic \"t\", position 3): serializer 9");
        assert_eq!(bad.uri(), "wamp.error.unavailable");
        let big = ReplayError::OutOfRange { what: "seq", value: u64::MAX };
        assert_eq!(big.to_string(), "seq 18446744073709551615 does not fit the replay database");
    }
}
