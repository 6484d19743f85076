//! Shared and pattern-based registrations and router-enforced call timeouts, driven by
//! our own client where exact wire content matters (INTERRUPT's mode, the timing of
//! `wamp.error.timeout`, a callee whose TCP connection is cut mid-rotation). The stock
//! clients' view is in the interop suites (test_rpc_advanced.py, rpc_advanced.test.mjs).

mod common;

use std::time::{Duration, Instant};

use common::{args_of, call, expect_error, invocation, metric, Client};
use switchyard::config::RealmLimits;
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

async fn register_with(c: &mut Client, procedure: &str, options: Dict) -> Result<u64, String> {
    let request = c.request();
    c.send(&Message::Register { request, options, procedure: procedure.into() }).await;
    match c.recv().await {
        Message::Registered { request: r, registration } if r == request => Ok(registration),
        Message::Error { request: r, error, .. } if r == request => Err(error),
        other => panic!("expected REGISTERED or ERROR, got {other:?}"),
    }
}

fn invoke(policy: &str) -> Dict {
    dict([("invoke", policy.into())])
}

/// Answers one INVOCATION with the callee's own name; returns the invocation details.
async fn answer(callee: &mut Client, name: &str) -> Dict {
    let (request, details, _) = invocation(callee).await;
    let payload = callee.args(vec![name.into()]);
    callee.send(&Message::Yield { request, options: Dict::new(), payload }).await;
    details
}

async fn result(c: &mut Client, request: u64) -> Vec<Value> {
    match c.recv().await {
        Message::Result { request: r, payload, .. } if r == request => args_of(&payload),
        other => panic!("expected RESULT {request}, got {other:?}"),
    }
}

#[tokio::test]
async fn roundrobin_rotates_in_order_of_registration_and_skips_a_callee_cut_mid_rotation() {
    let server = common::start(|_| {}).await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let mut callees = Vec::new();
    let mut id = None;
    for i in 0..4 {
        let mut c = Client::join_ws(&server, Serializer::Json).await;
        let reg = register_with(&mut c, "svc.work", invoke("roundrobin")).await.unwrap();
        assert_eq!(*id.get_or_insert(reg), reg, "callees share one registration");
        callees.push((format!("c{i}"), c));
    }
    let mut order = Vec::new();
    for turn in 0..6 {
        let request = call(&mut caller, "svc.work", Dict::new(), vec![]).await;
        let (name, callee) = &mut callees[turn % 4];
        answer(callee, name).await;
        order.extend(result(&mut caller, request).await);
    }
    assert_eq!(order, ["c0", "c1", "c2", "c3", "c0", "c1"].map(Value::from));
    // c2 is next; its TCP connection is cut: the turn passes to c3, then c0.
    let (_, c2) = callees.remove(2);
    drop(c2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&server, "sessions") != 4 {
        assert!(Instant::now() < deadline, "the cut session never left");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut order = Vec::new();
    for expected in [2, 0, 1, 2] {
        let request = call(&mut caller, "svc.work", Dict::new(), vec![]).await;
        let (name, callee) = &mut callees[expected];
        answer(callee, name).await;
        order.extend(result(&mut caller, request).await);
    }
    assert_eq!(order, ["c3", "c0", "c1", "c3"].map(Value::from));
}

#[tokio::test]
async fn mixed_invocation_policies_are_refused_with_the_spec_errors() {
    let server = common::start(|_| {}).await;
    let mut a = Client::join_ws(&server, Serializer::Json).await;
    let mut b = Client::join_ws(&server, Serializer::MsgPack).await;
    register_with(&mut a, "svc.first", invoke("first")).await.unwrap();
    assert_eq!(register_with(&mut b, "svc.first", invoke("last")).await, Err("wamp.error.procedure_exists_with_different_invocation_policy".into()));
    assert_eq!(register_with(&mut b, "svc.first", Dict::new()).await, Err("wamp.error.procedure_already_exists".into()));
    register_with(&mut a, "svc.single", Dict::new()).await.unwrap();
    assert_eq!(register_with(&mut b, "svc.single", invoke("roundrobin")).await, Err("wamp.error.procedure_already_exists".into()));
    assert_eq!(register_with(&mut b, "svc.x", invoke("sometimes")).await, Err("wamp.error.invalid_argument".into()));
}

#[tokio::test]
async fn the_best_pattern_takes_the_call_and_is_told_the_called_uri() {
    let server = common::start(|_| {}).await;
    let mut caller = Client::join_ws(&server, Serializer::Cbor).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    let exact = register_with(&mut callee, "a1.b2.c3.d4.e55", Dict::new()).await.unwrap();
    let short = register_with(&mut callee, "a1.b2.c3", dict([("match", "prefix".into())])).await.unwrap();
    let long = register_with(&mut callee, "a1.b2.c3.d4", dict([("match", "prefix".into())])).await.unwrap();
    let wild = register_with(&mut callee, "a1.b2..d4.e5", dict([("match", "wildcard".into())])).await.unwrap();
    for (uri, registration, procedure) in [
        ("a1.b2.c3.d4.e55", exact, None),
        ("a1.b2.c3.d98.e74", short, Some("a1.b2.c3.d98.e74")),
        ("a1.b2.c3.d4.e325", long, Some("a1.b2.c3.d4.e325")),
        ("a1.b2.c55.d4.e5", wild, Some("a1.b2.c55.d4.e5")),
    ] {
        let request = call(&mut caller, uri, Dict::new(), vec![]).await;
        match callee.recv().await {
            Message::Invocation { request: inv, registration: r, details, .. } => {
                assert_eq!((r, details.get("procedure").and_then(Value::as_str)), (registration, procedure), "{uri}");
                callee.send(&Message::Yield { request: inv, options: Dict::new(), payload: Default::default() }).await;
            }
            other => panic!("expected INVOCATION for {uri}, got {other:?}"),
        }
        result(&mut caller, request).await;
    }
    let request = call(&mut caller, "a2.b2.c2.d2.e2", Dict::new(), vec![]).await;
    expect_error(&mut caller, request, "wamp.error.no_such_procedure").await;
}

/// When a timer of `ms` set now in this process fires, in ms: the deadline as this
/// machine keeps it at the moment. The router's timeout must come within 20 ms of it;
/// on a loaded machine both are late alike, and only the router's own lateness counts.
fn reference_timer(ms: u64) -> tokio::task::JoinHandle<u64> {
    let start = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        start.elapsed().as_millis() as u64
    })
}

