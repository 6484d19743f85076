//! Transport edge cases: RawSocket handshake errors, PING/PONG, size limits both ways,
//! the session limit, and the HTTP endpoints on the WebSocket port.

mod common;

use common::{metric, start, Client};
use switchyard::wamp::{Dict, Message, Serializer, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn rawsocket_handshake_errors() {
    let server = start(|_| {}).await;
    let (_, reply) = Client::raw_handshake(&server, [0x7F, 0xF7, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0x10, 0, 0], "serializer unsupported");
    let (_, reply) = Client::raw_handshake(&server, [0x7F, 0xF1, 0, 1]).await;
    assert_eq!(reply, [0x7F, 0x30, 0, 0], "reserved bits");
    // Default limit 16 MiB is announced as exponent 15.
    let (_, reply) = Client::raw_handshake(&server, [0x7F, 0x02, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0xF2, 0, 0]);
}

#[tokio::test]
async fn rawsocket_ping_is_answered_with_the_same_payload() {
    let server = start(|_| {}).await;
    let mut c = Client::raw(&server, Serializer::Json, 15).await;
    c.send_wire(&[1, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']).await;
    assert_eq!(c.recv_wire().await, Some((2, bytes::Bytes::from_static(b"hello"))));
}

#[tokio::test]
async fn oversized_message_closes_that_session_only() {
    let server = start(|c| c.limits.max_message_size = 65536).await;
    let (_, reply) = Client::raw_handshake(&server, [0x7F, 0xF1, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0x71, 0, 0], "64 KiB announced as exponent 7");

    let mut other = Client::join_ws(&server, Serializer::Json).await;
    for mut c in [Client::raw(&server, Serializer::Json, 15).await, Client::ws(&server, Serializer::MsgPack).await] {
        c.join("realm1", Dict::new()).await;
        let big = Value::Str("x".repeat(100_000));
        c.publish("com.big", Dict::new(), vec![big]).await;
        let message = c.expect_abort("wamp.error.protocol_violation").await;
        assert!(message.contains("exceeds the limit of 65536 bytes"), "{message}");
        c.expect_closed().await;
    }
    assert_eq!(metric(&server, "oversized_messages"), 2);
    let sub = other.subscribe("com.still.alive", Dict::new()).await;
    assert!(sub > 0);
}

#[tokio::test]
async fn events_above_the_clients_limit_are_dropped_for_that_client_only() {
    let server = start(|_| {}).await;
    // Exponent 0: this client accepts at most 512 bytes.
    let mut small = Client::raw(&server, Serializer::MsgPack, 0).await;
    small.join("realm1", Dict::new()).await;
    let mut big = Client::join_ws(&server, Serializer::MsgPack).await;
    small.subscribe("com.x", Dict::new()).await;
    big.subscribe("com.x", Dict::new()).await;
    let mut publisher = Client::join_ws(&server, Serializer::Json).await;
    publisher.publish("com.x", Dict::new(), vec![Value::Str("y".repeat(1000))]).await;
    publisher.publish("com.x", Dict::new(), vec![Value::Str("small".into())]).await;
    assert!(matches!(big.recv().await, Message::Event { .. }));
    assert!(matches!(big.recv().await, Message::Event { .. }));
    match small.recv().await {
        Message::Event { details, payload, .. } => {
            assert_eq!(common::args_of(&payload), vec![Value::from("small")]);
            assert_eq!(details.get("_dropped"), Some(&Value::UInt(1)));
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
    assert_eq!(metric(&server, "events_dropped_too_large"), 1);
}

#[tokio::test]
async fn session_limit_refuses_connections_in_the_transports_own_way() {
    let server = start(|c| c.limits.max_sessions = 2).await;
    let _a = Client::join_ws(&server, Serializer::Json).await;
    // Established sessions: a connection without one would make room instead.
    let mut b = Client::raw(&server, Serializer::Json, 15).await;
    b.join("realm1", Dict::new()).await;
    let (_, reply) = Client::raw_handshake(&server, [0x7F, 0xF1, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0x40, 0, 0], "maximum connection count reached");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(server.websocket_url()).unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected HTTP 503, got {:?}", other.map(|r| r.1)),
    }
    assert_eq!(metric(&server, "sessions_refused"), 2);
}

#[tokio::test]
async fn websocket_without_a_wamp_subprotocol_is_refused() {
    let server = start(|_| {}).await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(server.websocket_url()).unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("expected HTTP 400, got {:?}", other.map(|r| r.1)),
    }
}

async fn http_get(server: &switchyard::server::Server, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(server.websocket).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn health_and_metrics_share_the_websocket_port() {
    let server = start(|_| {}).await;
    let _c = Client::join_ws(&server, Serializer::Json).await;
    let health = http_get(&server, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // The session's connection and this request's own.
    let max = server.router.max_connections();
    assert!(health.ends_with(&format!(r#"{{"status":"ok","connections":2,"max_connections":{max}}}"#)), "{health}");
    let metrics = http_get(&server, "/metrics").await;
    assert!(metrics.contains("switchyard_sessions 1\n"), "{metrics}");
}

#[tokio::test]
async fn shutdown_says_goodbye_to_every_session() {
    let server = start(|_| {}).await;
    let mut ws = Client::join_ws(&server, Serializer::Json).await;
    let mut raw = Client::raw(&server, Serializer::Cbor, 15).await;
    raw.join("realm1", Dict::new()).await;
    let shutdown = tokio::spawn(server.shut_down(std::time::Duration::from_secs(3)));
    for c in [&mut ws, &mut raw] {
        match c.recv().await {
            Message::Goodbye { reason, .. } => assert_eq!(reason, "wamp.close.system_shutdown"),
            other => panic!("expected GOODBYE, got {other:?}"),
        }
        c.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() }).await;
        c.expect_closed().await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(5), shutdown).await.expect("shutdown finishes").unwrap();
}

#[tokio::test]
async fn a_peer_that_ignores_pings_is_disconnected_one_that_answers_stays() {
    use std::time::{Duration, Instant};
    let server = start(|c| c.limits.ping_interval = Duration::from_millis(100)).await;
    let mut silent = Client::raw(&server, Serializer::Json, 15).await;
    silent.join("realm1", Dict::new()).await;
    let last_sign_of_life = Instant::now();
    let mut lively = Client::raw(&server, Serializer::Json, 15).await;
    lively.join("realm1", Dict::new()).await;
    // The silent peer reads the router's PINGs but never answers.
    let silent_task = tokio::spawn(async move {
        let started = last_sign_of_life;
        let mut pings = 0;
        while let Some((kind, payload)) = silent.recv_wire().await {
            assert_eq!((kind, payload.len()), (1, 0), "only empty PINGs are expected");
            pings += 1;
        }
        (pings, started.elapsed())
    });
    // Meanwhile the lively peer answers every PING (recv_frame does) for a whole second,
    // five times the silence that gets a peer disconnected.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(20), lively.recv_frame()).await;
    }
    let (pings, elapsed) = silent_task.await.unwrap();
    // Disconnected at the first tick more than 1.5 intervals after its last sign of life
    // (its HELLO): the second tick after it, having ignored the PING of the first (or
    // the third, if the HELLO came more than half an interval after the connection's
    // ticks started).
    assert!((1..=2).contains(&pings), "{pings} pings before the disconnect");
    assert!(elapsed >= Duration::from_millis(150) && elapsed < Duration::from_millis(300), "{elapsed:?}");
    let sub = lively.subscribe("com.alive", Dict::new()).await;
    assert!(sub > 0);
}

#[tokio::test]
async fn the_clients_preferred_subprotocol_wins() {
    let server = start(|_| {}).await;
    for (offer, expected) in [
        ("wamp.2.flatbuffers, wamp.2.msgpack, wamp.2.json", "wamp.2.msgpack"),
        ("wamp.2.cbor,wamp.2.json", "wamp.2.cbor"),
        ("wamp.2.json", "wamp.2.json"),
    ] {
        let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(server.websocket_url()).unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", offer.parse().unwrap());
        let (_, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], expected, "offered {offer}");
    }
}
