//! Tests of the authenticator: every method's success and refusals, the order of
//! HELLO's authmethods, the decoy challenge of unknown authids, and throttling. The
//! expected WAMP-CRA signatures are computed here with hmac/pbkdf2 directly, and the
//! Cryptosign answers with a fixed seed, so the code under test does not grade itself.

use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;
use crate::config::{CraSalt, CraSecret, PrincipalConfig};
use crate::wamp::dict;

const ADDR: &str = "10.0.0.1";
/// The spec's first Cryptosign test vector's private key seed.
const DAVE_SEED: [u8; 32] = hex32("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510");
const OTHER_SEED: [u8; 32] = hex32("d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd");
/// base64(PBKDF2-HMAC-SHA256("secret1", "salt123", 1000, 32)), from Python's hashlib.
const ERIN_DERIVED: &str = "64xfzBvZhGDT7PB0bQwDeI8/WR1M9x6Cw5dt0yP9koc=";

const fn hex32(s: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(b[2 * i]) << 4 | digit(b[2 * i + 1]);
        i += 1;
    }
    out
}

fn pubkey(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

fn realm() -> RealmConfig {
    let carol = PrincipalConfig {
        wampcra: Some(CraSecret { secret: "carol-secret".into(), salt: None }),
        ticket: None,
        ..PrincipalConfig::ticket("carol", "", "user")
    };
    let erin = PrincipalConfig {
        wampcra: Some(CraSecret {
            secret: ERIN_DERIVED.into(),
            salt: Some(CraSalt { salt: "salt123".into(), iterations: 1000, keylen: 32 }),
        }),
        ticket: None,
        ..PrincipalConfig::ticket("erin", "", "reader")
    };
    let dave = PrincipalConfig { cryptosign: vec![pubkey(&DAVE_SEED)], ticket: None, ..PrincipalConfig::ticket("dave", "", "user") };
    RealmConfig {
        name: "r".into(),
        anonymous: Some("anonymous".into()),
        roles: vec![],
        principals: vec![PrincipalConfig::ticket("alice", "s3cret", "user"), carol, erin, dave],
        graph: None,
        replay: crate::config::ReplayConfig::none(),
        limits: Default::default(),
    }
}

fn auth() -> Authenticator {
    Authenticator::from_config(&realm(), 100)
}

/// An authenticator that throttles after three failures a minute.
fn strict() -> Authenticator {
    Authenticator::from_config(&realm(), 3)
}

fn hello(methods: &[&str], more: Vec<(&str, Value)>) -> Dict {
    let mut d = dict([("authmethods", Value::List(methods.iter().map(|m| (*m).into()).collect()))]);
    d.extend(more.into_iter().map(|(k, v)| (k.to_owned(), v)));
    d
}

fn challenged(a: &Authenticator, details: &Dict) -> (&'static str, Dict, Pending) {
    match a.hello(details, 42, ADDR) {
        Ok(HelloOutcome::Challenge { method, extra, pending }) => (method, extra, pending),
        other => panic!("no challenge: {other:?}"),
    }
}

fn failed(v: Verdict) -> String {
    match v.now() {
        Some(Err(AuthError::Failed(why))) => why,
        Some(other) => panic!("expected a failure, got {other:?}"),
        None => panic!("expected an answer now"),
    }
}

/// base64(HMAC-SHA256(key, challenge)), computed without the code under test.
fn hmac_b64(key: &[u8], challenge: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(challenge.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn challenge_text(extra: &Dict) -> String {
    extra.get("challenge").and_then(Value::as_str).expect("challenge").to_owned()
}

fn principal(authid: &str, authrole: &str, authmethod: &'static str, authprovider: &'static str) -> Principal {
    Principal { authid: authid.into(), authrole: authrole.into(), authmethod, authprovider, token: None, expires_at: None }
}

#[test]
fn anonymous_by_default() {
    let out = auth().hello(&Dict::new(), 7, ADDR).unwrap();
    assert_eq!(out, HelloOutcome::Welcome(principal("anonymous-7", "anonymous", "anonymous", "static")));
}

#[test]
fn ticket_challenge_and_check() {
    let a = auth();
    let (method, _, pending) = challenged(&a, &hello(&["ticket"], vec![("authid", "alice".into())]));
    assert_eq!(method, "ticket");
    assert_eq!(a.authenticate(&pending, "s3cret", ADDR).now().unwrap().unwrap().authrole, "user");
    assert_eq!(a.authenticate(&pending, "wrong", ADDR).now().unwrap().unwrap_err().uri(), "wamp.error.authentication_failed");
}

#[test]
fn failed_tickets_are_throttled_per_address() {
    let a = strict();
    let (_, _, pending) = challenged(&a, &hello(&["ticket"], vec![("authid", "alice".into())]));
    for _ in 0..3 {
        assert_eq!(a.authenticate(&pending, "wrong", ADDR).now().unwrap(), Err(AuthError::Failed("invalid ticket".into())));
    }
    // Throttled: even the right ticket is refused unchecked, at HELLO and at AUTHENTICATE.
    let throttled = AuthError::Throttled { retry_after_s: 20 };
    assert_eq!(a.authenticate(&pending, "s3cret", ADDR).now().unwrap(), Err(throttled.clone()));
    assert_eq!(a.hello(&hello(&["ticket"], vec![("authid", "alice".into())]), 2, ADDR), Err(throttled.clone()));
    assert_eq!(throttled.uri(), "wamp.error.authentication_failed");
    assert_eq!(throttled.to_string(), "too many failed authentications from this address; retry in 20 s");
    // Another address is not held back.
    assert_eq!(a.authenticate(&pending, "s3cret", "10.0.0.2").now().unwrap().unwrap().authrole, "user");
}

#[test]
fn unsupported_method_is_refused() {
    let err = auth().hello(&hello(&["scram"], vec![]), 1, ADDR).unwrap_err();
    assert_eq!(err.uri(), "wamp.error.no_auth_method");
    // A realm without WAMP-CRA principals does not offer it.
    let mut cfg = realm();
    cfg.principals.retain(|p| p.wampcra.is_none());
    let a = Authenticator::from_config(&cfg, 3);
    assert_eq!(a.hello(&hello(&["wampcra"], vec![("authid", "carol".into())]), 1, ADDR).unwrap_err().uri(), "wamp.error.no_auth_method");
}

#[test]
fn the_first_offered_method_the_realm_can_do_wins() {
    let a = auth();
    let carol = || ("authid", Value::from("carol"));
    assert_eq!(challenged(&a, &hello(&["wampcra", "ticket"], vec![carol()])).0, "wampcra");
    assert_eq!(challenged(&a, &hello(&["ticket", "wampcra"], vec![carol()])).0, "ticket");
    assert_eq!(challenged(&a, &hello(&["scram", "wampcra", "anonymous"], vec![carol()])).0, "wampcra");
    let key = ("authextra", Value::Dict(dict([("pubkey", cryptosign::encode_hex(&pubkey(&DAVE_SEED)).into())])));
    assert_eq!(challenged(&a, &hello(&["cryptosign", "wampcra"], vec![carol(), key])).0, "cryptosign");
    assert!(matches!(a.hello(&hello(&["scram", "anonymous", "wampcra"], vec![carol()]), 1, ADDR), Ok(HelloOutcome::Welcome(_))));
}

#[test]
fn wampcra_success_and_wrong_secret() {
    let a = auth();
    let (method, extra, pending) = challenged(&a, &hello(&["wampcra"], vec![("authid", "carol".into())]));
    assert_eq!(method, "wampcra");
    assert_eq!(extra.keys().collect::<Vec<_>>(), ["challenge"], "no salt for a plain secret");
    let challenge = challenge_text(&extra);
    let fields: serde_json::Value = serde_json::from_str(&challenge).unwrap();
    assert_eq!(fields["authid"], "carol");
    assert_eq!(fields["authrole"], "user");
    assert_eq!(fields["authmethod"], "wampcra");
    assert_eq!(fields["authprovider"], "static");
    assert_eq!(fields["session"], 42);
    let signature = hmac_b64(b"carol-secret", &challenge);
    assert_eq!(a.authenticate(&pending, &signature, ADDR).now().unwrap(), Ok(principal("carol", "user", "wampcra", "static")));
    let wrong = hmac_b64(b"carol-secreT", &challenge);
    assert_eq!(failed(a.authenticate(&pending, &wrong, ADDR)), "invalid wampcra signature");
    assert_eq!(failed(a.authenticate(&pending, "", ADDR)), "invalid wampcra signature");
    assert_eq!(failed(a.authenticate(&pending, "%%%", ADDR)), "invalid wampcra signature");
    // Another session's challenge is another string: its signature does not fit.
    let (_, other, _) = challenged(&a, &hello(&["wampcra"], vec![("authid", "carol".into())]));
    assert_eq!(failed(a.authenticate(&pending, &hmac_b64(b"carol-secret", &challenge_text(&other)), ADDR)), "invalid wampcra signature");
}

#[test]
fn salted_wampcra_uses_the_base64_text_of_the_derived_key() {
    let a = auth();
    let (_, extra, pending) = challenged(&a, &hello(&["wampcra"], vec![("authid", "erin".into())]));
    assert_eq!(extra.get("salt"), Some(&Value::from("salt123")));
    assert_eq!(extra.get("iterations"), Some(&Value::UInt(1000)));
    assert_eq!(extra.get("keylen"), Some(&Value::UInt(32)));
    // What the client does with its password and the challenge's parameters.
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(b"secret1", b"salt123", 1000, &mut derived);
    let key_text = STANDARD.encode(derived);
    assert_eq!(key_text, ERIN_DERIVED);
    let signature = hmac_b64(key_text.as_bytes(), &challenge_text(&extra));
    assert_eq!(a.authenticate(&pending, &signature, ADDR).now().unwrap(), Ok(principal("erin", "reader", "wampcra", "static")));
    // The raw derived bytes as the key (a plausible mistake) is not what autobahn does.
    let raw = hmac_b64(&derived, &challenge_text(&extra));
    assert_eq!(failed(a.authenticate(&pending, &raw, ADDR)), "invalid wampcra signature");
}

#[test]
fn unknown_authid_gets_a_challenge_like_a_known_one() {
    let a = auth();
    let (method, extra, pending) = challenged(&a, &hello(&["wampcra"], vec![("authid", "mallory".into())]));
    assert_eq!(method, "wampcra");
    let fields: serde_json::Value = serde_json::from_str(&challenge_text(&extra)).unwrap();
    let real: serde_json::Value = serde_json::from_str(&challenge_text(&challenged(&a, &hello(&["wampcra"], vec![("authid", "carol".into())])).1)).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&fields), keys(&real));
    assert_eq!(fields["authid"], "mallory");
    assert!(["user", "reader"].contains(&fields["authrole"].as_str().unwrap()), "a real principal's role: {fields}");
    // Asked twice, the decoy answers the same (a real principal would), salt included.
    let (_, again, _) = challenged(&a, &hello(&["wampcra"], vec![("authid", "mallory".into())]));
    let fields_again: serde_json::Value = serde_json::from_str(&challenge_text(&again)).unwrap();
    assert_eq!(fields["authrole"], fields_again["authrole"]);
    assert_eq!(extra.get("salt"), again.get("salt"));
    if let Some(salt) = extra.get("salt").and_then(Value::as_str) {
        assert_eq!(salt.len(), "salt123".len());
        assert_eq!(extra.keys().collect::<Vec<_>>(), ["challenge", "iterations", "keylen", "salt"]);
    }
    // Refused like a wrong secret, whatever is sent.
    assert_eq!(failed(a.authenticate(&pending, &hmac_b64(b"", &challenge_text(&extra)), ADDR)), "invalid wampcra signature");
}

#[test]
fn wampcra_needs_an_authid() {
    let err = auth().hello(&hello(&["wampcra"], vec![]), 1, ADDR).unwrap_err();
    assert_eq!(err, AuthError::Failed("wampcra authentication needs an authid".into()));
}

fn cryptosign_hello(seed: &[u8; 32], authid: Option<&str>) -> Dict {
    let mut more = vec![("authextra", Value::Dict(dict([("pubkey", cryptosign::encode_hex(&pubkey(seed)).into())])))];
    if let Some(authid) = authid {
        more.push(("authid", authid.into()));
    }
    hello(&["cryptosign"], more)
}

/// hex(signature ‖ challenge), as autobahn answers.
fn sign_challenge(seed: &[u8; 32], extra: &Dict) -> String {
    let challenge = cryptosign::decode_hex(&challenge_text(extra)).unwrap();
    let signature = SigningKey::from_bytes(seed).sign(&challenge).to_bytes();
    cryptosign::encode_hex(&signature) + &cryptosign::encode_hex(&challenge)
}

#[test]
fn cryptosign_success_with_or_without_authid() {
    let a = auth();
    for authid in [None, Some("dave")] {
        let (method, extra, pending) = challenged(&a, &cryptosign_hello(&DAVE_SEED, authid));
        assert_eq!(method, "cryptosign");
        assert_eq!(extra.get("channel_binding"), Some(&Value::Null));
        assert_eq!(challenge_text(&extra).len(), 64);
        let answer = sign_challenge(&DAVE_SEED, &extra);
        let dave = principal("dave", "user", "cryptosign", "static");
        assert_eq!(a.authenticate(&pending, &answer, ADDR).now().unwrap(), Ok(dave.clone()));
        // The signature alone is accepted too.
        assert_eq!(a.authenticate(&pending, &answer[..128], ADDR).now().unwrap(), Ok(dave));
    }
}

#[test]
fn cryptosign_refusals() {
    let a = auth();
    // Signed with another key than the one announced.
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&DAVE_SEED, None));
    assert_eq!(failed(a.authenticate(&pending, &sign_challenge(&OTHER_SEED, &extra), ADDR)), "invalid cryptosign signature");
    let malformed = "the cryptosign signature must be hex of 64 bytes (signature) or 96 bytes (signature and challenge)";
    assert_eq!(failed(a.authenticate(&pending, "xyz", ADDR)), malformed);
    // A key no principal has: challenged, then refused once it proved holding it.
    let a = auth();
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&OTHER_SEED, None));
    assert_eq!(failed(a.authenticate(&pending, &sign_challenge(&OTHER_SEED, &extra), ADDR)), "unknown cryptosign key");
    // Dave's key claimed for alice.
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&DAVE_SEED, Some("alice")));
    assert_eq!(failed(a.authenticate(&pending, &sign_challenge(&DAVE_SEED, &extra), ADDR)), "the key does not belong to 'alice'");
}

