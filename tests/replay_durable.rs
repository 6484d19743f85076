//! The durable replay store (`replay::durable`) against a real PostgreSQL
//! (`tests/support/postgres.rs`): events come back after a reopen exactly as written,
//! pruning keeps exactly each topic's window and its head, a full queue refuses and
//! then makes publishers wait, and a failed commit fails its events cleanly and the
//! writer goes on.
//!
//! The writer is held still deterministically by a second connection that locks
//! `replay_events`: the writer's insert then waits on that lock, visible in
//! `pg_stat_activity`, until the lock is released (or its backend is terminated).
//!
//! `throughput` (ignored) measures events persisted per second:
//! `cargo test --release --test replay_durable -- --ignored --nocapture throughput`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sqlx::postgres::PgPool;
use sqlx::{Connection, Executor, PgConnection};
use switchyard::replay::durable::{Durable, DurableOptions, DurableStats, Loaded, BATCH_BYTES};
use switchyard::replay::{Limits, Position, ReplayError, Retention, Rule, Seq, StoredEvent};
use switchyard::wamp::ids::{PublicationId, SessionId};
use switchyard::wamp::uri::MatchPolicy;
use switchyard::wamp::{dict, Args, Dict, Payload, Serializer, Value};

use support::postgres::Postgres;

const SMALL: DurableOptions = DurableOptions { queue: 64, batch: 16 };

fn limits(max_events: usize, max_age: Option<Duration>, durable: bool) -> Limits {
    Limits { max_events, max_age, max_bytes: None, durable }
}

fn rule(uri: &str, policy: MatchPolicy, limits: Limits) -> Rule {
    Rule { uri: uri.into(), policy, limits }
}

/// `now` to the microsecond, as the store keeps times.
fn now_micros() -> SystemTime {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_micros(u64::try_from(since.as_micros()).unwrap())
}

fn payload(s: Serializer, v: Value) -> Option<Payload> {
    Some(Payload::from_value(s, &v))
}

#[allow(clippy::too_many_arguments)]
fn event(
    topic: &str,
    pos: u64,
    seq: u64,
    at: SystemTime,
    publisher: &Arc<Dict>,
    payload: Args,
    retain: bool,
) -> StoredEvent {
    StoredEvent {
        topic: topic.into(),
        pos: Position(pos),
        seq: Seq(seq),
        publication: PublicationId(seq.saturating_add(1_000)),
        published_at: at,
        publisher: publisher.clone(),
        payload,
        retain,
        excluded: None,
    }
}

/// Writes every event (each waiting for a slot) and waits for all their commits.
async fn write_all(store: &Durable, events: &[StoredEvent]) {
    let mut commits = Vec::new();
    for e in events {
        let slot = store.reserve().await.unwrap();
        commits.push(store.write(slot, Arc::new(e.clone())));
    }
    for c in commits {
        c.wait().await.unwrap();
    }
}

fn heads(loaded: &Loaded) -> Vec<(&str, u64)> {
    loaded.heads.iter().map(|(t, p)| (&**t, p.0)).collect()
}

/// Opens a connection that holds `replay_events` locked, so the writer's next insert
/// waits; returns once the writer is waiting. Roll it back to let the writer go.
async fn lock_events(url: &str) -> PgConnection {
    let mut conn = PgConnection::connect(url).await.unwrap();
    conn.execute("begin; lock table replay_events in access exclusive mode").await.unwrap();
    conn
}

