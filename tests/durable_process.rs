//! The durable replay store on the real binary: every event acknowledged before a
//! `kill -9` is there after the restart, in order, and positions go on where they
//! stopped (PostgreSQL from `DATABASE_URL`, or a throwaway cluster).

mod common;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use support::postgres::Postgres;
use switchyard::wamp::{dict, Args, Dict, Message, Payload, Serializer, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn config(dir: &std::path::Path, database_url: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[[realms]]
name = "realm1"
anonymous = "anonymous"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = {{ call = true, register = true, publish = true, subscribe = true }}

[realms.replay]
database_url = "{database_url}"

[[realms.replay.topics]]
uri = "containers..events"
match = "wildcard"
max_events = 100000
durable = true
"#
    );
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `switchyard serve --config <file>`; returns the child and its WebSocket URL.
fn serve(config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, ready["websocket"].as_str().unwrap().to_owned())
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    send(&mut ws, &Message::Hello { realm: "realm1".into(), details: dict([("roles", Value::Dict(dict([("publisher", Value::Dict(Dict::new())), ("subscriber", Value::Dict(Dict::new()))])))]) }).await;
    assert!(matches!(recv(&mut ws).await, Message::Welcome { .. }));
    ws
}

async fn send(ws: &mut Ws, m: &Message) {
    let bytes = m.encode(Serializer::Json).unwrap();
    ws.send(WsMessage::text(String::from_utf8(bytes.to_vec()).unwrap())).await.unwrap();
}

async fn recv(ws: &mut Ws) -> Message {
    loop {
        match tokio::time::timeout(common::TIMEOUT, ws.next()).await.expect("a message in time") {
            Some(Ok(WsMessage::Text(t))) => return Message::decode(Serializer::Json, &bytes::Bytes::copy_from_slice(t.as_bytes())).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

fn counter(n: u64) -> Args {
    Args { args: Some(Payload::from_value(Serializer::Json, &Value::List(vec![Value::UInt(n)]))), kwargs: None }
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9_and_positions_go_on() {
    let pg = Postgres::shared();
    let db = pg.fresh_db().await;
    let dir = tempdir();
    let cfg = config(&dir, &db.url);
    let (mut router, url) = serve(&cfg);
    let mut p = connect(&url).await;
    const N: u64 = 2_000;
    for n in 1..=N {
        let options = dict([("acknowledge", true.into())]);
        send(&mut p, &Message::Publish { request: n, options, topic: "containers.c1.events".into(), payload: counter(n) }).await;
    }
    let mut acked = 0;
    while acked < N {
        match recv(&mut p).await {
            Message::Published { .. } => acked += 1,
            other => panic!("expected PUBLISHED, got {other:?}"),
        }
    }
    // Every publication is acknowledged: now the hard way down.
    router.kill().unwrap();
    router.wait().unwrap();

    let (mut router, url) = serve(&cfg);
    let mut s = connect(&url).await;
    let options = dict([("_replay", Value::Dict(dict([("after_pos", 0u64.into())])))]);
    send(&mut s, &Message::Subscribe { request: 1, options, topic: "containers.c1.events".into() }).await;
    assert!(matches!(recv(&mut s).await, Message::Subscribed { request: 1, .. }));
    for n in 1..=N {
        let Message::Event { details, payload, .. } = recv(&mut s).await else { panic!("expected EVENT") };
        assert_eq!(details.get("_pos"), Some(&Value::UInt(n)));
        assert_eq!(details.get("_replayed"), Some(&Value::Bool(true)));
        assert_eq!(payload.args.unwrap().to_value().unwrap(), Value::List(vec![Value::UInt(n)]));
    }
    let mut p = connect(&url).await;
    let options = dict([("acknowledge", true.into())]);
    send(&mut p, &Message::Publish { request: 1, options, topic: "containers.c1.events".into(), payload: counter(N + 1) }).await;
    let Message::Event { details, .. } = recv(&mut s).await else { panic!("expected EVENT") };
    assert_eq!(details.get("_pos"), Some(&Value::UInt(N + 1)), "positions go on after the restart");
    assert!(matches!(recv(&mut p).await, Message::Published { request: 1, .. }));
    router.kill().unwrap();
    router.wait().unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from replay_events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, N as i64 + 1);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-durable-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

/// A database that is not there at start: the router starts anyway, durable topics
/// refuse publications (fail closed), and once the database exists the retry connects
/// and acknowledged publications are made durable again.
#[tokio::test]
async fn durable_topics_fail_closed_until_the_database_comes() {
    use common::{metric, start, Client};
    use switchyard::config::{ReplayConfig, TopicRetention};
    use switchyard::wamp::uri::MatchPolicy;

    let pg = Postgres::shared();
    let db = pg.fresh_db().await;
    let later = format!("{}_later", db.name);
    let url = db.url.replace(&format!("/{}", db.name), &format!("/{later}"));
    let rule = TopicRetention { uri: "d".into(), policy: MatchPolicy::Exact, max_events: 100, max_age: None, max_bytes: None, durable: true };
    let server = start(|c| {
        c.realms[0].replay = ReplayConfig { database_url: Some(url.clone()), topics: vec![rule], ..ReplayConfig::store_everything() };
    })
    .await;
    let mut p = Client::join_ws(&server, Serializer::Json).await;
    let request = p.publish("d", dict([("acknowledge", true.into())]), vec![Value::UInt(1)]).await;
    common::expect_error_for(&mut p, switchyard::wamp::message::code::PUBLISH, request, "wamp.error.unavailable").await;
    assert_eq!(metric(&server, "publications_refused_offline"), 1);
    sqlx::query(&format!("create database {later}")).execute(&db.pool).await.unwrap();
    // The retry backs off from 1 s; give it a few rounds.
    let mut acknowledged = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let request = p.publish("d", dict([("acknowledge", true.into())]), vec![Value::UInt(2)]).await;
        match p.recv().await {
            Message::Published { request: r, .. } if r == request => {
                acknowledged = true;
                break;
            }
            Message::Error { error, .. } => assert_eq!(error, "wamp.error.unavailable"),
            other => panic!("{other:?}"),
        }
    }
    assert!(acknowledged, "the durable store never connected");
    let rows: i64 = sqlx::query_scalar("select count(*) from replay_events")
        .fetch_one(&sqlx::PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the publication made after the database came");
    drop(server);
    let _ = sqlx::query(&format!("drop database if exists {later} with (force)")).execute(&db.pool).await;
}