#[test]
fn cryptosign_hello_refusals() {
    let a = auth();
    let no_key = a.hello(&hello(&["cryptosign"], vec![("authid", "dave".into())]), 1, ADDR);
    assert_eq!(no_key, Err(AuthError::Failed("cryptosign authentication needs HELLO.Details.authextra.pubkey".into())));
    let short = hello(&["cryptosign"], vec![("authextra", Value::Dict(dict([("pubkey", "abcd".into())])))]);
    assert_eq!(a.hello(&short, 1, ADDR).unwrap_err().to_string(), "HELLO.Details.authextra.pubkey must be an Ed25519 public key: 64 hex digits");
    let mut bound = cryptosign_hello(&DAVE_SEED, None);
    if let Some(Value::Dict(extra)) = bound.get_mut("authextra") {
        extra.insert("channel_binding".into(), "tls-unique".into());
    }
    assert_eq!(
        a.hello(&bound, 1, ADDR),
        Err(AuthError::Failed("TLS channel binding (tls-unique) is not supported by this router: authenticate without channel_binding".into()))
    );
}

#[test]
fn cryptosign_failures_are_throttled() {
    let a = strict();
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&DAVE_SEED, None));
    for _ in 0..3 {
        failed(a.authenticate(&pending, &sign_challenge(&OTHER_SEED, &extra), ADDR));
    }
    let right = sign_challenge(&DAVE_SEED, &extra);
    assert!(matches!(a.authenticate(&pending, &right, ADDR).now(), Some(Err(AuthError::Throttled { .. }))));
    assert!(matches!(a.hello(&cryptosign_hello(&DAVE_SEED, None), 1, ADDR), Err(AuthError::Throttled { .. })));
}