async fn wait_for_blocked_writer(pool: &PgPool) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(Instant::now() < deadline, "the writer never waited for the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn events_come_back_after_a_reopen_exactly_as_written() {
    let db = Postgres::shared().fresh_db().await;
    let retention = Retention::new(
        vec![
            rule("logs.", MatchPolicy::Prefix, limits(100, None, true)),
            rule("records.r1.changes", MatchPolicy::Exact, limits(10, Some(Duration::from_secs(3600)), true)),
            rule("memory.", MatchPolicy::Prefix, limits(100, None, false)),
        ],
        1 << 20,
    );
    let at = now_micros();
    let alice = Arc::new(dict([
        ("publisher", Value::UInt(7)),
        ("publisher_authid", Value::Str("alice".into())),
        ("publisher_authrole", Value::Str("user".into())),
    ]));
    let nobody = Arc::new(Dict::new());
    let events = vec![
        event(
            "logs.a",
            1,
            10,
            at,
            &alice,
            Args { args: payload(Serializer::Json, Value::List(vec![Value::Str("line 1".into())])), kwargs: None },
            false,
        ),
        event("logs.b", 1, 11, at, &nobody, Args::NONE, false),
        event(
            "records.r1.changes",
            1,
            12,
            at + Duration::from_micros(1),
            &alice,
            Args {
                args: payload(Serializer::MsgPack, Value::List(vec![Value::UInt(1), Value::Int(-2)])),
                kwargs: payload(Serializer::MsgPack, Value::Dict(dict([("state", Value::Str("open".into()))]))),
            },
            true,
        ),
        event(
            "logs.a",
            2,
            13,
            at + Duration::from_micros(2),
            &alice,
            Args {
                args: None,
                kwargs: payload(Serializer::Cbor, Value::Dict(dict([("bytes", Value::Bytes(vec![0, 255]))]))),
            },
            false,
        ),
        // Stored as written, but its rule is not durable (any more): not loaded.
        event("memory.x", 1, 14, at, &nobody, Args::NONE, false),
        event(
            "logs.a",
            3,
            15,
            at + Duration::from_micros(3),
            &nobody,
            Args {
                args: payload(Serializer::Cbor, Value::List(vec![Value::Float(0.5)])),
                kwargs: payload(Serializer::Cbor, Value::Dict(dict([("k", Value::Null)]))),
            },
            false,
        ),
    ];
    // Not persisted: the session is gone after a restart.
    let mut events = events;
    events[0].excluded = Some(SessionId(5));
    let store = Durable::open(&db.url, "realm1", SMALL).await.unwrap();
    // Another realm of the same database, with a topic of the same name.
    let other = Durable::open(&db.url, "realm2", SMALL).await.unwrap();
    write_all(&store, &events).await;
    write_all(&other, &[event("logs.a", 1, 1, at, &nobody, Args::NONE, true)]).await;
    let stats = store.stats();
    assert_eq!((stats.rows_committed, stats.commit_failures, stats.rows_failed, stats.queue_len), (6, 0, 0, 0));
    drop((store, other));

    let reopened = Durable::open(&db.url, "realm1", SMALL).await.unwrap();
    let loaded = reopened.load(&retention).await.unwrap();
    let expected: Vec<StoredEvent> =
        [0, 1, 2, 3, 5].into_iter().map(|i| StoredEvent { excluded: None, ..events[i].clone() }).collect();
    assert_eq!(loaded.events, expected);
    assert_eq!(heads(&loaded), vec![("logs.a", 3), ("logs.b", 1), ("records.r1.changes", 1)]);
    assert_eq!(loaded.next_seq, Seq(16));
    // Events of one topic share the head's name, and one publisher's details are one dict.
    assert!(Arc::ptr_eq(&loaded.events[0].topic, &loaded.heads[0].0));
    assert!(Arc::ptr_eq(&loaded.events[0].publisher, &loaded.events[2].publisher));

    let realm2 = Durable::open(&db.url, "realm2", SMALL).await.unwrap().load(&retention).await.unwrap();
    assert_eq!(realm2.events, vec![event("logs.a", 1, 1, at, &nobody, Args::NONE, true)]);
    assert_eq!((heads(&realm2), realm2.next_seq), (vec![("logs.a", 1)], Seq(2)));

    let empty = Durable::open(&db.url, "realm3", SMALL).await.unwrap().load(&retention).await.unwrap();
    assert_eq!(empty, Loaded { events: vec![], heads: vec![], next_seq: Seq(1) });
}

