//! RPC edge cases: a callee or caller vanishing mid-call, cancellation modes,
//! progressive results, session-scope INVOCATION ids, byte-exact error pass-through,
//! and RPC traffic that is never dropped at the event bound.

mod common;

use std::time::{Duration, Instant};

use common::{args_of, call, expect_error, invocation, start, Client};
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Args, Dict, Message, Serializer, Value};

#[tokio::test]
async fn a_callee_that_vanishes_mid_call_fails_the_call_at_once() {
    let server = start(|_| {}).await;
    let mut callee = Client::raw(&server, Serializer::Json, 15).await;
    callee.join("realm1", Dict::new()).await;
    callee.register("com.slow").await;
    let mut caller = Client::join_ws(&server, Serializer::MsgPack).await;
    let request = call(&mut caller, "com.slow", Dict::new(), vec![]).await;
    invocation(&mut callee).await;
    let started = Instant::now();
    drop(callee);
    let payload = expect_error(&mut caller, request, "wamp.error.canceled").await;
    assert_eq!(args_of(&payload), vec![Value::from("the callee left before answering")]);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    // The registration went with the callee.
    let request = call(&mut caller, "com.slow", Dict::new(), vec![]).await;
    expect_error(&mut caller, request, "wamp.error.no_such_procedure").await;
}

#[tokio::test]
async fn a_caller_that_leaves_interrupts_the_callee() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.work").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    call(&mut caller, "com.work", Dict::new(), vec![]).await;
    let (invocation_id, _, _) = invocation(&mut callee).await;
    caller.close().await;
    assert_eq!(
        callee.recv().await,
        Message::Interrupt { request: invocation_id, options: dict([("mode", "killnowait".into())]) }
    );
}

#[tokio::test]
async fn invocation_ids_are_sequential_per_callee_and_caller_is_disclosed_on_request() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Cbor).await;
    callee.register("com.echo").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    for expected in 1..=3u64 {
        let options = if expected == 2 { dict([("disclose_me", true.into())]) } else { Dict::new() };
        let request = call(&mut caller, "com.echo", options, vec![Value::UInt(expected)]).await;
        let (id, details, payload) = invocation(&mut callee).await;
        assert_eq!(id, expected);
        if expected == 2 {
            assert_eq!(details.get("caller"), Some(&Value::UInt(caller.session)));
            assert_eq!(details.get("caller_authrole"), Some(&Value::from("anonymous")));
        } else {
            assert_eq!(details.get("caller"), None);
        }
        callee.send(&Message::Yield { request: id, options: Dict::new(), payload }).await;
        match caller.recv().await {
            Message::Result { request: r, payload, .. } => {
                assert_eq!(r, request);
                assert_eq!(args_of(&payload), vec![Value::UInt(expected)]);
            }
            other => panic!("expected RESULT, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn application_errors_pass_through_byte_for_byte() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.fail").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let request = call(&mut caller, "com.fail", Dict::new(), vec![]).await;
    let (id, _, _) = invocation(&mut callee).await;
    let raw_args = br#"[1, 2.50, "\u00e9"]"#;
    let raw_kwargs = br#"{"why" : [true, null]}"#;
    let mut frame = format!(r#"[8, 68, {id}, {{}}, "com.example.error.foo", "#).into_bytes();
    frame.extend_from_slice(raw_args);
    frame.extend_from_slice(b", ");
    frame.extend_from_slice(raw_kwargs);
    frame.push(b']');
    callee.send_bytes(&frame).await;
    let frame = caller.recv_frame().await.unwrap();
    let expected = format!(
        r#"[8,48,{request},{{}},"com.example.error.foo",{},{}]"#,
        std::str::from_utf8(raw_args).unwrap(),
        std::str::from_utf8(raw_kwargs).unwrap()
    );
    assert_eq!(std::str::from_utf8(&frame).unwrap(), expected);
}

#[tokio::test]
async fn progressive_results_then_the_final_one() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::MsgPack).await;
    callee.register("com.stream").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let request = call(&mut caller, "com.stream", dict([("receive_progress", true.into())]), vec![]).await;
    let (id, details, _) = invocation(&mut callee).await;
    assert_eq!(details.get("receive_progress"), Some(&Value::Bool(true)));
    for i in 0..3u64 {
        let payload = callee.args(vec![Value::UInt(i)]);
        callee.send(&Message::Yield { request: id, options: dict([("progress", true.into())]), payload }).await;
    }
    let payload = callee.args(vec![Value::from("done")]);
    callee.send(&Message::Yield { request: id, options: Dict::new(), payload }).await;
    for i in 0..3u64 {
        match caller.recv().await {
            Message::Result { request: r, details, payload } => {
                assert_eq!((r, details), (request, dict([("progress", true.into())])));
                assert_eq!(args_of(&payload), vec![Value::UInt(i)]);
            }
            other => panic!("expected progressive RESULT, got {other:?}"),
        }
    }
    match caller.recv().await {
        Message::Result { details, payload, .. } => {
            assert_eq!(details, Dict::new());
            assert_eq!(args_of(&payload), vec![Value::from("done")]);
        }
        other => panic!("expected final RESULT, got {other:?}"),
    }
}

