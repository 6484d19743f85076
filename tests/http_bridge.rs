//! The HTTP bridge (`POST /publish`, `POST /call`) against the real router, with a
//! small HTTP/1.1 client of its own and the repository's WAMP client on the other end:
//! exact events and results, disclosure, the replay store's positions, each error's
//! status and body, credentials, rates, size limits, keep-alive, and a call whose
//! client went away.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{args_of, invocation, metric, start, Client, TIMEOUT};
use serde_json::{json, Value as Json};
use switchyard::config::{Config, ReplayConfig, TopicRetention};
use switchyard::server::Server;
use switchyard::wamp::uri::MatchPolicy;
use switchyard::wamp::{dict, Args, Dict, Message, Payload, Serializer, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
struct Http {
    tcp: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Http {
    async fn connect(server: &Server) -> Http {
        Http { tcp: TcpStream::connect(server.websocket).await.unwrap(), buf: Vec::new() }
    }

    async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut head = format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.tcp.write_all(head.as_bytes()).await.unwrap();
        self.tcp.write_all(body).await.unwrap();
        tokio::time::timeout(TIMEOUT, self.read_reply()).await.expect("a reply within the timeout")
    }

    async fn read_reply(&mut self) -> Reply {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> =
            lines.map(|l| l.split_once(':').unwrap()).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
        let len = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
        while self.buf.len() < len {
            self.fill().await;
        }
        let body = self.buf.drain(..len).collect();
        Reply { status, headers, body }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the router closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request on a fresh connection.
async fn post(server: &Server, path: &str, body: Json) -> Reply {
    Http::connect(server).await.post(path, &[], body.to_string().as_bytes()).await
}

async fn post_as(server: &Server, path: &str, authorization: &str, body: Json) -> Reply {
    Http::connect(server).await.post(path, &[("authorization", authorization)], body.to_string().as_bytes()).await
}

fn payload_of(p: &Option<Payload>) -> Option<Value> {
    p.as_ref().map(|p| p.to_value().unwrap())
}

fn bridge_count(server: &Server, endpoint: &str, status: u16) -> u64 {
    let want = format!("switchyard_http_bridge_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} ");
    server.router.metrics.render().lines().find_map(|l| l.strip_prefix(&want)).map_or(0, |v| v.parse().unwrap())
}

async fn subscriber(server: &Server, serializer: Serializer, topic: &str) -> (Client, u64) {
    let mut c = Client::join_ws(server, serializer).await;
    let sub = c.subscribe(topic, Dict::new()).await;
    (c, sub)
}

#[tokio::test]
async fn a_publication_reaches_json_and_msgpack_subscribers_exactly() {
    let server = start(|_| {}).await;
    let (mut json_sub, json_id) = subscriber(&server, Serializer::Json, "com.example.news").await;
    let (mut mp_sub, mp_id) = subscriber(&server, Serializer::MsgPack, "com.example.news").await;
    let body = json!({"topic": "com.example.news", "args": [1, "two", {"three": 3.5}, null], "kwargs": {"k": [true]}});
    let r = post(&server, "/publish", body).await;
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
    let publication = r.json()["publication"].as_u64().expect("a publication id");
    let expected_args = Value::List(vec![1u64.into(), "two".into(), Value::Dict(dict([("three", Value::Float(3.5))])), Value::Null]);
    let expected_kwargs = Value::Dict(dict([("k", Value::List(vec![true.into()]))]));
    for (c, sub) in [(&mut json_sub, json_id), (&mut mp_sub, mp_id)] {
        match c.recv().await {
            Message::Event { subscription, publication: p, details, payload } => {
                assert_eq!((subscription, p), (sub, publication));
                // The default realm stores every topic: a position, and nothing disclosed.
                assert_eq!(details, dict([("_pos", Value::UInt(1))]));
                assert_eq!((payload_of(&payload.args), payload_of(&payload.kwargs)), (Some(expected_args.clone()), Some(expected_kwargs.clone())));
            }
            other => panic!("expected EVENT, got {other:?}"),
        }
    }
    // Arguments travel to a JSON subscriber as the bytes the HTTP client sent.
    let raw = br#"{"topic":"com.example.news","args":[1.50, "\u00e9"]}"#;
    Http::connect(&server).await.post("/publish", &[], raw).await;
    let frame = json_sub.recv_frame().await.unwrap();
    assert!(frame.ends_with(br#"[1.50, "\u00e9"]]"#), "{}", String::from_utf8_lossy(&frame));
    assert_eq!(metric(&server, "events_published"), 2);
    assert_eq!(bridge_count(&server, "publish", 200), 2);
}

#[tokio::test]
async fn publish_options_disclosure_lists_and_the_replay_store() {
    let server = start(|c| {
        let rule = TopicRetention { uri: "logs.".into(), policy: MatchPolicy::Prefix, max_events: 10, max_age: None, max_bytes: None, durable: false };
        c.realms[0].replay = ReplayConfig { topics: vec![rule], ..ReplayConfig::store_everything() };
    })
    .await;
    let (mut a, _) = subscriber(&server, Serializer::Json, "logs.c1").await;
    let (mut b, _) = subscriber(&server, Serializer::Json, "logs.c1").await;
    let r = post(&server, "/publish", json!({"topic": "logs.c1", "args": ["x"], "options": {"disclose_me": true, "exclude": [b.session]}})).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let Message::Event { details, .. } = a.recv().await else { panic!() };
    let publisher = details["publisher"].as_u64().expect("disclosed");
    assert_ne!(publisher, a.session);
    assert_eq!(details["publisher_authid"], Value::Str(format!("anonymous-{publisher}")));
    assert_eq!(details["publisher_authrole"], Value::Str("anonymous".into()));
    // A listed publication is delivered but not stored (spec); the next one is.
    assert!(!details.contains_key("_pos"));
    post(&server, "/publish", json!({"topic": "logs.c1", "args": ["y"]})).await;
    let Message::Event { details, payload, .. } = a.recv().await else { panic!() };
    assert_eq!((details.get("_pos"), args_of(&payload)), (Some(&Value::UInt(1)), vec![Value::from("y")]));
    let Message::Event { payload, .. } = b.recv().await else { panic!() };
    assert_eq!(args_of(&payload), vec![Value::from("y")], "b was excluded from the first one only");

    let bad = post(&server, "/publish", json!({"topic": "logs.c1", "options": {"exclude": ["b"]}})).await;
    assert_eq!((bad.status, bad.json()), (400, json!({"error": "wamp.error.invalid_argument", "message": "exclude must be a list of session ids"})));
}

#[tokio::test]
async fn a_call_is_routed_to_a_callee_and_its_result_returned() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::MsgPack).await;
    callee.register("com.example.add").await;
    let http = tokio::spawn({
        let addr = server.websocket;
        async move {
            let mut h = Http { tcp: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() };
            h.post("/call", &[], json!({"procedure": "com.example.add", "args": [2, 3], "kwargs": {"round": true}, "options": {"disclose_me": true}}).to_string().as_bytes()).await
        }
    });
    let (request, details, payload) = invocation(&mut callee).await;
    assert_eq!(args_of(&payload), vec![Value::UInt(2), Value::UInt(3)]);
    assert_eq!(payload_of(&payload.kwargs), Some(Value::Dict(dict([("round", true.into())]))));
    let caller = details["caller"].as_u64().expect("disclosed");
    assert_eq!(details["caller_authid"], Value::Str(format!("anonymous-{caller}")));
    let result = Args { args: Some(Payload::from_value(Serializer::MsgPack, &Value::List(vec![5u64.into()]))), kwargs: Some(Payload::from_value(Serializer::MsgPack, &Value::Dict(dict([("exact", true.into())])))) };
    callee.send(&Message::Yield { request, options: Dict::new(), payload: result }).await;
    let r = http.await.unwrap();
    assert_eq!((r.status, r.json()), (200, json!({"args": [5], "kwargs": {"exact": true}})));

    // The router's own procedures answer too.
    let r = post(&server, "/call", json!({"procedure": "wamp.session.count"})).await;
    assert_eq!(r.json(), json!({"args": [1], "kwargs": {}}), "the callee; a bridge session is not in the table");
    let r = post(&server, "/call", json!({"procedure": "wamp.session.add_testament", "args": ["t", [], {}]})).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (501, Some("wamp.error.feature_not_supported")));
}

#[tokio::test]
async fn call_errors_map_to_statuses() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.example.fail").await;
    callee.register("com.example.slow").await;
    let addr = server.websocket;
    let call = |body: Json| {
        tokio::spawn(async move {
            let mut h = Http { tcp: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() };
            h.post("/call", &[], body.to_string().as_bytes()).await
        })
    };

    let pending = call(json!({"procedure": "com.example.fail", "args": [1]}));
    let (request, _, _) = invocation(&mut callee).await;
    let payload = Args {
        args: Some(Payload::from_value(Serializer::Json, &Value::List(vec!["no such user".into(), 7u64.into()]))),
        kwargs: Some(Payload::from_value(Serializer::Json, &Value::Dict(dict([("user", "bob".into())])))),
    };
    callee.send(&Message::Error { request_type: 68, request, details: Dict::new(), error: "com.example.error.not_found".into(), payload }).await;
    let r = pending.await.unwrap();
    let expected = json!({"error": "com.example.error.not_found", "message": "no such user", "args": ["no such user", 7], "kwargs": {"user": "bob"}});
    assert_eq!((r.status, r.json()), (502, expected));

    let pending = call(json!({"procedure": "com.example.fail"}));
    let (request, _, _) = invocation(&mut callee).await;
    callee.send(&Message::Error { request_type: 68, request, details: Dict::new(), error: "wamp.error.invalid_argument".into(), payload: Args::default() }).await;
    let r = pending.await.unwrap();
    assert_eq!((r.status, r.json()), (400, json!({"error": "wamp.error.invalid_argument", "message": "the call failed with wamp.error.invalid_argument"})));

    let started = std::time::Instant::now();
    let r = call(json!({"procedure": "com.example.slow", "options": {"timeout": 100}})).await.unwrap();
    assert_eq!((r.status, r.json()["error"].as_str()), (504, Some("wamp.error.timeout")));
    assert!(started.elapsed() >= Duration::from_millis(100));
    // The callee supports cancellation: the router interrupted the call it ended.
    let (request, _, _) = invocation(&mut callee).await;
    assert!(matches!(callee.recv().await, Message::Interrupt { request: r, .. } if r == request));

    let r = post(&server, "/call", json!({"procedure": "com.example.nobody"})).await;
    assert_eq!((r.status, r.json()), (404, json!({"error": "wamp.error.no_such_procedure", "message": "no procedure registered under 'com.example.nobody'"})));
    let r = post(&server, "/call", json!({"procedure": "Not A Uri"})).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("wamp.error.invalid_uri")));
    let r = post(&server, "/call", json!({"procedure": "com.example.slow", "options": {"ppt_scheme": "x"}})).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("wamp.error.invalid_argument")));

    // The callee leaves mid-call: the caller is told it was canceled.
    let pending = call(json!({"procedure": "com.example.slow"}));
    invocation(&mut callee).await;
    callee.close().await;
    let r = pending.await.unwrap();
    assert_eq!((r.status, r.json()["error"].as_str()), (504, Some("wamp.error.canceled")));
    assert_eq!(bridge_count(&server, "call", 504), 2);
    assert_eq!(bridge_count(&server, "call", 502), 1);
}

