//! What the PostgreSQL-backed parts (the permission graph, the durable replay store)
//! share about their database: which errors mean it is out of reach, as opposed to an
//! answer it gave. Out of reach is retried and fails closed; an answer is not.

/// True when `e` says the database cannot be reached now (connection refused or lost,
/// the server shutting down or starting up, too many connections).
pub fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Configuration(_) => true,
        // SQLSTATE class 08 is "connection exception"; 57P01..57P03 are the server
        // shutting down or starting up (57P01 is also pg_terminate_backend); 53300 is
        // "too many connections".
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")),
        _ => false,
    }
}

/// True when `e` is a database error with SQLSTATE `code`.
pub fn is_sqlstate(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == code))
}
