//! Protocol edge cases with our own client: malformed and out-of-state messages abort
//! only the offending session, with a message saying what was wrong.

mod common;

use common::{args_of, metric, start, Client};
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

#[tokio::test]
async fn malformed_json_aborts_that_session_only() {
    let server = start(|_| {}).await;
    let mut bystander = Client::join_ws(&server, Serializer::Json).await;
    let sub = bystander.subscribe("com.x", Dict::new()).await;

    let mut bad = Client::join_ws(&server, Serializer::Json).await;
    bad.send_bytes(b"[16, 1, {}, \"com.x\"").await;
    let message = bad.expect_abort("wamp.error.protocol_violation").await;
    assert!(message.starts_with("cannot decode message: malformed json"), "{message}");
    bad.expect_closed().await;

    let mut publisher = Client::join_ws(&server, Serializer::Json).await;
    publisher.publish("com.x", Dict::new(), vec![Value::UInt(7)]).await;
    match bystander.recv().await {
        Message::Event { subscription, payload, .. } => {
            assert_eq!(subscription, sub);
            assert_eq!(args_of(&payload), vec![Value::UInt(7)]);
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
    assert_eq!(metric(&server, "protocol_violations"), 1);
}

#[tokio::test]
async fn every_serializer_reports_what_was_wrong() {
    let server = start(|_| {}).await;
    let cases: [(Serializer, &[u8], &str); 6] = [
        (Serializer::Json, b"[999]", "cannot decode message: unknown message type 999"),
        (Serializer::Json, b"[32, 1, {}]", "cannot decode message: SUBSCRIBE: expected 4 elements, got 3"),
        (Serializer::Json, b"[32, \"x\", {}, \"com.x\"]", "cannot decode message: SUBSCRIBE.Request: expected an integer id, got string"),
        (Serializer::Json, b"[16, 1, {}, \"com.x\", {}]", "cannot decode message: PUBLISH.Arguments: expected a list, got dict"),
        // msgpack [32, 1, {}] and cbor [32, 1, {}]
        (Serializer::MsgPack, &[0x93, 0x20, 0x01, 0x80], "cannot decode message: SUBSCRIBE: expected 4 elements, got 3"),
        (Serializer::Cbor, &[0x83, 0x18, 0x20, 0x01, 0xa0], "cannot decode message: SUBSCRIBE: expected 4 elements, got 3"),
    ];
    for (ser, bytes, expected) in cases {
        let mut c = Client::join_ws(&server, ser).await;
        c.send_bytes(bytes).await;
        assert_eq!(c.expect_abort("wamp.error.protocol_violation").await, expected);
        c.expect_closed().await;
    }
}

#[tokio::test]
async fn messages_out_of_state_are_violations() {
    let server = start(|_| {}).await;
    // Before HELLO.
    let mut c = Client::ws(&server, Serializer::Json).await;
    c.send(&Message::Subscribe { request: 1, options: Dict::new(), topic: "com.x".into() }).await;
    assert_eq!(c.expect_abort("wamp.error.protocol_violation").await, "expected HELLO, got SUBSCRIBE");
    c.expect_closed().await;
    // A router-to-client message from a client.
    let mut c = Client::join_ws(&server, Serializer::MsgPack).await;
    c.send(&Message::Welcome { session: 1, details: Dict::new() }).await;
    assert_eq!(
        c.expect_abort("wamp.error.protocol_violation").await,
        "WELCOME is not allowed from a client in an established session"
    );
    // A second HELLO.
    let mut c = Client::join_ws(&server, Serializer::Cbor).await;
    c.send(&Message::Hello { realm: "realm1".into(), details: Dict::new() }).await;
    assert_eq!(c.expect_abort("wamp.error.protocol_violation").await, "HELLO is not allowed from a client in an established session");
}

#[tokio::test]
async fn unknown_realm_and_bad_realm_uri() {
    let server = start(|_| {}).await;
    let mut c = Client::ws(&server, Serializer::Json).await;
    c.send(&Message::Hello { realm: "com.nowhere".into(), details: Dict::new() }).await;
    assert_eq!(c.expect_abort("wamp.error.no_such_realm").await, "no such realm 'com.nowhere'");
    c.expect_closed().await;
    let mut c = Client::ws(&server, Serializer::Json).await;
    c.send(&Message::Hello { realm: "Bad Realm".into(), details: Dict::new() }).await;
    c.expect_abort("wamp.error.invalid_uri").await;
}

#[tokio::test]
async fn hello_timeout_closes_a_silent_connection() {
    let server = start(|c| c.limits.hello_timeout = std::time::Duration::from_millis(200)).await;
    let mut c = Client::ws(&server, Serializer::Json).await;
    let started = std::time::Instant::now();
    assert_eq!(c.expect_abort("wamp.error.protocol_violation").await, "no HELLO within 200ms");
    c.expect_closed().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn goodbye_is_answered_and_closes() {
    let server = start(|_| {}).await;
    let mut c = Client::join_ws(&server, Serializer::Json).await;
    c.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.close_realm".into() }).await;
    match c.recv().await {
        Message::Goodbye { reason, .. } => assert_eq!(reason, "wamp.close.goodbye_and_out"),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    c.expect_closed().await;
}

#[tokio::test]
async fn invalid_uris_and_options_get_errors() {
    let server = start(|_| {}).await;
    let mut c = Client::join_ws(&server, Serializer::Json).await;
    let cases = [
        (Message::Subscribe { request: 1, options: Dict::new(), topic: "com..x".into() }, "wamp.error.invalid_uri"),
        (Message::Subscribe { request: 2, options: dict([("match", "fuzzy".into())]), topic: "com.x".into() }, "wamp.error.invalid_argument"),
        (Message::Register { request: 3, options: Dict::new(), procedure: "Com.X".into() }, "wamp.error.invalid_uri"),
        (Message::Unsubscribe { request: 4, subscription: 12345 }, "wamp.error.no_such_subscription"),
        (Message::Unregister { request: 5, registration: 12345 }, "wamp.error.no_such_registration"),
        (
            Message::Publish { request: 6, options: dict([("acknowledge", true.into()), ("exclude", "x".into())]), topic: "com.x".into(), payload: Default::default() },
            "wamp.error.invalid_argument",
        ),
    ];
    for (msg, uri) in cases {
        let request = match &msg {
            Message::Subscribe { request, .. }
            | Message::Register { request, .. }
            | Message::Unsubscribe { request, .. }
            | Message::Unregister { request, .. }
            | Message::Publish { request, .. } => *request,
            _ => unreachable!(),
        };
        let code = msg.code();
        c.send(&msg).await;
        match c.recv().await {
            Message::Error { request_type, request: r, error, .. } => {
                assert_eq!((request_type, r, error.as_str()), (code, request, uri));
            }
            other => panic!("expected ERROR {uri}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn welcome_announces_roles_and_identity() {
    let server = start(|_| {}).await;
    let mut c = Client::ws(&server, Serializer::Cbor).await;
    c.send(&Message::Hello { realm: "realm1".into(), details: Dict::new() }).await;
    let Message::Welcome { session, details } = c.recv().await else { panic!("no WELCOME") };
    assert!((1..=1u64 << 53).contains(&session));
    assert_eq!(details["authrole"], Value::from("anonymous"));
    assert_eq!(details["authmethod"], Value::from("anonymous"));
    assert_eq!(details["authid"], Value::Str(format!("anonymous-{session}")));
    assert_eq!(details["roles"], switchyard::router::features::router_roles(true));
}