/// A client that disconnects while its call runs: the call is canceled, and a callee
/// that supports cancellation is interrupted.
#[tokio::test]
async fn a_call_whose_client_went_away_is_interrupted() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.example.slow").await;
    let mut h = Http::connect(&server).await;
    let body = json!({"procedure": "com.example.slow"}).to_string();
    let head = format!("POST /call HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    h.tcp.write_all(head.as_bytes()).await.unwrap();
    let (request, _, _) = invocation(&mut callee).await;
    drop(h);
    match callee.recv().await {
        Message::Interrupt { request: r, options } => assert_eq!((r, options), (request, dict([("mode", "killnowait".into())]))),
        other => panic!("expected INTERRUPT, got {other:?}"),
    }
}

const AUTH_CONFIG: &str = r#"
[transport]
listen = "127.0.0.1:0"
rawsocket = "off"

[limits]
max_message_size = 2048
max_hello_size = 1024
frame_timeout_ms = 400
handshake_timeout_ms = 300

[[realms]]
name = "open"
anonymous = "guest"
[[realms.roles]]
name = "guest"
[[realms.roles.permissions]]
uri = "public."
match = "prefix"
allow = { publish = true, subscribe = true, call = true, register = true }
[realms.limits]
publications_per_second = 1
publication_burst = 2

