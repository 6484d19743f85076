//! What can go wrong when the router asks the permission graph, and what each failure
//! means to a client. Every failure fails closed: whoever asked gets no permission.

use thiserror::Error;

use super::PrincipalKind;

const AUTHORIZATION_FAILED: &str = "wamp.error.authorization_failed";

#[derive(Debug, Error)]
pub enum GraphError {
    /// The database cannot be reached or went away (connection refused or lost, pool
    /// timed out, server shutting down). The router pauses what depends on the graph
    /// and reconnects; nothing is granted meanwhile.
    #[error("permission database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The router lost the database (or its change notifications) and has not caught
    /// up yet: it decides nothing from the graph meanwhile.
    #[error("permission database unavailable: the router is reconnecting and catching up with its changes")]
    Offline,
    /// The database answered with an error (e.g. the schema is not migrated).
    #[error("permission database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("permission database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value the schema's checks should have kept out.
    #[error("unexpected {what} {value:?} in the permission database")]
    Corrupt { what: &'static str, value: String },
    #[error("no principal {0:?}")]
    NoSuchPrincipal(String),
    #[error("{id:?} is not a user but a {}", kind.map_or("principal without a kind", PrincipalKind::as_str))]
    NotAUser { id: String, kind: Option<PrincipalKind> },
}

impl GraphError {
    /// True when the failure is the database's absence rather than an answer: worth a
    /// reconnect and a replay of the change log, not a bug report.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, GraphError::Unavailable(_) | GraphError::Offline)
    }

    /// The WAMP error URI a client is answered with.
    pub fn uri(&self) -> &'static str {
        match self {
            GraphError::Unavailable(_)
            | GraphError::Offline
            | GraphError::Database(_)
            | GraphError::Migrate(_)
            | GraphError::Corrupt { .. } => AUTHORIZATION_FAILED,
            GraphError::NoSuchPrincipal(_) | GraphError::NotAUser { .. } => "wamp.error.invalid_argument",
        }
    }
}

impl From<sqlx::Error> for GraphError {
    fn from(e: sqlx::Error) -> GraphError {
        if crate::pg::unreachable(&e) {
            GraphError::Unavailable(e)
        } else {
            GraphError::Database(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_fail_authorization() {
        let lost = GraphError::from(sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert!(lost.is_unavailable());
        assert_eq!(lost.uri(), "wamp.error.authorization_failed");
        assert!(GraphError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        let missing = GraphError::from(sqlx::Error::RowNotFound);
        assert!(!missing.is_unavailable());
        assert_eq!(missing.uri(), "wamp.error.authorization_failed");
        let role = GraphError::NotAUser { id: "r".into(), kind: Some(PrincipalKind::Role) };
        assert_eq!(role.to_string(), "\"r\" is not a user but a role");
        assert_eq!(role.uri(), "wamp.error.invalid_argument");
    }
}
