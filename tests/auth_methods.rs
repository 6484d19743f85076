//! WAMP-CRA and WAMP-Cryptosign on the wire, where stock clients cannot go: the decoy
//! challenge of an unknown authid compared value by value with a real one, answers
//! replayed from another session or echoing another challenge, and the failure
//! metrics and throttle. autobahn-python and autobahn-js cover the ordinary logins
//! (tests/interop/python/tests/test_auth.py, tests/interop/js/test/auth_cra_cryptosign.test.mjs).

mod common;

use common::{metric, start, Client};
use ed25519_dalek::{Signer, SigningKey};
use switchyard::auth::cryptosign::{decode_hex, encode_hex};
use switchyard::config::{Config, CraSalt, CraSecret, PrincipalConfig, RoleConfig};
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

/// The spec's first Cryptosign test-vector private key.
const DAVE_SEED: [u8; 32] = [
    0x4d, 0x57, 0xd9, 0x7a, 0x68, 0xf5, 0x55, 0x69, 0x66, 0x20, 0xa6, 0xd8, 0x49, 0xc0, 0xce, 0x58, 0x25, 0x68, 0x51, 0x8d,
    0x72, 0x9e, 0xb7, 0x53, 0xdc, 0x7c, 0x73, 0x2d, 0xe2, 0x80, 0x45, 0x10,
];

/// Realm1 with two salted WAMP-CRA principals of one role and parameters, and dave's key.
fn principals(c: &mut Config, failures_per_minute: u32) {
    c.limits.auth_failures_per_minute = failures_per_minute;
    let realm = &mut c.realms[0];
    realm.roles.push(RoleConfig { name: "reader".into(), permissions: vec![] });
    for (authid, salt) in [("erin", "salt123"), ("fred", "pepper7")] {
        realm.principals.push(PrincipalConfig {
            ticket: None,
            wampcra: Some(CraSecret {
                secret: switchyard::auth::cra::derive_key(&format!("{authid}-password"), salt, 1000, 32),
                salt: Some(CraSalt { salt: salt.into(), iterations: 1000, keylen: 32 }),
            }),
            ..PrincipalConfig::ticket(authid, "", "reader")
        });
    }
    let dave = SigningKey::from_bytes(&DAVE_SEED).verifying_key().to_bytes();
    realm.principals.push(PrincipalConfig { ticket: None, cryptosign: vec![dave], ..PrincipalConfig::ticket("dave", "", "reader") });
}

fn methods(m: &str) -> (&'static str, Value) {
    ("authmethods", Value::List(vec![m.into()]))
}

/// HELLO on a fresh connection; the CHALLENGE's extra, and the connection.
async fn challenge(server: &switchyard::server::Server, details: Dict) -> (Dict, Client) {
    let mut c = Client::ws(server, Serializer::MsgPack).await;
    c.send(&Message::Hello { realm: "realm1".into(), details }).await;
    match c.recv().await {
        Message::Challenge { extra, .. } => (extra, c),
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
}

async fn answer(mut c: Client, signature: String) -> Message {
    c.send(&Message::Authenticate { signature, extra: Dict::new() }).await;
    c.recv().await
}

fn abort_message(m: &Message) -> (&str, &str) {
    match m {
        Message::Abort { reason, details } => (reason.as_str(), details.get("message").and_then(Value::as_str).unwrap_or("")),
        other => panic!("expected ABORT, got {other:?}"),
    }
}

/// The shape of a value: its variant, and for strings their length.
fn shape(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("str/{}", s.len()),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_authid_is_challenged_exactly_like_a_known_one() {
    let server = start(|c| principals(c, 100)).await;
    let (real, c1) = challenge(&server, dict([methods("wampcra"), ("authid", "erin".into())])).await;
    let (decoy, c2) = challenge(&server, dict([methods("wampcra"), ("authid", "eric".into())])).await;
    // The same members with values of the same type and length; the parameters equal.
    assert_eq!(real.keys().collect::<Vec<_>>(), decoy.keys().collect::<Vec<_>>());
    for (key, value) in real.iter().filter(|(k, _)| *k != "challenge") {
        assert_eq!(shape(value), shape(&decoy[key]), "{key}");
    }
    assert_eq!((&real["iterations"], &real["keylen"]), (&decoy["iterations"], &decoy["keylen"]));
    let fields = |extra: &Dict| -> serde_json::Value { serde_json::from_str(extra["challenge"].as_str().unwrap()).unwrap() };
    let (real_fields, decoy_fields) = (fields(&real), fields(&decoy));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&real_fields), keys(&decoy_fields));
    assert_eq!(decoy_fields["authrole"], "reader");
    assert_eq!(decoy_fields["authid"], "eric");
    // Refused with the same words as a wrong password.
    let wrong = answer(c1, "c2lnbmF0dXJl".into()).await;
    let unknown = answer(c2, "c2lnbmF0dXJl".into()).await;
    assert_eq!(abort_message(&wrong), abort_message(&unknown));
    assert_eq!(abort_message(&unknown), ("wamp.error.authentication_failed", "invalid wampcra signature"));
    assert_eq!(metric(&server, "auth_failures"), 2);
}

