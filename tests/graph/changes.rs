//! The change log: every kind of change to the five tables appends one row with exactly
//! the node ids it touches (token hashes apart) and NOTIFYs its seq; no-op updates log
//! nothing; seqs follow commit order; pruning records how far it went.

use std::time::Duration;

use sqlx::postgres::PgListener;
use switchyard::auth::graph::{hash_token, Change, CHANNEL};

use crate::sql;
use crate::support::postgres::Postgres;

fn change(seq: i64, table: &str, touched: &[&str], tokens: &[&str]) -> Change {
    Change {
        seq,
        table: table.to_owned(),
        touched: touched.iter().map(|s| s.to_string()).collect(),
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        everything: false,
    }
}

/// A statement and the rows it must log: (table, touched ids, token hashes).
type Step<'a> = (String, Vec<(&'a str, Vec<&'a str>, Vec<&'a str>)>);

#[tokio::test]
async fn every_change_is_logged_with_the_nodes_it_touches_and_notified() {
    let db = Postgres::shared().fresh_db().await;
    let store = db.store();
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();
    let hash = hash_token("abc");

    let steps: Vec<Step> = vec![
        ("insert into principals (id, kind) values ('u', 'user')".into(), vec![("principals", vec!["u"], vec![])]),
        ("insert into principals (id, kind) values ('r', 'role')".into(), vec![("principals", vec!["r"], vec![])]),
        ("insert into principals (id, kind, owner_id) values ('p', 'project', 'u')".into(), vec![("principals", vec!["p", "u"], vec![])]),
        ("update principals set owner_id = 'r' where id = 'p'".into(), vec![("principals", vec!["p", "r", "u"], vec![])]),
        ("update principals set trashed = true where id = 'p'".into(), vec![("principals", vec!["p", "r"], vec![])]),
        ("update principals set disabled = true where id = 'u'".into(), vec![("principals", vec!["u"], vec![])]),
        ("insert into objects values ('o', 'file', 'p')".into(), vec![("objects", vec!["o", "p"], vec![])]),
        ("update objects set owner_id = 'u' where id = 'o'".into(), vec![("objects", vec!["o", "p", "u"], vec![])]),
        ("insert into grants values ('u', 'r', 1)".into(), vec![("grants", vec!["r", "u"], vec![])]),
        ("update grants set level = 3 where tail_id = 'u'".into(), vec![("grants", vec!["r", "u"], vec![])]),
        ("update grants set head_id = 'o' where tail_id = 'u'".into(), vec![("grants", vec!["o", "r", "u"], vec![])]),
        ("insert into grants values ('r', 'p', 2)".into(), vec![("grants", vec!["p", "r"], vec![])]),
        ("insert into read_via values ('o', 'x')".into(), vec![("read_via", vec!["o", "x"], vec![])]),
        ("update read_via set via_id = 'r'".into(), vec![("read_via", vec!["o", "r", "x"], vec![])]),
        ("delete from read_via".into(), vec![("read_via", vec!["o", "r"], vec![])]),
        (format!("insert into tokens values ('{hash}', 'u', null, false)"), vec![("tokens", vec!["u"], vec![&hash])]),
        ("update tokens set revoked = true".into(), vec![("tokens", vec!["u"], vec![&hash])]),
        ("delete from tokens".into(), vec![("tokens", vec!["u"], vec![&hash])]),
        ("delete from objects".into(), vec![("objects", vec!["o", "u"], vec![])]),
        // Deleting a principal cascades to its grants: one row each.
        (
            "update principals set owner_id = null where id = 'p'; delete from principals where id = 'r'".into(),
            vec![("principals", vec!["p", "r"], vec![]), ("principals", vec!["r"], vec![]), ("grants", vec!["p", "r"], vec![])],
        ),
    ];
    let mut seq = store.last_seq().await.unwrap();
    assert_eq!(seq, 0);
    for (statement, rows) in steps {
        sql(&db.pool, &statement).await;
        let mut expected = Vec::new();
        for (table, touched, tokens) in rows {
            let n = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await.expect("a notification").unwrap();
            seq += 1;
            assert_eq!((n.channel(), n.payload()), (CHANNEL, seq.to_string().as_str()), "{statement}");
            expected.push(change(seq, table, &touched, &tokens));
        }
        assert_eq!(store.changes_since(seq - expected.len() as i64, 100).await.unwrap(), expected, "{statement}");
    }
    assert_eq!(store.last_seq().await.unwrap(), seq);

    // No-op updates log nothing.
    sql(&db.pool, "update principals set disabled = disabled; update grants set level = level").await;
    assert_eq!(store.changes_since(seq, 100).await.unwrap(), vec![]);

    // A truncate names no rows: it may change anything.
    sql(&db.pool, "truncate grants").await;
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await.expect("a notification").unwrap();
    assert_eq!(n.payload(), (seq + 1).to_string());
    assert_eq!(
        store.changes_since(seq, 100).await.unwrap(),
        vec![Change { everything: true, ..change(seq + 1, "grants", &[], &[]) }]
    );
}

#[tokio::test]
async fn seqs_follow_commit_order() {
    let db = Postgres::shared().fresh_db().await;
    let store = db.store();
    sql(&db.pool, "insert into principals (id, kind) values ('a', 'user'), ('b', 'user')").await;
    let start = store.last_seq().await.unwrap();

    // A writes first but commits last; B's write waits for A's commit, so B's seq,
    // taken after it, is the higher one: a reader that saw B's seq has seen A's.
    let mut a = db.pool.begin().await.unwrap();
    sqlx::query("insert into grants values ('a', 'x', 1)").execute(&mut *a).await.unwrap();
    let pool = db.pool.clone();
    let b = tokio::spawn(async move { sql(&pool, "insert into grants values ('b', 'x', 1)").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!b.is_finished(), "B waits for A");
    assert_eq!(store.changes_since(start, 10).await.unwrap(), vec![], "nothing committed yet");
    a.commit().await.unwrap();
    b.await.unwrap();
    let changes = store.changes_since(start, 10).await.unwrap();
    let order: Vec<(i64, &str)> = changes.iter().map(|c| (c.seq, c.touched[0].as_str())).collect();
    assert_eq!(order, vec![(start + 1, "a"), (start + 2, "b")]);
}

#[tokio::test]
async fn pruning_deletes_old_rows_and_records_how_far() {
    let db = Postgres::shared().fresh_db().await;
    let store = db.store();
    sql(&db.pool, "insert into principals (id, kind) values ('a', 'user'), ('b', 'user'), ('c', 'user')").await;
    sql(&db.pool, "update switchyard_graph_changes set at = now() - interval '2 days' where seq <= 2").await;
    assert_eq!(store.pruned_through().await.unwrap(), 0);
    assert_eq!(store.prune_changes(Duration::from_secs(86400)).await.unwrap(), 2);
    assert_eq!(store.pruned_through().await.unwrap(), 2);
    assert_eq!(store.changes_since(0, 10).await.unwrap(), vec![change(3, "principals", &["c"], &[])]);
    assert_eq!(store.prune_changes(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(store.changes_since(0, 10).await.unwrap(), vec![]);
    assert_eq!((store.pruned_through().await.unwrap(), store.last_seq().await.unwrap()), (3, 3));
}
