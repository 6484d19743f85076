//! The meta API where wire order and exact content matter: what a watcher sees when a
//! session's TCP connection is cut (its subscriptions and registrations go, then its
//! testaments, then `on_leave`), a kill's GOODBYE, and that nobody kills themselves.
//! The stock clients' view is in the interop suites (test_meta.py, meta.test.mjs).

mod common;

use common::{args_of, call, expect_error, Client};
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

/// Calls a meta procedure and returns its positional results.
async fn meta(c: &mut Client, procedure: &str, args: Vec<Value>, kwargs: Dict) -> Vec<Value> {
    let request = c.request();
    let payload = switchyard::wamp::Args {
        args: Some(switchyard::wamp::Payload::from_value(c.serializer, &Value::List(args))),
        kwargs: Some(switchyard::wamp::Payload::from_value(c.serializer, &Value::Dict(kwargs))),
    };
    c.send(&Message::Call { request, options: Dict::new(), procedure: procedure.into(), payload }).await;
    match c.recv().await {
        Message::Result { request: r, payload, .. } if r == request => args_of(&payload),
        other => panic!("expected RESULT of {procedure}, got {other:?}"),
    }
}

/// The next EVENT: (subscription, args).
async fn event(c: &mut Client) -> (u64, Vec<Value>) {
    match c.recv().await {
        Message::Event { subscription, payload, .. } => (subscription, args_of(&payload)),
        other => panic!("expected EVENT, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cut_connection_reports_what_it_held_then_its_testament_then_that_it_left() {
    let server = common::start(|_| {}).await;
    let mut watcher = Client::join_ws(&server, Serializer::Json).await;
    let mut topics = Vec::new();
    for t in ["wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete", "wamp.registration.on_unregister", "wamp.registration.on_delete", "dispatch.deaths", "wamp.session.on_leave"] {
        topics.push((watcher.subscribe(t, Dict::new()).await, t));
    }
    let name = |sub: u64| topics.iter().find(|(s, _)| *s == sub).map(|(_, t)| *t).unwrap();
    let mut victim = Client::join_ws(&server, Serializer::MsgPack).await;
    let sub = victim.subscribe("jobs.queue", Dict::new()).await;
    let reg = victim.register("svc.dispatch").await;
    let testament = |text: &str| vec![Value::from("dispatch.deaths"), Value::List(vec![text.into()]), Value::Dict(dict([("who", "d-1".into())]))];
    assert!(meta(&mut victim, "wamp.session.add_testament", testament("detached first"), dict([("scope", "detached".into())])).await.is_empty());
    meta(&mut victim, "wamp.session.add_testament", testament("gone"), Dict::new()).await;
    meta(&mut victim, "wamp.session.add_testament", testament("flushed"), dict([("scope", "detached".into())])).await;
    meta(&mut victim, "wamp.session.flush_testaments", vec![], dict([("scope", "detached".into())])).await;
    meta(&mut victim, "wamp.session.add_testament", testament("detached"), dict([("scope", "detached".into())])).await;
    let id = victim.session;
    drop(victim);
    let mut seen = Vec::new();
    for _ in 0..7 {
        let (s, args) = event(&mut watcher).await;
        seen.push((name(s), args));
    }
    let pair = |a: u64, b: u64| vec![Value::UInt(a), Value::UInt(b)];
    assert_eq!(
        seen,
        vec![
            ("wamp.subscription.on_unsubscribe", pair(id, sub)),
            ("wamp.subscription.on_delete", pair(id, sub)),
            ("wamp.registration.on_unregister", pair(id, reg)),
            ("wamp.registration.on_delete", pair(id, reg)),
            ("dispatch.deaths", vec![Value::from("detached")]),
            ("dispatch.deaths", vec![Value::from("gone")]),
            ("wamp.session.on_leave", vec![Value::UInt(id), format!("anonymous-{id}").into(), "anonymous".into()]),
        ]
    );
}

#[tokio::test]
async fn a_kill_says_goodbye_with_the_reason_and_nobody_kills_themselves() {
    let server = common::start(|_| {}).await;
    let mut admin = Client::join_ws(&server, Serializer::Cbor).await;
    let mut victim = Client::join_ws(&server, Serializer::Json).await;
    let mut quiet = Client::join_ws(&server, Serializer::Json).await;
    let kwargs = dict([("reason", "com.example.maintenance".into()), ("message", "back at noon".into())]);
    assert!(meta(&mut admin, "wamp.session.kill", vec![Value::UInt(victim.session)], kwargs).await.is_empty());
    match victim.recv().await {
        Message::Goodbye { reason, details } => assert_eq!((reason.as_str(), details), ("com.example.maintenance", dict([("message", "back at noon".into())]))),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    victim.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() }).await;
    let me = admin.session;
    let request = call(&mut admin, "wamp.session.kill", Dict::new(), vec![Value::UInt(me)]).await;
    expect_error(&mut admin, request, "wamp.error.no_such_session").await;
    let request = call(&mut admin, "wamp.session.get", Dict::new(), vec![Value::UInt(victim.session)]).await;
    expect_error(&mut admin, request, "wamp.error.no_such_session").await;
    // kill_all spares the caller; the default reason is wamp.close.normal, no message.
    assert_eq!(meta(&mut admin, "wamp.session.kill_all", vec![], Dict::new()).await, vec![Value::UInt(1)]);
    match quiet.recv().await {
        Message::Goodbye { reason, details } => assert_eq!((reason.as_str(), details), ("wamp.close.normal", Dict::new())),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    assert_eq!(meta(&mut admin, "wamp.session.count", vec![], Dict::new()).await, vec![Value::UInt(1)]);
    let bad = dict([("reason", "not a uri!".into())]);
    let request = admin.request();
    let payload = switchyard::wamp::Args { args: Some(switchyard::wamp::Payload::from_value(admin.serializer, &Value::List(vec![]))), kwargs: Some(switchyard::wamp::Payload::from_value(admin.serializer, &Value::Dict(bad))) };
    admin.send(&Message::Call { request, options: Dict::new(), procedure: "wamp.session.kill_all".into(), payload }).await;
    expect_error(&mut admin, request, "wamp.error.invalid_uri").await;
}