[[realms]]
name = "closed"
[[realms.roles]]
name = "service"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { publish = true, subscribe = true, call = true, register = true }
disclose = { publisher = true }
[[realms.roles]]
name = "reader"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { subscribe = true }
[[realms.principals]]
authid = "svc"
ticket = "svc-secret"
role = "service"
[[realms.principals]]
authid = "rd"
ticket = "rd-secret"
role = "reader"
"#;

async fn start_auth() -> Server {
    let cfg = Config::from_str(AUTH_CONFIG, Path::new("bridge.toml")).expect("valid config");
    Server::start(&cfg).await.expect("router starts")
}

#[tokio::test]
async fn credentials_realms_and_authorization() {
    let server = start_auth().await;
    let mut sub = Client::ws(&server, Serializer::Json).await;
    let hello = dict([("authmethods", Value::List(vec!["ticket".into()])), ("authid", "rd".into())]);
    sub.send(&Message::Hello { realm: "closed".into(), details: hello }).await;
    assert!(matches!(sub.recv().await, Message::Challenge { .. }));
    sub.send(&Message::Authenticate { signature: "rd-secret".into(), extra: Dict::new() }).await;
    assert!(matches!(sub.recv().await, Message::Welcome { .. }));
    sub.subscribe("svc.news", Dict::new()).await;

    // The realm by query parameter; the role discloses its publisher.
    let r = post_as(&server, "/publish?realm=closed", "Bearer svc-secret", json!({"topic": "svc.news", "args": [1]})).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let Message::Event { details, .. } = sub.recv().await else { panic!() };
    assert_eq!((details["publisher_authid"].as_str(), details["publisher_authrole"].as_str()), (Some("svc"), Some("service")));
    // Basic: authid and ticket; the body's realm.
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("svc:svc-secret"));
    let r = post_as(&server, "/publish", &basic, json!({"topic": "svc.news", "args": [2], "realm": "closed"})).await;
    assert_eq!(r.status, 200);
    assert!(matches!(sub.recv().await, Message::Event { .. }));

    let cases = [
        (post_as(&server, "/publish?realm=closed", "Bearer wrong", json!({"topic": "svc.news"})).await, 401, "wamp.error.authentication_failed", "invalid ticket"),
        (post(&server, "/publish?realm=closed", json!({"topic": "svc.news"})).await, 401, "wamp.error.no_auth_method", "realm 'closed' admits no anonymous requests: send Authorization: Bearer <token>"),
        (post_as(&server, "/publish?realm=closed", "Bearer rd-secret", json!({"topic": "svc.news"})).await, 403, "wamp.error.not_authorized", "session is not authorized to publish 'svc.news'"),
        (post_as(&server, "/publish", "Token x", json!({"topic": "public.t"})).await, 401, "wamp.error.no_auth_method", "the Authorization header must be `Bearer <ticket or API token>`, or `Basic` with authid:ticket"),
        (post(&server, "/publish?realm=nowhere", json!({"topic": "public.t"})).await, 404, "wamp.error.no_such_realm", "no such realm 'nowhere'"),
        (post(&server, "/publish", json!({"topic": "private.t"})).await, 403, "wamp.error.not_authorized", "session is not authorized to publish 'private.t'"),
    ];
    for (r, status, uri, message) in cases {
        assert_eq!((r.status, r.json()), (status, json!({"error": uri, "message": message})));
        if status == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
    // The default realm is the first configured: "open", with its anonymous role.
    assert_eq!(post(&server, "/publish", json!({"topic": "public.t"})).await.status, 200);
    assert_eq!(metric(&server, "auth_failures"), 1);
}