/// Graph keys as a stub: who holds which key, and whether the database is reachable.
#[derive(Debug, Default)]
struct StubGraph {
    keys: Vec<(String, KeyHolder)>,
    down: bool,
    asked: Mutex<Vec<String>>,
}

impl TokenCheck for StubGraph {
    fn check(&self, _token: &str) -> BoxFuture<'static, Result<TokenHolder, AuthError>> {
        Box::pin(async { Err(AuthError::Failed("unknown token".into())) })
    }

    fn check_key(&self, pubkey: &str) -> BoxFuture<'static, Result<KeyHolder, AuthError>> {
        self.asked.lock().unwrap().push(pubkey.to_owned());
        let answer = if self.down {
            Err(AuthError::Unavailable("the permission database is unavailable".into()))
        } else {
            match self.keys.iter().find(|(k, _)| k == pubkey) {
                Some((_, h)) if h.user == "frank" => Err(AuthError::Failed("key of disabled user \"frank\"".into())),
                Some((_, h)) => Ok(h.clone()),
                None => Err(AuthError::Failed("unknown key".into())),
            }
        };
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn graph_keys_are_looked_up_later() {
    let other_hex = cryptosign::encode_hex(&pubkey(&OTHER_SEED));
    let graph = Arc::new(StubGraph { keys: vec![(other_hex.clone(), KeyHolder { user: "gina".into(), admin: true, key_id: "key:gina's".into() })], ..StubGraph::default() });
    let a = Authenticator::from_config(&realm(), 3).with_tokens(graph.clone());
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&OTHER_SEED, None));
    let Verdict::Later(found) = a.authenticate(&pending, &sign_challenge(&OTHER_SEED, &extra), ADDR) else {
        panic!("a graph key is looked up")
    };
    // The session carries the key's identity, so that deleting the key ends it.
    let gina = Principal { token: Some("key:gina's".into()), ..principal("gina", "admin", "cryptosign", "graph") };
    assert_eq!(found.await, Ok(gina));
    // A bad signature is refused before the database is asked.
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&OTHER_SEED, None));
    assert_eq!(failed(a.authenticate(&pending, &sign_challenge(&DAVE_SEED, &extra), ADDR)), "invalid cryptosign signature");
    assert_eq!(*graph.asked.lock().unwrap(), std::slice::from_ref(&other_hex));
    // A static key is answered at once, without asking the graph.
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&DAVE_SEED, None));
    assert_eq!(a.authenticate(&pending, &sign_challenge(&DAVE_SEED, &extra), ADDR).now().unwrap().unwrap().authprovider, "static");
    // Claimed for someone else.
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&OTHER_SEED, Some("hank")));
    let Verdict::Later(found) = a.authenticate(&pending, &sign_challenge(&OTHER_SEED, &extra), ADDR) else { panic!() };
    assert_eq!(found.await, Err(AuthError::Failed("the key does not belong to 'hank'".into())));
}

