//! The workbench realm end to end: the router with the permission-graph authorizer on a
//! real PostgreSQL (`tests/support/postgres.rs`), driven by our own WAMP client over
//! token authentication. What stock clients see is tested in `tests/interop` suites of
//! autobahn-python and autobahn-js; here are the exact orders and counts.
//!
//! - `revocation`: a permission withdrawn ends what depended on it, and nothing else;
//! - `patterns`: a prefix subscription over protected topics, filtered per object;
//! - `tokens`: authentication by API token or stored key, and sessions that end with
//!   their token or key;
//! - `outage`: the database lost mid-stream and mid-revocation.

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/mod.rs"]
mod support;

mod outage;
mod patterns;
mod revocation;
mod tokens;

use std::time::Duration;

use common::Client;
use sqlx::PgPool;
use switchyard::config::{Config, GraphConfig, LevelName, PolicyConfig, PolicyRule, PrincipalConfig, RealmConfig, Requirement, RoleConfig};
use switchyard::server::Server;
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

/// The shipped workbench policy (`policies/workbench.toml`), loaded the way the router
/// loads it, so that the tests hold the shipped file to what they check.
fn policy() -> PolicyConfig {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("switchyard.toml");
    let config = Config::load(&shipped).unwrap_or_else(|e| panic!("{e}"));
    let realm = config.realms.into_iter().find(|r| r.name == "workbench").expect("the workbench realm ships");
    realm.graph.expect("authorized by the graph").policy
}

pub fn config(database_url: &str) -> Config {
    let principal = |authid: &str, role: &str| PrincipalConfig::ticket(authid, format!("{authid}-secret"), role);
    let realm = RealmConfig {
        name: "workbench".into(),
        anonymous: None,
        roles: vec![RoleConfig { name: "controller".into(), permissions: vec![] }, RoleConfig { name: "dispatcher".into(), permissions: vec![] }],
        principals: vec![principal("controller-1", "controller"), principal("dispatcher-1", "dispatcher")],
        graph: Some(GraphConfig {
            database_url: Some(database_url.into()),
            migrate: true,
            cache_principals: 1000,
            cache_objects: 1000,
            policy: policy(),
        }),
        replay: switchyard::config::ReplayConfig::none(),
        limits: Default::default(),
    };
    Config { listen: "127.0.0.1:0".parse().unwrap(), rawsocket: None, realms: vec![realm], ..Config::default() }
}

/// A router on the database, once it follows the graph.
pub async fn start(database_url: &str) -> Server {
    let server = Server::start(&config(database_url)).await.expect("router starts");
    wait_online(&server).await;
    server
}