#[tokio::test]
async fn bodies_limits_and_rates() {
    let server = start_auth().await;
    let malformed = Http::connect(&server).await.post("/publish", &[], b"{\"topic\": ").await;
    assert_eq!((malformed.status, malformed.json()["error"].as_str()), (400, Some("wamp.error.invalid_argument")));
    let big = json!({"topic": "public.t", "args": ["x".repeat(3000)]});
    let len = big.to_string().len();
    let r = post(&server, "/publish", big).await;
    let message = format!("the body of {len} bytes exceeds the limit of 2048 bytes");
    assert_eq!((r.status, r.json()), (413, json!({"error": "wamp.error.payload_size_exceeded", "message": message})));

    // Two at once (the burst), then one a second, per anonymous address.
    let statuses: Vec<u16> = [post(&server, "/publish", json!({"topic": "public.t"})).await, post(&server, "/publish", json!({"topic": "public.t"})).await, post(&server, "/publish", json!({"topic": "public.t"})).await]
        .iter()
        .map(|r| r.status)
        .collect();
    // The first request of this test's budget was the 400 and the 413, which spent none.
    assert_eq!(statuses, vec![200, 200, 429]);
    let r = post(&server, "/publish", json!({"topic": "public.t"})).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    assert_eq!(r.json(), json!({"error": "wamp.error.rate_limited", "message": "this client publishes faster than its realm allows"}));
    let text = server.router.metrics.render();
    assert!(text.contains("switchyard_quota_refusals_total{realm=\"open\",kind=\"publication\"} 2"), "{text}");
    assert_eq!(bridge_count(&server, "publish", 429), 2);
    assert_eq!(bridge_count(&server, "publish", 413), 1);
}