#[tokio::test]
async fn prune_keeps_exactly_each_topics_window_and_its_head() {
    let db = Postgres::shared().fresh_db().await;
    let hour = Duration::from_secs(3600);
    let retention = Retention::new(
        vec![
            rule("aged.", MatchPolicy::Prefix, limits(100, Some(hour), true)),
            rule("counted.", MatchPolicy::Prefix, limits(3, None, true)),
            rule("memory.", MatchPolicy::Prefix, limits(1, None, false)),
        ],
        1 << 20,
    );
    let now = now_micros();
    let old = now - 2 * hour;
    let young = now - Duration::from_secs(10);
    let p = Arc::new(Dict::new());
    let mut events = Vec::new();
    for pos in 1..=5 {
        events.push(event("counted.a", pos, pos, young, &p, Args::NONE, false));
    }
    events.push(event("aged.a", 1, 6, old, &p, Args::NONE, false));
    events.push(event("aged.a", 2, 7, old, &p, Args::NONE, false));
    events.push(event("aged.a", 3, 8, young, &p, Args::NONE, false));
    events.push(event("aged.b", 1, 9, old, &p, Args::NONE, false));
    events.push(event("aged.b", 2, 10, old, &p, Args::NONE, false));
    events.push(event("memory.a", 1, 11, old, &p, Args::NONE, false));
    events.push(event("memory.a", 2, 12, old, &p, Args::NONE, false));
    let store = Durable::open(&db.url, "realm", SMALL).await.unwrap();
    write_all(&store, &events).await;

    // Load applies the windows whether or not prune has run.
    let kept: Vec<StoredEvent> = [2, 3, 4, 7].into_iter().map(|i| events[i].clone()).collect();
    let heads_after = vec![("aged.a", 3), ("aged.b", 2), ("counted.a", 5)];
    let before = store.load(&retention).await.unwrap();
    assert_eq!((&before.events, heads(&before), before.next_seq), (&kept, heads_after.clone(), Seq(13)));

    // counted.a 1..2, aged.a 1..2, aged.b 1..2; memory.a is no durable topic's.
    assert_eq!(store.prune(&retention).await.unwrap(), 6);
    assert_eq!(store.prune(&retention).await.unwrap(), 0);
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select topic, pos from replay_events order by topic, pos").fetch_all(&db.pool).await.unwrap();
    let rows: Vec<(&str, i64)> = rows.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    assert_eq!(
        rows,
        vec![("aged.a", 3), ("counted.a", 3), ("counted.a", 4), ("counted.a", 5), ("memory.a", 1), ("memory.a", 2)]
    );

    // Heads and the next seq survive, also for aged.b, which has no row left.
    let after = Durable::open(&db.url, "realm", SMALL).await.unwrap().load(&retention).await.unwrap();
    assert_eq!((&after.events, heads(&after), after.next_seq), (&kept, heads_after, Seq(13)));

    // Positions continue after the head of an emptied topic.
    write_all(&store, &[event("aged.b", 3, 13, young, &p, Args::NONE, false)]).await;
    let last = store.load(&retention).await.unwrap();
    assert_eq!(heads(&last), vec![("aged.a", 3), ("aged.b", 3), ("counted.a", 5)]);
    assert_eq!(last.events.iter().map(|e| (&*e.topic, e.pos.0)).last(), Some(("aged.b", 3)));
}

#[tokio::test]
async fn a_full_queue_refuses_then_makes_publishers_wait_for_a_commit() {
    let db = Postgres::shared().fresh_db().await;
    let store = Durable::open(&db.url, "realm", DurableOptions { queue: 2, batch: 1 }).await.unwrap();
    let p = Arc::new(Dict::new());
    let at = now_micros();
    let mut lock = lock_events(&db.url).await;

    let first = store.write(store.try_reserve().unwrap(), Arc::new(event("t", 1, 1, at, &p, Args::NONE, false)));
    wait_for_blocked_writer(&db.pool).await;
    let second = store.write(store.try_reserve().unwrap(), Arc::new(event("t", 2, 2, at, &p, Args::NONE, false)));
    assert!(store.try_reserve().is_none());
    assert_eq!(store.stats().queue_len, 2);
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.reserve().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "reserve returned while the queue was full");

    lock.execute("rollback").await.unwrap();
    let slot = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap().unwrap();
    first.wait().await.unwrap();
    second.wait().await.unwrap();
    drop(slot);
    assert_eq!(
        store.stats(),
        DurableStats { rows_committed: 2, batches_committed: 2, commit_failures: 0, rows_failed: 0, queue_len: 0 }
    );
    // Both places are free again.
    let (a, b) = (store.try_reserve(), store.try_reserve());
    assert!(a.is_some() && b.is_some() && store.try_reserve().is_none());
}