#[tokio::test]
async fn graph_key_refusals_fail_closed() {
    let frank_seed = [7u8; 32];
    let frank_hex = cryptosign::encode_hex(&pubkey(&frank_seed));
    let disabled = StubGraph { keys: vec![(frank_hex, KeyHolder { user: "frank".into(), admin: false, key_id: "key:frank's".into() })], ..StubGraph::default() };
    let a = Authenticator::from_config(&realm(), 3).with_tokens(Arc::new(disabled));
    let (_, extra, pending) = challenged(&a, &cryptosign_hello(&frank_seed, None));
    let Verdict::Later(found) = a.authenticate(&pending, &sign_challenge(&frank_seed, &extra), ADDR) else { panic!() };
    assert_eq!(found.await.unwrap_err().uri(), "wamp.error.authentication_failed");

    let down = Authenticator::from_config(&realm(), 1).with_tokens(Arc::new(StubGraph { down: true, ..StubGraph::default() }));
    for _ in 0..3 {
        let (_, extra, pending) = challenged(&down, &cryptosign_hello(&frank_seed, None));
        let Verdict::Later(found) = down.authenticate(&pending, &sign_challenge(&frank_seed, &extra), ADDR) else { panic!() };
        let err = found.await.unwrap_err();
        assert!(matches!(err, AuthError::Unavailable(_)), "{err:?}");
        assert_eq!(err.uri(), "wamp.error.authentication_failed");
    }
    // An outage is not the client's fault: it is not throttled for it.
    assert!(matches!(down.hello(&cryptosign_hello(&frank_seed, None), 1, ADDR), Ok(HelloOutcome::Challenge { .. })));
}