/// A connection that posted to the bridge is kept open past the handshake deadline
/// (300 ms here); one that did nothing is closed at it.
#[tokio::test]
async fn keep_alive_outlives_the_handshake_deadline() {
    let server = start_auth().await;
    let mut h = Http::connect(&server).await;
    for _ in 0..3 {
        let r = h.post("/publish", &[], json!({"topic": "public.keep"}).to_string().as_bytes()).await;
        assert!(r.status == 200 || r.status == 429, "{r:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut idle = TcpStream::connect(server.websocket).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut byte)).await.expect("closed at the deadline");
    assert_eq!(closed.unwrap(), 0);
    // The bridge connection is still open after twice the deadline.
    let r = h.post("/call", &[], json!({"procedure": "public.nobody"}).to_string().as_bytes()).await;
    assert_eq!(r.status, 404);
}

/// A body without a declared length is refused as soon as it passes the limit, and a
/// body that does not arrive within frame_timeout_ms (400 ms here) gets 408.
#[tokio::test]
async fn chunked_and_slow_bodies() {
    let server = start_auth().await;
    let mut h = Http::connect(&server).await;
    let chunk = "x".repeat(1000);
    let mut wire = String::from("POST /publish HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        wire.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    h.tcp.write_all(wire.as_bytes()).await.unwrap();
    let r = tokio::time::timeout(TIMEOUT, h.read_reply()).await.unwrap();
    assert_eq!((r.status, r.json()["error"].as_str()), (413, Some("wamp.error.payload_size_exceeded")));

    let mut h = Http::connect(&server).await;
    h.tcp.write_all(b"POST /publish HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n{\"topic\"").await.unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(TIMEOUT, h.read_reply()).await.unwrap();
    assert_eq!((r.status, r.json()), (408, json!({"error": "wamp.error.timeout", "message": "the request body did not arrive within 400 ms"})));
    assert!(started.elapsed() >= Duration::from_millis(350), "{:?}", started.elapsed());
}