#[tokio::test]
async fn batches_close_at_the_batch_size_and_at_the_byte_bound() {
    let db = Postgres::shared().fresh_db().await;
    let store = Durable::open(&db.url, "realm", DurableOptions { queue: 10, batch: 2 }).await.unwrap();
    let p = Arc::new(Dict::new());
    let at = now_micros();
    let small = |pos: u64| Arc::new(event("t", pos, pos, at, &p, Args::NONE, false));

    // While the first event is in flight: 5 more make batches of 2, 2 and 1.
    let mut lock = lock_events(&db.url).await;
    let mut commits = vec![store.write(store.try_reserve().unwrap(), small(1))];
    wait_for_blocked_writer(&db.pool).await;
    for pos in 2..=6 {
        commits.push(store.write(store.try_reserve().unwrap(), small(pos)));
    }
    lock.execute("rollback").await.unwrap();
    for c in commits.drain(..) {
        c.wait().await.unwrap();
    }
    assert_eq!((store.stats().rows_committed, store.stats().batches_committed), (6, 4));

    assert_eq!(BATCH_BYTES, 16 << 20);
    // 9 MiB payloads: the second one still joins a batch below BATCH_BYTES, then it is full.
    let big =
        Args { args: payload(Serializer::MsgPack, Value::List(vec![Value::Bytes(vec![7; 9 << 20])])), kwargs: None };
    let mut lock = lock_events(&db.url).await;
    commits.push(store.write(store.try_reserve().unwrap(), small(7)));
    wait_for_blocked_writer(&db.pool).await;
    for pos in 8..=9 {
        commits.push(
            store.write(store.try_reserve().unwrap(), Arc::new(event("t", pos, pos, at, &p, big.clone(), false))),
        );
    }
    commits.push(store.write(store.try_reserve().unwrap(), small(10)));
    lock.execute("rollback").await.unwrap();
    for c in commits {
        c.wait().await.unwrap();
    }
    assert_eq!((store.stats().rows_committed, store.stats().batches_committed), (10, 7));
}

#[tokio::test]
async fn a_failed_commit_fails_its_batch_cleanly_and_the_writer_goes_on() {
    let db = Postgres::shared().fresh_db().await;
    let store = Durable::open(&db.url, "realm", SMALL).await.unwrap();
    let p = Arc::new(Dict::new());
    let at = now_micros();
    let mut lock = lock_events(&db.url).await;

    let lost = store.write(store.try_reserve().unwrap(), Arc::new(event("t", 1, 1, at, &p, Args::NONE, false)));
    let writer = wait_for_blocked_writer(&db.pool).await;
    let terminated: bool =
        sqlx::query_scalar("select pg_terminate_backend($1)").bind(writer).fetch_one(&db.pool).await.unwrap();
    assert!(terminated);
    let err = lost.wait().await.unwrap_err();
    assert!(matches!(err, ReplayError::Unavailable(_)), "{err:?}");
    assert_eq!(err.uri(), "wamp.error.unavailable");
    lock.execute("rollback").await.unwrap();

    // The writer reconnects for the next batch; the failed event is not retried.
    let kept = event("t", 2, 2, at, &p, Args::NONE, false);
    store.write(store.try_reserve().unwrap(), Arc::new(kept.clone())).wait().await.unwrap();
    assert_eq!(
        store.stats(),
        DurableStats { rows_committed: 1, batches_committed: 1, commit_failures: 1, rows_failed: 1, queue_len: 0 }
    );
    let retention = Retention::new(vec![rule("t", MatchPolicy::Exact, limits(10, None, true))], 1 << 20);
    let loaded = store.load(&retention).await.unwrap();
    assert_eq!(loaded, Loaded { events: vec![kept], heads: vec![(Arc::from("t"), Position(2))], next_seq: Seq(3) });
}

#[tokio::test]
async fn a_rejected_batch_is_reported_with_the_database_error() {
    let db = Postgres::shared().fresh_db().await;
    let store = Durable::open(&db.url, "realm", SMALL).await.unwrap();
    let p = Arc::new(Dict::new());
    let at = now_micros();
    let first = event("t", 1, 1, at, &p, Args::NONE, false);
    write_all(&store, std::slice::from_ref(&first)).await;
    // The same position again violates the primary key: the database's answer.
    let again = store.write(store.try_reserve().unwrap(), Arc::new(event("t", 1, 2, at, &p, Args::NONE, false)));
    let err = again.wait().await.unwrap_err();
    assert!(matches!(err, ReplayError::Database(_)), "{err:?}");
    assert_eq!(err.uri(), "wamp.error.unavailable");
    // A number PostgreSQL cannot hold fails its batch before it is sent.
    let huge = store.write(store.try_reserve().unwrap(), Arc::new(event("t", 2, u64::MAX, at, &p, Args::NONE, false)));
    assert_eq!(huge.wait().await.unwrap_err().to_string(), "seq 18446744073709551615 does not fit the replay database");
    assert_eq!(
        store.stats(),
        DurableStats { rows_committed: 1, batches_committed: 1, commit_failures: 2, rows_failed: 2, queue_len: 0 }
    );
}

