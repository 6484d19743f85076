//! The permission graph against a real PostgreSQL (`tests/support/postgres.rs`): one
//! test binary, so one throwaway cluster, for all of it.
//!
//! - `model`: levels on random graphs against a reference model, and the dependency
//!   sets that make invalidation precise;
//! - `examples`: the platform's cases with exact levels;
//! - `changes`: the change log's triggers, NOTIFY, and seq order;
//! - `tokens`: hashing, lookups and the `switchyard migrate` / `token` commands;
//! - `outage`: a database that dies and comes back.

#[path = "../support/mod.rs"]
mod support;

mod changes;
mod examples;
mod keys;
mod model;
mod outage;
mod tokens;

use sqlx::postgres::PgPool;
use switchyard::auth::graph::{GraphStore, Level};

/// Runs SQL statements (no parameters), panicking with the SQL on error.
pub async fn sql(pool: &PgPool, statements: &str) {
    sqlx::raw_sql(statements).execute(pool).await.unwrap_or_else(|e| panic!("{statements}: {e}"));
}

/// The router's answer: a principal's level from the user's closure alone, any other
/// id's from the closure and the id's object access.
pub async fn level(store: &GraphStore, user: &str, target: &str) -> Level {
    let closure = store.closure(user).await.unwrap();
    if store.principal(target).await.unwrap().is_some() {
        closure.level_of_principal(target)
    } else {
        closure.level_on(&store.object_access(target).await.unwrap())
    }
}

/// Asserts every `(user, target, level)` at once, so a failure shows all of them.
pub async fn assert_levels(store: &GraphStore, expected: &[(&str, &str, Level)]) {
    let mut got = Vec::new();
    for (user, target, _) in expected {
        got.push((*user, *target, level(store, user, target).await));
    }
    assert_eq!(got, expected.to_vec());
}