/// The caller gets `wamp.error.timeout` at the deadline, the callee (which announced
/// call canceling) an INTERRUPT in mode killnowait, and its late YIELD goes nowhere.
#[tokio::test]
async fn a_call_times_out_at_its_deadline_for_both_sides() {
    let server = common::start(|_| {}).await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let mut callee = Client::join_ws(&server, Serializer::MsgPack).await;
    register_with(&mut callee, "svc.slow", Dict::new()).await.unwrap();
    for timeout_ms in [100u64, 300] {
        let sent = Instant::now();
        let reference = reference_timer(timeout_ms);
        let request = call(&mut caller, "svc.slow", dict([("timeout", Value::UInt(timeout_ms))]), vec![]).await;
        let (inv, _, _) = invocation(&mut callee).await;
        expect_error(&mut caller, request, "wamp.error.timeout").await;
        let took = sent.elapsed().as_millis() as u64;
        let late = reference.await.unwrap();
        assert!((timeout_ms.saturating_sub(5)..=late + 20).contains(&took), "timeout {timeout_ms} ms took {took} ms (a timer here: {late} ms)");
        match callee.recv().await {
            Message::Interrupt { request, options } => assert_eq!((request, options), (inv, dict([("mode", "killnowait".into())]))),
            other => panic!("expected INTERRUPT, got {other:?}"),
        }
        callee.send(&Message::Yield { request: inv, options: Dict::new(), payload: Default::default() }).await;
    }
    // The late answers were dropped: the next call is answered normally and first.
    let request = call(&mut caller, "svc.slow", Dict::new(), vec![]).await;
    answer(&mut callee, "on time").await;
    assert_eq!(result(&mut caller, request).await, vec![Value::from("on time")]);
    assert_eq!(metric(&server, "calls_timed_out"), 2);
}

/// A realm's `max_call_timeout_ms` bounds calls that ask for longer, or for none.
#[tokio::test]
async fn the_realm_maximum_bounds_every_call() {
    let server = common::start(|c| c.realms[0].limits = RealmLimits { max_call_timeout: Some(Duration::from_millis(150)), ..RealmLimits::default() }).await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    register_with(&mut callee, "svc.slow", Dict::new()).await.unwrap();
    for options in [Dict::new(), dict([("timeout", Value::UInt(60_000))]), dict([("timeout", Value::UInt(0))])] {
        let sent = Instant::now();
        let reference = reference_timer(150);
        let request = call(&mut caller, "svc.slow", options.clone(), vec![]).await;
        invocation(&mut callee).await;
        expect_error(&mut caller, request, "wamp.error.timeout").await;
        let took = sent.elapsed().as_millis() as u64;
        let late = reference.await.unwrap();
        assert!((145..=late + 20).contains(&took), "{options:?}: took {took} ms (a timer here: {late} ms)");
        assert!(matches!(callee.recv().await, Message::Interrupt { .. }));
    }
    // A shorter timeout of the call's own still applies.
    let sent = Instant::now();
    let request = call(&mut caller, "svc.slow", dict([("timeout", Value::UInt(50))]), vec![]).await;
    expect_error(&mut caller, request, "wamp.error.timeout").await;
    assert!(sent.elapsed() < Duration::from_millis(100));
    let request = call(&mut caller, "svc.slow", dict([("timeout", Value::Int(-1))]), vec![]).await;
    expect_error(&mut caller, request, "wamp.error.invalid_argument").await;
}
