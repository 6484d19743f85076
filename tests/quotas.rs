//! A realm's `[limits]`: sessions per realm and per authid, and per-session token
//! buckets for publications and calls, exactly at their boundaries, counted per realm;
//! a session over its rate is not read until a token is back (so after the burst,
//! refusals and admissions alternate); and a realm at its limits takes nothing from
//! another realm.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{call, expect_error, Client};
use switchyard::config::Config;
use switchyard::server::Server;
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

const CONFIG: &str = r#"
[transport]
listen = "127.0.0.1:0"
rawsocket = "off"

[[realms]]
name = "tenant"
anonymous = "guest"
[[realms.roles]]
name = "guest"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
[[realms.roles]]
name = "service"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
[[realms.principals]]
authid = "svc"
ticket = "svc-secret"
role = "service"
[realms.limits]
max_sessions = 4
max_sessions_per_authid = 2
publications_per_second = 5
publication_burst = 5
calls_per_second = 5
call_burst = 3

[[realms]]
name = "quiet"
anonymous = "guest"
[[realms.roles]]
name = "guest"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
"#;

async fn start() -> Server {
    let cfg = Config::from_str(CONFIG, Path::new("quotas.toml")).expect("valid config");
    Server::start(&cfg).await.expect("router starts")
}

async fn anonymous(server: &Server, realm: &str) -> Client {
    let mut c = Client::ws(server, Serializer::Json).await;
    c.join(realm, Dict::new()).await;
    c
}

/// Opens a ticket session as `svc`; the ABORT reason if refused.
async fn service(server: &Server) -> Result<Client, String> {
    let mut c = Client::ws(server, Serializer::Json).await;
    let details = dict([("authmethods", Value::List(vec!["ticket".into()])), ("authid", "svc".into())]);
    c.send(&Message::Hello { realm: "tenant".into(), details }).await;
    assert!(matches!(c.recv().await, Message::Challenge { .. }));
    c.send(&Message::Authenticate { signature: "svc-secret".into(), extra: Dict::new() }).await;
    match c.recv().await {
        Message::Welcome { session, .. } => {
            c.session = session;
            Ok(c)
        }
        Message::Abort { reason, details } => Err(format!("{reason}: {}", details.get("message").and_then(Value::as_str).unwrap_or_default())),
        other => panic!("expected WELCOME or ABORT, got {other:?}"),
    }
}

fn refusals(server: &Server, realm: &str, kind: &str) -> u64 {
    let text = server.router.metrics.render();
    let want = format!("switchyard_quota_refusals_total{{realm=\"{realm}\",kind=\"{kind}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&want)).map_or(0, |v| v.parse().unwrap())
}

/// Publishes `n` acknowledged events back to back: for each, whether it was admitted
/// (PUBLISHED) rather than refused as rate limited.
async fn publish_burst(c: &mut Client, n: usize) -> Vec<bool> {
    let mut requests = Vec::new();
    for i in 0..n {
        requests.push(c.publish("t", dict([("acknowledge", Value::Bool(true))]), vec![Value::UInt(i as u64)]).await);
    }
    let mut admitted = Vec::new();
    for request in requests {
        match c.recv().await {
            Message::Published { request: r, .. } if r == request => admitted.push(true),
            Message::Error { request_type: code::PUBLISH, request: r, error, .. } if r == request && error == "wamp.error.rate_limited" => admitted.push(false),
            other => panic!("expected PUBLISHED or rate_limited for {request}, got {other:?}"),
        }
    }
    admitted
}

#[tokio::test]
async fn publications_and_calls_stop_at_the_burst_then_go_at_the_rate() {
    let server = start().await;
    let mut c = anonymous(&server, "tenant").await;
    // The burst of 5, then one refused; the session is not read for the 200 ms until
    // the next token, which the next publication takes; and so on.
    assert_eq!(publish_burst(&mut c, 9).await, [true, true, true, true, true, false, true, false, true]);
    assert_eq!(refusals(&server, "tenant", "publication"), 2);
    // Calls have their own bucket (3); a refused call is answered at once.
    for uri in ["wamp.error.no_such_procedure"; 3].into_iter().chain(["wamp.error.rate_limited", "wamp.error.no_such_procedure"]) {
        let request = call(&mut c, "nobody.home", Dict::new(), vec![]).await;
        expect_error(&mut c, request, uri).await;
    }
    assert_eq!(refusals(&server, "tenant", "call"), 1);
    // Another session of the realm has buckets of its own, and another realm no limits.
    let mut other = anonymous(&server, "tenant").await;
    assert_eq!(publish_burst(&mut other, 5).await, [true; 5]);
    let mut quiet = anonymous(&server, "quiet").await;
    assert_eq!(publish_burst(&mut quiet, 200).await, [true; 200]);
    assert_eq!(refusals(&server, "quiet", "publication"), 0);
    // An unacknowledged publication over the rate is dropped silently, and counted: of
    // 10, the 6th, 8th and 10th; the acknowledged one after them gets the next token.
    let mut fresh = anonymous(&server, "tenant").await;
    for i in 0..10 {
        fresh.publish("t", Dict::new(), vec![Value::UInt(i)]).await;
    }
    let request = fresh.publish("t", dict([("acknowledge", Value::Bool(true))]), vec![]).await;
    assert!(matches!(fresh.recv().await, Message::Published { request: r, .. } if r == request));
    assert_eq!(refusals(&server, "tenant", "publication"), 2 + 3);
}

#[tokio::test]
async fn sessions_stop_at_the_realm_and_authid_limits() {
    let server = start().await;
    let first = service(&server).await.unwrap();
    let _second = service(&server).await.unwrap();
    assert_eq!(service(&server).await.err().as_deref(), Some("wamp.error.limit_reached: 'svc' may hold at most 2 sessions in realm 'tenant'"));
    let _a = anonymous(&server, "tenant").await;
    let _b = anonymous(&server, "tenant").await;
    let mut fifth = Client::ws(&server, Serializer::Json).await;
    fifth.send(&Message::Hello { realm: "tenant".into(), details: Dict::new() }).await;
    assert_eq!(fifth.expect_abort("wamp.error.limit_reached").await, "realm 'tenant' holds at most 4 sessions");
    assert_eq!((refusals(&server, "tenant", "session"), refusals(&server, "tenant", "authid_session")), (1, 1));
    // The other realm is not full, and a session that leaves makes room.
    let _quiet = anonymous(&server, "quiet").await;
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match service(&server).await {
            Ok(_) => break,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "no room after a session left: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