/// The HTTP bridge's credentials: a ticket alone (Bearer) names its static principal
/// when exactly one has it; with an authid (Basic) it is checked like AUTHENTICATE's;
/// the anonymous role needs no credential at all.
#[tokio::test]
async fn tickets_without_a_handshake() {
    let mut cfg = realm();
    cfg.principals.push(PrincipalConfig::ticket("twin-1", "shared", "user"));
    cfg.principals.push(PrincipalConfig::ticket("twin-2", "shared", "reader"));
    let a = Authenticator::from_config(&cfg, 3);
    assert_eq!(a.ticket(None, "s3cret", ADDR).now(), Some(Ok(principal("alice", "user", "ticket", "static"))));
    assert_eq!(a.ticket(Some("alice"), "s3cret", ADDR).now(), Some(Ok(principal("alice", "user", "ticket", "static"))));
    assert_eq!(a.ticket(Some("twin-2"), "shared", ADDR).now(), Some(Ok(principal("twin-2", "reader", "ticket", "static"))));
    assert_eq!(failed(a.ticket(None, "shared", ADDR)), "several principals have this ticket: name the authid too");
    assert_eq!(failed(a.ticket(Some("bob"), "s3cret", ADDR)), "invalid ticket");
    // The shared ticket was no guess: three wrong ones are still let through (the
    // burst), the next attempt is not checked.
    for _ in 0..3 {
        assert_eq!(failed(a.ticket(None, "guess", ADDR)), "invalid ticket");
    }
    assert!(matches!(a.ticket(None, "s3cret", ADDR).now(), Some(Err(AuthError::Throttled { .. }))));
    assert_eq!(a.anonymous(9), Some(principal("anonymous-9", "anonymous", "anonymous", "static")));

    // On a realm of the graph, a ticket no static principal has is an API token.
    let graph = Authenticator::from_config(&realm(), 3).with_tokens(Arc::new(StubGraph::default()));
    let Verdict::Later(found) = graph.ticket(None, "sy_token", ADDR) else { panic!("a token is looked up") };
    assert_eq!(found.await, Err(AuthError::Failed("unknown token".into())));

    let closed = RealmConfig { anonymous: None, principals: vec![], ..realm() };
    let a = Authenticator::from_config(&closed, 3);
    assert_eq!(a.anonymous(1), None);
    assert!(matches!(a.ticket(None, "x", ADDR).now(), Some(Err(AuthError::NoAuthMethod(_)))));
}
