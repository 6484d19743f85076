//! What a hostile or clumsy client can do, and what it gets: the reserved `wamp`
//! namespace, URI and id limits, calls in flight per caller, a callee's invalid error
//! URI, and events between the outbox bound and the message size limit.

mod common;

use bytes::Bytes;
use common::{args_of, call, expect_error, expect_error_for, invocation, metric, start, Client};
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Args, Dict, Message, Payload, Serializer, Value};

fn ack() -> Dict {
    dict([("acknowledge", true.into())])
}

#[tokio::test]
async fn clients_cannot_publish_or_register_in_the_wamp_namespace() {
    let server = start(|_| {}).await;
    let mut watcher = Client::join_ws(&server, Serializer::Json).await;
    // Subscribing to meta topics stays allowed.
    let sub = watcher.subscribe("wamp.session.on_join", Dict::new()).await;
    assert!(sub > 0);

    let mut forger = Client::join_ws(&server, Serializer::MsgPack).await;
    // The router's own on_join for the forger is the one event of that topic the
    // watcher gets.
    match watcher.recv().await {
        Message::Event { subscription, payload, .. } => {
            assert_eq!(subscription, sub);
            let details = args_of(&payload).remove(0);
            assert_eq!(details.as_dict().and_then(|d| d.get("session")), Some(&Value::UInt(forger.session)));
        }
        other => panic!("expected the router's on_join, got {other:?}"),
    }
    let request = forger.publish("wamp.session.on_join", ack(), vec![Value::UInt(1)]).await;
    let payload = expect_error_for(&mut forger, code::PUBLISH, request, "wamp.error.invalid_uri").await;
    assert_eq!(
        args_of(&payload),
        vec![Value::from("'wamp.session.on_join' is in the wamp namespace, which is reserved for the router")]
    );
    let request = forger.request();
    forger.send(&Message::Register { request, options: Dict::new(), procedure: "wamp.session.count".into() }).await;
    let payload = expect_error_for(&mut forger, code::REGISTER, request, "wamp.error.invalid_uri").await;
    assert_eq!(
        args_of(&payload),
        vec![Value::from("'wamp.session.count' is in the wamp namespace, which is reserved for the router")]
    );
    // `wamp` alone is the namespace too; `wampx` is not.
    let request = forger.publish("wamp", ack(), vec![]).await;
    expect_error_for(&mut forger, code::PUBLISH, request, "wamp.error.invalid_uri").await;
    let request = forger.publish("wampx.topic", ack(), vec![]).await;
    assert!(matches!(forger.recv().await, Message::Published { request: r, .. } if r == request));

    // Nothing forged reached the watcher: the next thing it gets is an event on a
    // topic of its own.
    watcher.subscribe("com.after", Dict::new()).await;
    forger.publish("com.after", Dict::new(), vec![Value::UInt(2)]).await;
    match watcher.recv().await {
        Message::Event { payload, .. } => assert_eq!(args_of(&payload), vec![Value::UInt(2)]),
        other => panic!("expected the event on com.after, got {other:?}"),
    }
}

#[tokio::test]
async fn uris_longer_than_the_limit_are_refused() {
    let server = start(|c| c.limits.max_uri_length = 64).await;
    let mut c = Client::join_ws(&server, Serializer::Json).await;
    let at_limit = format!("com.{}", "a".repeat(60));
    assert_eq!(at_limit.len(), 64);
    c.subscribe(&at_limit, Dict::new()).await;
    let over = format!("{at_limit}b");
    let request = c.request();
    c.send(&Message::Subscribe { request, options: Dict::new(), topic: over.clone() }).await;
    let payload = expect_error_for(&mut c, code::SUBSCRIBE, request, "wamp.error.invalid_uri").await;
    assert_eq!(args_of(&payload), vec![Value::from("URI of 65 bytes exceeds the limit of 64 bytes")]);
    for request_type in [code::PUBLISH, code::REGISTER, code::CALL] {
        let request = c.request();
        let msg = match request_type {
            code::PUBLISH => Message::Publish { request, options: ack(), topic: over.clone(), payload: Args::NONE },
            code::REGISTER => Message::Register { request, options: Dict::new(), procedure: over.clone() },
            _ => Message::Call { request, options: Dict::new(), procedure: over.clone(), payload: Args::NONE },
        };
        c.send(&msg).await;
        expect_error_for(&mut c, request_type, request, "wamp.error.invalid_uri").await;
    }
    // A realm name is a URI too.
    let mut c = Client::ws(&server, Serializer::Json).await;
    c.send(&Message::Hello { realm: over, details: Dict::new() }).await;
    assert_eq!(c.expect_abort("wamp.error.invalid_uri").await, "URI of 65 bytes exceeds the limit of 64 bytes");
    c.expect_closed().await;
}