#[tokio::test]
async fn cancel_modes() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.long").await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;

    // skip: the caller is answered at once, the callee is not told, its YIELD is ignored.
    let request = call(&mut caller, "com.long", Dict::new(), vec![]).await;
    let (id, _, _) = invocation(&mut callee).await;
    caller.send(&Message::Cancel { request, options: dict([("mode", "skip".into())]) }).await;
    expect_error(&mut caller, request, "wamp.error.canceled").await;
    callee.send(&Message::Yield { request: id, options: Dict::new(), payload: Args::NONE }).await;

    // killnowait: INTERRUPT to the callee and the caller answered at once.
    let request = call(&mut caller, "com.long", Dict::new(), vec![]).await;
    let (id, _, _) = invocation(&mut callee).await;
    caller.send(&Message::Cancel { request, options: Dict::new() }).await;
    expect_error(&mut caller, request, "wamp.error.canceled").await;
    assert_eq!(callee.recv().await, Message::Interrupt { request: id, options: dict([("mode", "killnowait".into())]) });

    // kill: INTERRUPT, and the callee's ERROR ends the call.
    let request = call(&mut caller, "com.long", Dict::new(), vec![]).await;
    let (id, _, _) = invocation(&mut callee).await;
    caller.send(&Message::Cancel { request, options: dict([("mode", "kill".into())]) }).await;
    assert_eq!(callee.recv().await, Message::Interrupt { request: id, options: dict([("mode", "kill".into())]) });
    callee
        .send(&Message::Error {
            request_type: code::INVOCATION,
            request: id,
            details: Dict::new(),
            error: "wamp.error.canceled".into(),
            payload: Args::NONE,
        })
        .await;
    expect_error(&mut caller, request, "wamp.error.canceled").await;

    // The skipped call's late YIELD produced nothing: the next message is a fresh result.
    let request = call(&mut caller, "com.long", Dict::new(), vec![]).await;
    let (id, _, _) = invocation(&mut callee).await;
    callee.send(&Message::Yield { request: id, options: Dict::new(), payload: Args::NONE }).await;
    assert_eq!(caller.recv().await, Message::Result { request, details: Dict::new(), payload: Args::NONE });
}

#[tokio::test]
async fn a_result_too_large_for_the_caller_becomes_an_error() {
    let server = start(|_| {}).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    callee.register("com.big").await;
    let mut caller = Client::raw(&server, Serializer::Json, 0).await;
    caller.join("realm1", Dict::new()).await;
    let request = call(&mut caller, "com.big", Dict::new(), vec![]).await;
    let (id, _, _) = invocation(&mut callee).await;
    let payload = callee.args(vec![Value::Str("x".repeat(2000))]);
    callee.send(&Message::Yield { request: id, options: Dict::new(), payload }).await;
    let payload = expect_error(&mut caller, request, "wamp.error.payload_size_exceeded").await;
    // The RESULT frame: `[50,1,{},["` (11 bytes) + 2000 + `"]]` (3 bytes).
    assert_eq!(args_of(&payload), vec![Value::from("the result of 2014 bytes exceeds the caller's maximum message size")]);
}

#[tokio::test]
async fn rpc_traffic_is_not_dropped_at_the_event_bound() {
    let server = start(|c| c.limits.outbox_messages = 2).await;
    let mut callee = Client::join_ws(&server, Serializer::MsgPack).await;
    callee.register("com.burst").await;
    let mut caller = Client::join_ws(&server, Serializer::MsgPack).await;
    for i in 0..50u64 {
        call(&mut caller, "com.burst", Dict::new(), vec![Value::UInt(i)]).await;
    }
    for _ in 0..50 {
        let (id, _, payload) = invocation(&mut callee).await;
        callee.send(&Message::Yield { request: id, options: Dict::new(), payload }).await;
    }
    for i in 0..50u64 {
        match caller.recv().await {
            Message::Result { request, payload, .. } => {
                assert_eq!(request, i + 1);
                assert_eq!(args_of(&payload), vec![Value::UInt(i)]);
            }
            other => panic!("expected RESULT, got {other:?}"),
        }
    }
}