/// Waits until the realm's authorizer follows the graph.
pub async fn wait_online(server: &Server) {
    for _ in 0..500 {
        if metric_text(server).contains("switchyard_graph_online{realm=\"workbench\"} 1") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the workbench realm did not come online");
}

/// Waits until the router has applied every change committed so far.
pub async fn settle(server: &Server, pool: &PgPool) {
    let last: i64 = sqlx::query_scalar("select coalesce(max(seq), 0) from switchyard_graph_changes").fetch_one(pool).await.unwrap();
    let prefix = "switchyard_graph_applied_seq{realm=\"workbench\"} ";
    for _ in 0..500 {
        let text = metric_text(server);
        let applied: i64 = text.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|v| v.parse().ok()).unwrap_or(0);
        if applied >= last {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the router did not apply change {last}");
}

pub fn metric_text(server: &Server) -> String {
    server.router.render_metrics()
}

/// Runs SQL statements on the platform's tables, as the platform would.
pub async fn sql(pool: &PgPool, statements: &str) {
    for s in statements.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(s).execute(pool).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// The graph most tests use: users alice, bob, carol (admin); role `lab` with alice
/// and bob as readers; project `p1` shared with `lab` at read, owning containers `c1`
/// and `c2`; `c3` owned by carol.
pub async fn lab(pool: &PgPool) {
    sql(
        pool,
        "insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('lab', 'role'), ('p1', 'project');
         insert into principals (id, kind, is_admin) values ('carol', 'user', true);
         insert into objects (id, kind, owner_id) values ('c1', 'container', 'p1'), ('c2', 'container', 'p1'), ('c3', 'container', 'carol');
         insert into grants (tail_id, head_id, level) values ('alice', 'lab', 1), ('bob', 'lab', 1), ('lab', 'p1', 1)",
    )
    .await;
}

/// A ticket join; `revocation`: announce `subscription_revocation`.
pub async fn join(server: &Server, authid: Option<&str>, ticket: &str, revocation: bool) -> Result<Client, (String, String)> {
    let mut c = Client::ws(server, Serializer::Json).await;
    let subscriber = Value::Dict(dict([("features", Value::Dict(dict([("subscription_revocation", revocation.into())])))]));
    let callee = Value::Dict(dict([("features", Value::Dict(dict([("registration_revocation", revocation.into())])))]));
    let roles = dict([("subscriber", subscriber), ("publisher", Value::Dict(Dict::new())), ("caller", Value::Dict(Dict::new())), ("callee", callee)]);
    let mut details = dict([("authmethods", Value::List(vec!["ticket".into()])), ("roles", Value::Dict(roles))]);
    if let Some(a) = authid {
        details.insert("authid".into(), a.into());
    }
    c.send(&Message::Hello { realm: "workbench".into(), details }).await;
    match c.recv().await {
        Message::Challenge { .. } => {}
        Message::Abort { reason, details } => return Err((reason, details["message"].as_str().unwrap_or_default().to_owned())),
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
    c.send(&Message::Authenticate { signature: ticket.into(), extra: Dict::new() }).await;
    welcomed(c).await
}

/// A WAMP-Cryptosign join with the Ed25519 key of `seed`, which the graph stores for
/// some user (`user_keys`).
pub async fn join_with_key(server: &Server, seed: &[u8; 32]) -> Result<Client, (String, String)> {
    use ed25519_dalek::{Signer, SigningKey};
    use switchyard::auth::cryptosign::{decode_hex, encode_hex};
    let key = SigningKey::from_bytes(seed);
    let mut c = Client::ws(server, Serializer::Json).await;
    let extra = dict([("pubkey", encode_hex(&key.verifying_key().to_bytes()).into())]);
    let details = dict([
        ("authmethods", Value::List(vec!["cryptosign".into()])),
        ("authextra", Value::Dict(extra)),
        ("roles", Value::Dict(dict([("subscriber", Value::Dict(Dict::new()))]))),
    ]);
    c.send(&Message::Hello { realm: "workbench".into(), details }).await;
    let challenge = match c.recv().await {
        Message::Challenge { extra, .. } => decode_hex(extra["challenge"].as_str().expect("a challenge")).expect("hex"),
        Message::Abort { reason, details } => return Err((reason, details["message"].as_str().unwrap_or_default().to_owned())),
        other => panic!("expected CHALLENGE, got {other:?}"),
    };
    c.send(&Message::Authenticate { signature: encode_hex(&key.sign(&challenge).to_bytes()), extra: Dict::new() }).await;
    welcomed(c).await
}

/// The router's answer to AUTHENTICATE: the joined client, or ABORT's reason and message.
async fn welcomed(mut c: Client) -> Result<Client, (String, String)> {
    match c.recv().await {
        Message::Welcome { session, details } => {
            c.session = session;
            c.welcome = details;
            Ok(c)
        }
        Message::Abort { reason, details } => Err((reason, details["message"].as_str().unwrap_or_default().to_owned())),
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

/// A user's session by a fresh token.
pub async fn user(server: &Server, pool: &PgPool, user: &str) -> Client {
    let token = switchyard::auth::graph::GraphStore::from_pool(pool.clone()).create_token(user, None).await.unwrap();
    join(server, None, &token, true).await.unwrap_or_else(|e| panic!("{user} cannot join: {e:?}"))
}

pub async fn service(server: &Server, authid: &str) -> Client {
    join(server, Some(authid), &format!("{authid}-secret"), true).await.unwrap()
}

pub async fn nothing_within(c: &mut Client, ms: u64) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(ms), c.recv_frame()).await {
        panic!("expected nothing, got {:?}", frame.map(|f| Message::decode(Serializer::Json, &f)));
    }
}

pub fn ack() -> Dict {
    dict([("acknowledge", true.into())])
}

/// Publishes with acknowledgement and waits for PUBLISHED.
pub async fn publish(c: &mut Client, topic: &str, args: Vec<Value>) {
    let request = c.publish(topic, ack(), args).await;
    match c.recv().await {
        Message::Published { request: r, .. } => assert_eq!(r, request),
        other => panic!("expected PUBLISHED for {topic}, got {other:?}"),
    }
}

/// The next EVENT: (subscription, topic from details if any, args).
pub async fn event(c: &mut Client) -> (u64, Option<String>, Vec<Value>) {
    match c.recv().await {
        Message::Event { subscription, details, payload, .. } => {
            (subscription, details.get("topic").and_then(Value::as_str).map(str::to_owned), common::args_of(&payload))
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
}

pub async fn expect_revoked(c: &mut Client, subscription: u64) {
    match c.recv().await {
        Message::Unsubscribed { request: 0, details: Some(d) } => {
            assert_eq!(d, dict([("subscription", Value::UInt(subscription)), ("reason", "wamp.error.not_authorized".into())]))
        }
        other => panic!("expected UNSUBSCRIBED 0 for {subscription}, got {other:?}"),
    }
}