/// Events persisted per second with 100-byte payloads: one publisher task reserving and
/// writing as fast as the queue lets it, 100 topics, default options.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    const N: u64 = 300_000;
    let db = Postgres::shared().fresh_db().await;
    let store = Durable::open(&db.url, "realm", DurableOptions::default()).await.unwrap();
    let publisher = Arc::new(dict([
        ("publisher", Value::UInt(123_456_789)),
        ("publisher_authid", Value::Str("bench".into())),
        ("publisher_authrole", Value::Str("user".into())),
    ]));
    // A msgpack list holding one 97-byte string: 100 bytes.
    let args = Payload::from_value(Serializer::MsgPack, &Value::List(vec![Value::Str("x".repeat(97))]));
    assert_eq!(args.len(), 100);
    let args = Payload::from_encoded(Serializer::MsgPack, Bytes::copy_from_slice(args.bytes()));
    let topics: Vec<Arc<str>> = (0..100).map(|i| Arc::from(format!("bench.topic.{i}"))).collect();
    let start = Instant::now();
    let mut last = None;
    for seq in 1..=N {
        let topic = topics[usize::try_from(seq % 100).unwrap()].clone();
        let e = StoredEvent {
            topic,
            pos: Position(seq / 100 + 1),
            seq: Seq(seq),
            publication: PublicationId(seq),
            published_at: SystemTime::now(),
            publisher: publisher.clone(),
            payload: Args { args: Some(args.clone()), kwargs: None },
            retain: false,
            excluded: None,
        };
        let slot = store.reserve().await.unwrap();
        last = Some(store.write(slot, Arc::new(e)));
    }
    last.unwrap().wait().await.unwrap();
    let elapsed = start.elapsed();
    let stats = store.stats();
    assert_eq!((stats.rows_committed, stats.commit_failures), (N, 0));
    #[allow(clippy::cast_precision_loss)]
    let rate = N as f64 / elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let mean_batch = N as f64 / stats.batches_committed as f64;
    eprintln!(
        "durable throughput: {N} events in {:.2} s = {rate:.0} events/s; {} batches, {mean_batch:.0} events per batch",
        elapsed.as_secs_f64(),
        stats.batches_committed
    );
}

#[tokio::test]
async fn the_replay_and_graph_migrations_share_a_database_in_either_order() {
    let db = Postgres::shared().empty_db().await;
    Durable::open(&db.url, "realm", SMALL).await.unwrap();
    let graph: Vec<i64> = db.store().migrate().await.unwrap().iter().map(|m| m.version).collect();
    assert_eq!(graph, vec![1, 2, 3, 4, 5]);
    // Both again: nothing left to apply, and neither minds the other's rows.
    assert_eq!(db.store().migrate().await.unwrap(), vec![]);
    Durable::open(&db.url, "realm", SMALL).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations order by version").fetch_all(&db.pool).await.unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 1_000_001]);
}

#[tokio::test]
async fn a_row_changed_into_something_unsendable_is_refused_on_load() {
    let db = Postgres::shared().fresh_db().await;
    let retention = Retention::new(vec![rule("logs.", MatchPolicy::Prefix, limits(100, None, true))], 1 << 20);
    let nobody = Arc::new(Dict::new());
    let line = |pos, seq| {
        let args = Args { args: payload(Serializer::Json, Value::List(vec![Value::Str("line".into())])), kwargs: None };
        event("logs.a", pos, seq, now_micros(), &nobody, args, false)
    };
    let store = Durable::open(&db.url, "realm1", SMALL).await.unwrap();
    write_all(&store, &[line(1, 1), line(2, 2)]).await;
    drop(store);
    // JSON goes to WebSocket peers as text without another check: bytes that are not
    // UTF-8 must not come back from the database, nor a list that is not one.
    sqlx::query("update replay_events set args = '\\x5b22ff225d'::bytea where pos = 2").execute(&db.pool).await.unwrap();
    let refused = Durable::open(&db.url, "realm1", SMALL).await.unwrap().load(&retention).await.unwrap_err();
    assert_eq!(refused.to_string(), "malformed replay row (topic \"logs.a\", position 2): args are not UTF-8");
    sqlx::query("update replay_events set args = '\\x7b7d'::bytea where pos = 2").execute(&db.pool).await.unwrap();
    let refused = Durable::open(&db.url, "realm1", SMALL).await.unwrap().load(&retention).await.unwrap_err();
    assert_eq!(refused.to_string(), "malformed replay row (topic \"logs.a\", position 2): args are not a list");
}
