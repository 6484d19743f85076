//! A database that dies: questions fail closed with "unavailable"
//! (`wamp.error.authorization_failed`), and the same store answers again once the
//! database is back. Needs a cluster of its own (`Postgres::throwaway`).

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use switchyard::auth::graph::{GraphStore, Level};

use crate::sql;
use crate::support::postgres::Postgres;

#[tokio::test]
async fn a_lost_database_fails_closed_and_the_store_recovers() {
    let pg = Postgres::throwaway();
    let db = pg.fresh_db().await;
    sql(&db.pool, "insert into principals (id, kind) values ('alice', 'user'); insert into objects values ('doc', 'file', 'alice');").await;
    // A short wait for a connection: the default would hold the test for seconds.
    let pool = PgPoolOptions::new().acquire_timeout(Duration::from_millis(500)).connect_lazy(&db.url).unwrap();
    let store = GraphStore::from_pool(pool);
    let access = store.object_access("doc").await.unwrap();
    assert_eq!(store.closure("alice").await.unwrap().level_on(&access), Level::Manage);

    pg.stop_immediately();
    let e = store.closure("alice").await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert_eq!(e.uri(), "wamp.error.authorization_failed");
    assert!(store.last_seq().await.unwrap_err().is_unavailable());

    pg.start();
    let mut answer = store.closure("alice").await;
    // The first query after the restart may still meet a connection the crash broke.
    if answer.is_err() {
        answer = store.closure("alice").await;
    }
    assert_eq!(answer.unwrap().level_on(&access), Level::Manage);
}