#[tokio::test]
async fn request_id_zero_is_a_protocol_violation() {
    let server = start(|_| {}).await;
    let mut c = Client::join_ws(&server, Serializer::Json).await;
    c.send_bytes(br#"[32, 0, {}, "com.x"]"#).await;
    assert_eq!(
        c.expect_abort("wamp.error.protocol_violation").await,
        "cannot decode message: SUBSCRIBE.Request: expected an id in [1, 2^53], got 0"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn a_caller_may_have_only_so_many_calls_in_flight() {
    let server = start(|c| c.limits.max_calls_per_session = 3).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.slow").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let mut invocations = Vec::new();
    for _ in 0..3 {
        call(&mut caller, "com.slow", Dict::new(), vec![]).await;
        invocations.push(invocation(&mut callee).await.0);
    }
    let refused = call(&mut caller, "com.slow", Dict::new(), vec![]).await;
    let payload = expect_error(&mut caller, refused, "wamp.error.limit_reached").await;
    assert_eq!(args_of(&payload), vec![Value::from("a session may have at most 3 calls in flight")]);
    assert_eq!(metric(&server, "calls_refused"), 1);

    // Another caller has its own allowance.
    let mut other = Client::join_ws(&server, Serializer::Json).await;
    call(&mut other, "com.slow", Dict::new(), vec![]).await;
    invocation(&mut callee).await;

    // One answer frees one place.
    callee.send(&Message::Yield { request: invocations[0], options: Dict::new(), payload: Args::NONE }).await;
    assert!(matches!(caller.recv().await, Message::Result { request: 1, .. }));
    let request = call(&mut caller, "com.slow", Dict::new(), vec![]).await;
    invocation(&mut callee).await;
    assert_eq!(request, 5);
    assert_eq!(metric(&server, "calls_refused"), 1);
}

#[tokio::test]
async fn a_callee_error_with_an_invalid_uri_reaches_the_caller_as_invalid_uri() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.fails").await;
    let mut caller = Client::join_ws(&server, Serializer::MsgPack).await;
    for bad in ["", "Not A URI!", "com..x"] {
        let request = call(&mut caller, "com.fails", Dict::new(), vec![]).await;
        let (invocation_id, _, _) = invocation(&mut callee).await;
        callee
            .send(&Message::Error {
                request_type: code::INVOCATION,
                request: invocation_id,
                details: Dict::new(),
                error: bad.into(),
                payload: Args::NONE,
            })
            .await;
        let payload = expect_error(&mut caller, request, "wamp.error.invalid_uri").await;
        assert_eq!(args_of(&payload), vec![Value::from(format!("invalid URI '{bad}'"))]);
        // The callee announced call canceling: it is told the call is over.
        match callee.recv().await {
            Message::Interrupt { request, options } => {
                assert_eq!(request, invocation_id);
                assert_eq!(options, dict([("mode", "killnowait".into())]));
            }
            other => panic!("expected INTERRUPT, got {other:?}"),
        }
    }
    // Error URIs follow the loose rules: upper case is fine, and it passes unchanged.
    let request = call(&mut caller, "com.fails", Dict::new(), vec![]).await;
    let (invocation_id, _, _) = invocation(&mut callee).await;
    let error = "com.example.NotFound";
    callee
        .send(&Message::Error {
            request_type: code::INVOCATION,
            request: invocation_id,
            details: Dict::new(),
            error: error.into(),
            payload: Args::NONE,
        })
        .await;
    expect_error(&mut caller, request, error).await;
}

/// Events between `outbox_bytes` (8 MiB) and `max_message_size` (16 MiB) reach an idle
/// subscriber: an empty outbox always takes one message. 10 MiB of binary, so the JSON
/// subscriber's base64 frame (13.4 MiB) stays under tungstenite's 16 MiB frame limit.
#[tokio::test]
async fn an_event_larger_than_the_outbox_bound_reaches_idle_subscribers() {
    let server = start(|_| {}).await;
    assert_eq!((server.router.limits.outbox_bytes, server.router.limits.max_message_size), (8 << 20, 16 << 20));
    let mut subs = Vec::new();
    for ser in [Serializer::MsgPack, Serializer::Json] {
        let mut s = Client::join_ws(&server, ser).await;
        s.subscribe("com.big", Dict::new()).await;
        subs.push(s);
    }
    let mut publisher = Client::join_ws(&server, Serializer::MsgPack).await;
    let blob: Vec<u8> = (0..10 << 20).map(|i: u32| (i % 251) as u8).collect();
    let request = publisher.request();
    let payload = Args {
        args: Some(Payload::from_value(Serializer::MsgPack, &Value::List(vec![Value::Bytes(blob.clone())]))),
        kwargs: None,
    };
    publisher.send(&Message::Publish { request, options: ack(), topic: "com.big".into(), payload }).await;
    assert!(matches!(publisher.recv().await, Message::Published { .. }));
    publisher.publish("com.big", Dict::new(), vec![Value::UInt(2)]).await;
    for s in &mut subs {
        let frame: Bytes = s.recv_frame().await.expect("the big event");
        match Message::decode(s.serializer, &frame).unwrap() {
            Message::Event { details, payload, .. } => {
                assert_eq!(details, dict([("_pos", Value::UInt(1))]));
                assert_eq!(args_of(&payload), vec![Value::Bytes(blob.clone())]);
            }
            other => panic!("expected EVENT, got {other:?}"),
        }
        match s.recv().await {
            Message::Event { details, payload, .. } => {
                assert_eq!(details, dict([("_pos", Value::UInt(2))]), "no _dropped: nothing was dropped");
                assert_eq!(args_of(&payload), vec![Value::UInt(2)]);
            }
            other => panic!("expected EVENT, got {other:?}"),
        }
    }
    assert_eq!(metric(&server, "events_dropped_outbox_full"), 0);
}

/// Nesting 10,000 levels deep: 20 KB of JSON that killed autobahn-python subscribers.
fn deep_json(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

#[tokio::test]
async fn payloads_no_peer_could_read_are_refused_at_the_door() {
    let server = start(|_| {}).await;
    let mut subs = Vec::new();
    for ser in Serializer::ALL {
        let mut s = Client::join_ws(&server, ser).await;
        s.subscribe("com.deep", Dict::new()).await;
        subs.push(s);
    }
    let mut publisher = Client::join_ws(&server, Serializer::Json).await;
    let deep = deep_json(10_000);
    publisher.send_bytes(format!(r#"[16, 1, {{"acknowledge": true}}, "com.deep", [{deep}]]"#).as_bytes()).await;
    let payload = expect_error_for(&mut publisher, code::PUBLISH, 1, "wamp.error.invalid_argument").await;
    assert_eq!(args_of(&payload), vec![Value::from("PUBLISH.Arguments: nesting deeper than 64 levels")]);
    // Unacknowledged: no answer (the spec's rule), but counted, and delivered to no one.
    publisher.send_bytes(format!(r#"[16, 2, {{}}, "com.deep", [], {{"k": {deep}}}]"#).as_bytes()).await;
    publisher.send_bytes(br#"[16, 3, {"acknowledge": true}, "com.deep", ["\u0000***"]]"#).await;
    let payload = expect_error_for(&mut publisher, code::PUBLISH, 3, "wamp.error.invalid_argument").await;
    assert_eq!(
        args_of(&payload),
        vec![Value::from("PUBLISH.Arguments: a binary string (\\u0000 + base64) holds invalid base64")]
    );
    // The session goes on, and the subscribers' next event is the valid one.
    publisher.send_bytes(br#"[16, 4, {"acknowledge": true}, "com.deep", ["fine"]]"#).await;
    assert!(matches!(publisher.recv().await, Message::Published { request: 4, .. }));
    for s in &mut subs {
        match s.recv().await {
            Message::Event { payload, .. } => assert_eq!(args_of(&payload), vec![Value::from("fine")], "{:?}", s.serializer),
            other => panic!("expected EVENT, got {other:?}"),
        }
    }
    assert_eq!(metric(&server, "payloads_refused"), 3);
    assert_eq!(metric(&server, "protocol_violations"), 0);
}

#[tokio::test]
async fn calls_results_and_errors_with_invalid_payloads_end_the_call_with_invalid_argument() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::MsgPack).await;
    callee.register("com.echo").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let deep = deep_json(100);

    // A CALL: refused before the callee sees it.
    caller.send_bytes(format!(r#"[48, 1, {{}}, "com.echo", [{deep}]]"#).as_bytes()).await;
    let payload = expect_error(&mut caller, 1, "wamp.error.invalid_argument").await;
    assert_eq!(args_of(&payload), vec![Value::from("CALL.Arguments: nesting deeper than 64 levels")]);

    // A YIELD (MessagePack with an extension type): the caller gets the error, the
    // callee is told the call is over.
    let request = call(&mut caller, "com.echo", Dict::new(), vec![]).await;
    let (invocation_id, _, _) = invocation(&mut callee).await;
    let yield_frame = vec![0x94, 0x46, invocation_id as u8, 0x80, 0x91, 0xd4, 0x01, 0x00];
    assert!(invocation_id < 128, "a positive fixint");
    callee.send_bytes(&yield_frame).await;
    let payload = expect_error(&mut caller, request, "wamp.error.invalid_argument").await;
    assert_eq!(args_of(&payload), vec![Value::from("YIELD.Arguments: extension types are not supported")]);
    assert!(matches!(callee.recv().await, Message::Interrupt { request, .. } if request == invocation_id));

    // A callee's ERROR with a MessagePack string that JSON would read as binary.
    let request = call(&mut caller, "com.echo", Dict::new(), vec![]).await;
    let (invocation_id, _, _) = invocation(&mut callee).await;
    let mut error_frame = vec![0x96, 0x08, 0x44, invocation_id as u8, 0x80, 0xa5];
    error_frame.extend_from_slice(b"com.x");
    error_frame.extend_from_slice(&[0x91, 0xa2, 0x00, b'x']);
    callee.send_bytes(&error_frame).await;
    let payload = expect_error(&mut caller, request, "wamp.error.invalid_argument").await;
    assert_eq!(
        args_of(&payload),
        vec![Value::from("ERROR.Arguments: a string starts with U+0000, which JSON reads as binary")]
    );
    assert!(matches!(callee.recv().await, Message::Interrupt { request, .. } if request == invocation_id));

    // Both sessions go on.
    let request = call(&mut caller, "com.echo", Dict::new(), vec![Value::UInt(5)]).await;
    let (invocation_id, _, args) = invocation(&mut callee).await;
    callee.send(&Message::Yield { request: invocation_id, options: Dict::new(), payload: args }).await;
    match caller.recv().await {
        Message::Result { request: r, payload, .. } => {
            assert_eq!(r, request);
            assert_eq!(args_of(&payload), vec![Value::UInt(5)]);
        }
        other => panic!("expected RESULT, got {other:?}"),
    }
    assert_eq!(metric(&server, "payloads_refused"), 3);
}

/// HELLO for ticket authentication as `alice`, then AUTHENTICATE with `ticket`; returns
/// what the router answered last.
async fn ticket_login(server: &switchyard::server::Server, ticket: &str) -> Message {
    let mut c = Client::ws(server, Serializer::Json).await;
    let details = dict([("authmethods", Value::List(vec!["ticket".into()])), ("authid", "alice".into())]);
    c.send(&Message::Hello { realm: "realm1".into(), details }).await;
    match c.recv().await {
        Message::Challenge { authmethod, .. } => assert_eq!(authmethod, "ticket"),
        other => return other,
    }
    c.send(&Message::Authenticate { signature: ticket.into(), extra: Dict::new() }).await;
    c.recv().await
}

fn abort_message(m: &Message) -> (&str, Option<&str>) {
    match m {
        Message::Abort { reason, details } => (reason.as_str(), details.get("message").and_then(Value::as_str)),
        other => panic!("expected ABORT, got {other:?}"),
    }
}

#[tokio::test]
async fn failed_tickets_are_throttled() {
    let server = start(|c| {
        c.limits.auth_failures_per_minute = 3;
        c.realms[0].principals.push(switchyard::config::PrincipalConfig::ticket("alice", "s3cret", "anonymous"));
    })
    .await;
    assert!(matches!(ticket_login(&server, "s3cret").await, Message::Welcome { .. }));
    for _ in 0..3 {
        let m = ticket_login(&server, "guess").await;
        assert_eq!(abort_message(&m), ("wamp.error.authentication_failed", Some("invalid ticket")));
    }
    // Now even the right ticket is refused unchecked, from the HELLO on.
    let m = ticket_login(&server, "s3cret").await;
    assert_eq!(
        abort_message(&m),
        ("wamp.error.authentication_failed", Some("too many failed authentications from this address; retry in 20 s"))
    );
    assert_eq!(metric(&server, "auth_failures"), 3);
    assert_eq!(metric(&server, "auth_throttled"), 1);
    // Anonymous sessions are not held back.
    Client::join_ws(&server, Serializer::Json).await;
}