fn dave_hello() -> Dict {
    let pubkey = encode_hex(&SigningKey::from_bytes(&DAVE_SEED).verifying_key().to_bytes());
    dict([methods("cryptosign"), ("authextra", Value::Dict(dict([("pubkey", pubkey.into())])))])
}

fn dave_signs(challenge: &[u8]) -> String {
    encode_hex(&SigningKey::from_bytes(&DAVE_SEED).sign(challenge).to_bytes())
}

fn challenge_bytes(extra: &Dict) -> Vec<u8> {
    decode_hex(extra["challenge"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_cryptosign_answer_fits_one_challenge_only() {
    let server = start(|c| principals(c, 100)).await;
    let (first, c1) = challenge(&server, dave_hello()).await;
    let first = challenge_bytes(&first);
    let good = dave_signs(&first) + &encode_hex(&first);
    assert!(matches!(answer(c1, good.clone()).await, Message::Welcome { .. }));
    // The same answer replayed on another session, whose challenge is another: the
    // long form echoes the wrong challenge, the signature alone does not verify.
    let (_, c2) = challenge(&server, dave_hello()).await;
    let echo = "the cryptosign signature does not echo the challenge sent";
    assert_eq!(abort_message(&answer(c2, good.clone()).await), ("wamp.error.authentication_failed", echo));
    let (_, c2) = challenge(&server, dave_hello()).await;
    assert_eq!(abort_message(&answer(c2, good[..128].to_owned()).await), ("wamp.error.authentication_failed", "invalid cryptosign signature"));
    // A right signature that echoes some other challenge.
    let (second, c3) = challenge(&server, dave_hello()).await;
    let other_echo = dave_signs(&challenge_bytes(&second)) + &"00".repeat(32);
    let refused = answer(c3, other_echo).await;
    assert_eq!(abort_message(&refused), ("wamp.error.authentication_failed", echo));
    assert_eq!(metric(&server, "auth_failures"), 3);
}

#[tokio::test]
async fn cryptosign_failures_are_counted_and_throttled() {
    let server = start(|c| principals(c, 3)).await;
    for _ in 0..3 {
        let (extra, c) = challenge(&server, dave_hello()).await;
        let mut forged = dave_signs(&challenge_bytes(&extra)).into_bytes();
        forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
        let m = answer(c, String::from_utf8(forged).unwrap()).await;
        assert_eq!(abort_message(&m), ("wamp.error.authentication_failed", "invalid cryptosign signature"));
    }
    // Now dave's key is refused at HELLO, unchecked.
    let mut c = Client::ws(&server, Serializer::Json).await;
    c.send(&Message::Hello { realm: "realm1".into(), details: dave_hello() }).await;
    let m = c.recv().await;
    assert_eq!(
        abort_message(&m),
        ("wamp.error.authentication_failed", "too many failed authentications from this address; retry in 20 s")
    );
    assert_eq!((metric(&server, "auth_failures"), metric(&server, "auth_throttled")), (3, 1));
}
