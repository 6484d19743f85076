//! Payload passthru mode: `ppt_*` attributes travel from PUBLISH/CALL/YIELD into
//! EVENT/INVOCATION/RESULT, the binary payload arrives as it was sent (across
//! serializers only its binary encoding changes), and a peer using passthru without
//! announcing it is aborted (spec). Our own client, because the stock clients' support
//! for the mode varies by version.

mod common;

use common::{args_of, call, expect_error, invocation, Client};
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

/// Joins realm1 announcing (or not) `payload_passthru_mode` for every role.
async fn join(server: &switchyard::server::Server, serializer: Serializer, ppt: bool) -> Client {
    let mut c = Client::ws(server, serializer).await;
    let features = Value::Dict(dict([("payload_passthru_mode", Value::Bool(ppt))]));
    let role = || Value::Dict(dict([("features", features.clone())]));
    let roles = dict([("publisher", role()), ("subscriber", role()), ("caller", role()), ("callee", role())]);
    c.join("realm1", dict([("roles", Value::Dict(roles))])).await;
    c
}

fn ppt() -> Dict {
    dict([
        ("ppt_scheme", "wamp.eth".into()),
        ("ppt_serializer", "cbor".into()),
        ("ppt_cipher", "xsalsa20poly1305".into()),
        ("ppt_keyid", "0x4f2a".into()),
    ])
}

/// An opaque ciphertext: bytes no serializer should interpret.
fn sealed() -> Value {
    Value::Bytes((0u8..=255).rev().collect())
}

#[tokio::test]
async fn an_event_carries_the_attributes_and_the_bytes_untouched_on_every_serializer() {
    let server = common::start(|_| {}).await;
    let mut publisher = join(&server, Serializer::Json, true).await;
    let mut subs = Vec::new();
    for ser in [Serializer::Json, Serializer::MsgPack, Serializer::Cbor] {
        let mut s = join(&server, ser, true).await;
        let id = s.subscribe("secret.topic", Dict::new()).await;
        subs.push((s, id));
    }
    let mut options = ppt();
    options.insert("acknowledge".into(), Value::Bool(true));
    let request = publisher.publish("secret.topic", options, vec![sealed()]).await;
    assert!(matches!(publisher.recv().await, Message::Published { request: r, .. } if r == request));
    for (s, id) in &mut subs {
        match s.recv().await {
            Message::Event { subscription, details, payload, .. } => {
                let mut want = ppt();
                want.insert("_pos".into(), Value::UInt(1));
                assert_eq!((subscription, details, args_of(&payload), payload.kwargs), (*id, want, vec![sealed()], None), "{:?}", s.serializer);
            }
            other => panic!("expected EVENT, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_call_and_its_result_carry_the_attributes_both_ways() {
    let server = common::start(|_| {}).await;
    let mut caller = join(&server, Serializer::Cbor, true).await;
    let mut callee = join(&server, Serializer::MsgPack, true).await;
    callee.register("secret.rpc").await;
    let request = call(&mut caller, "secret.rpc", ppt(), vec![sealed()]).await;
    let (inv, details, payload) = invocation(&mut callee).await;
    assert_eq!((details, args_of(&payload)), (ppt(), vec![sealed()]));
    let mut answer = ppt();
    answer.insert("ppt_keyid".into(), "0x9b1c".into());
    let payload = callee.args(vec![Value::Bytes(vec![1, 2, 3])]);
    callee.send(&Message::Yield { request: inv, options: answer.clone(), payload }).await;
    match caller.recv().await {
        Message::Result { request: r, details, payload } => assert_eq!((r, details, args_of(&payload)), (request, answer, vec![Value::Bytes(vec![1, 2, 3])])),
        other => panic!("expected RESULT, got {other:?}"),
    }
}

#[tokio::test]
async fn a_party_that_did_not_announce_passthru_is_refused() {
    let server = common::start(|_| {}).await;
    // A callee without passthru: the caller is told, the callee never sees the call.
    let mut caller = join(&server, Serializer::Json, true).await;
    let mut plain_callee = join(&server, Serializer::Json, false).await;
    plain_callee.register("plain.rpc").await;
    let request = call(&mut caller, "plain.rpc", ppt(), vec![sealed()]).await;
    expect_error(&mut caller, request, "wamp.error.feature_not_supported").await;
    // A caller without passthru gets an error instead of a passthru result.
    let mut plain_caller = join(&server, Serializer::Json, false).await;
    let mut callee = join(&server, Serializer::Json, true).await;
    callee.register("secret.rpc").await;
    let request = call(&mut plain_caller, "secret.rpc", Dict::new(), vec![]).await;
    let (inv, _, _) = invocation(&mut callee).await;
    callee.send(&Message::Yield { request: inv, options: ppt(), payload: callee.args(vec![sealed()]) }).await;
    expect_error(&mut plain_caller, request, "wamp.error.feature_not_supported").await;
    // A publisher using passthru it did not announce: protocol violation.
    plain_caller.publish("secret.topic", ppt(), vec![sealed()]).await;
    plain_caller.expect_abort("wamp.error.protocol_violation").await;
    // Malformed attributes are an invalid argument.
    let request = call(&mut caller, "secret.rpc", dict([("ppt_scheme", "x".into()), ("ppt_keyid", Value::UInt(3))]), vec![]).await;
    expect_error(&mut caller, request, "wamp.error.invalid_argument").await;
}
