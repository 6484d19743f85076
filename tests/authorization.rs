//! The session's shape for authorization that can wait and change: requests waiting for
//! an undecided authorization (in order, without delaying anyone else), per-event
//! guards, re-checks from the authorizer's change feed, revocation of subscriptions
//! and registrations, the control inbox (close, overflow), and SUBSCRIBED/REGISTERED
//! always preceding the first EVENT/INVOCATION.
//!
//! The authorizer here is a test double of the *authorizer* (the trait the permission
//! graph implements), with answers the test sets and releases; the graph itself is
//! tested against PostgreSQL elsewhere.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::future::BoxFuture;
use switchyard::auth::{Admit, Authorizer, ChangeFeed, Check, Decision, Ending, Guard, Permissions, Request, Subject, Undecided};
use switchyard::config::{Allow, Config, Disclose, Permission, PrincipalConfig, RealmConfig, RoleConfig};
use switchyard::router::control::{Closing, Control};
use switchyard::router::Authorizers;
use switchyard::server::Server;
use switchyard::wamp::message::code;
use switchyard::wamp::uri::MatchPolicy;
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};
use tokio::sync::Semaphore;

/// What the gatekeeper answers for (authid, uri).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Allow,
    Deny,
    /// `decide` fails: the authorizer cannot tell.
    Fail,
}

#[derive(Debug, Default)]
struct Inner {
    /// What `check` knows (the "cache").
    known: Mutex<HashMap<(String, String), Answer>>,
    /// What `decide` will find out.
    truth: Mutex<HashMap<(String, String), Answer>>,
    decides: AtomicUsize,
}

#[derive(Debug)]
struct Gatekeeper {
    inner: Arc<Inner>,
    /// `decide` waits for a permit, so tests control when an answer arrives.
    release: Arc<Semaphore>,
    feed: Arc<ChangeFeed>,
}

fn key(authid: &str, uri: &str) -> (String, String) {
    (authid.to_owned(), uri.to_owned())
}

impl Gatekeeper {
    fn new() -> Arc<Gatekeeper> {
        Arc::new(Gatekeeper { inner: Arc::default(), release: Arc::new(Semaphore::new(0)), feed: Arc::new(ChangeFeed::new()) })
    }
    fn know(&self, authid: &str, uri: &str, a: Answer) {
        self.inner.known.lock().unwrap().insert(key(authid, uri), a);
    }
    fn forget(&self, authid: &str, uri: &str) {
        self.inner.known.lock().unwrap().remove(&key(authid, uri));
    }
    fn truth(&self, authid: &str, uri: &str, a: Answer) {
        self.inner.truth.lock().unwrap().insert(key(authid, uri), a);
    }
}

fn decision(a: Answer) -> Decision {
    Decision { allowed: a == Answer::Allow, disclose: false, revocable: true }
}

impl Authorizer for Gatekeeper {
    fn permissions(&self, who: Subject<'_>) -> Arc<dyn Permissions> {
        Arc::new(KeeperView { inner: self.inner.clone(), release: self.release.clone(), authid: who.authid.to_owned() })
    }

    fn changes(&self) -> Option<Arc<ChangeFeed>> {
        Some(self.feed.clone())
    }
}

/// The gatekeeper's view of one session.
#[derive(Debug)]
struct KeeperView {
    inner: Arc<Inner>,
    release: Arc<Semaphore>,
    authid: String,
}

impl Permissions for KeeperView {
    fn check(&self, req: Request<'_>) -> Check {
        match self.inner.known.lock().unwrap().get(&key(&self.authid, req.uri)) {
            Some(&a) => Check::Decided(decision(a)),
            None => Check::Ask,
        }
    }

    fn decide(&self, req: Request<'_>) -> BoxFuture<'static, Result<Decision, Undecided>> {
        let (inner, release, k) = (self.inner.clone(), self.release.clone(), key(&self.authid, req.uri));
        Box::pin(async move {
            release.acquire().await.unwrap().forget();
            inner.decides.fetch_add(1, Ordering::SeqCst);
            let a = inner.truth.lock().unwrap().get(&k).copied().unwrap_or(Answer::Deny);
            if a == Answer::Fail {
                return Err(Undecided("the test said so".into()));
            }
            inner.known.lock().unwrap().insert(k, a);
            Ok(decision(a))
        })
    }

    fn guard(&self, req: Request<'_>) -> Option<Arc<dyn Guard>> {
        Some(Arc::new(KeeperGuard { inner: self.inner.clone(), key: key(&self.authid, req.uri) }))
    }
}

#[derive(Debug)]
struct KeeperGuard {
    inner: Arc<Inner>,
    key: (String, String),
}

impl Guard for KeeperGuard {
    fn admits(&self, _topic: &str) -> Admit {
        match self.inner.known.lock().unwrap().get(&self.key) {
            Some(Answer::Allow) => Admit::Yes,
            Some(_) => Admit::No,
            None => Admit::Hold,
        }
    }
}

fn realm_config() -> RealmConfig {
    let all = Allow { call: true, register: true, publish: true, subscribe: true };
    let everything = Permission { uri: "".into(), match_policy: MatchPolicy::Prefix, allow: all, disclose: Disclose::default() };
    let principal = |authid: &str| PrincipalConfig::ticket(authid, format!("{authid}-ticket"), "user");
    RealmConfig {
        name: "guarded".into(),
        anonymous: None,
        roles: vec![RoleConfig { name: "user".into(), permissions: vec![everything] }],
        principals: vec![principal("alice"), principal("bob")],
        graph: None,
        replay: switchyard::config::ReplayConfig::none(),
        limits: Default::default(),
    }
}

async fn start(keeper: &Arc<Gatekeeper>) -> Server {
    let cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        rawsocket: None,
        realms: vec![realm_config()],
        ..Config::default()
    };
    let authorizers: Authorizers = HashMap::from([("guarded".to_owned(), (keeper.clone() as Arc<dyn Authorizer>).into())]);
    Server::start_with(&cfg, authorizers).await.expect("router starts")
}

/// Joins realm `guarded` as `authid` by ticket, announcing revocation support or not.
async fn join(server: &Server, authid: &str, revocation: bool) -> Client {
    let mut c = Client::ws(server, Serializer::Json).await;
    let features = |f: &str| Value::Dict(dict([("features", Value::Dict(dict([(f, revocation.into())])))]));
    let callee = Value::Dict(dict([(
        "features",
        Value::Dict(dict([("call_canceling", true.into()), ("registration_revocation", revocation.into())])),
    )]));
    let roles = dict([("subscriber", features("subscription_revocation")), ("publisher", Value::Dict(Dict::new())), ("caller", Value::Dict(Dict::new())), ("callee", callee)]);
    let details = dict([
        ("authmethods", Value::List(vec!["ticket".into()])),
        ("authid", authid.into()),
        ("roles", Value::Dict(roles)),
    ]);
    c.send(&Message::Hello { realm: "guarded".into(), details }).await;
    assert!(matches!(c.recv().await, Message::Challenge { .. }));
    c.send(&Message::Authenticate { signature: format!("{authid}-ticket"), extra: Dict::new() }).await;
    match c.recv().await {
        Message::Welcome { session, .. } => c.session = session,
        other => panic!("expected WELCOME, got {other:?}"),
    }
    c
}

async fn nothing_within(c: &mut Client, ms: u64) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(ms), c.recv_frame()).await {
        panic!("expected nothing, got {:?}", frame.map(|f| Message::decode(Serializer::Json, &f)));
    }
}

fn ack() -> Dict {
    dict([("acknowledge", true.into())])
}

async fn published(c: &mut Client, request: u64) {
    match c.recv().await {
        Message::Published { request: r, .. } => assert_eq!(r, request),
        other => panic!("expected PUBLISHED {request}, got {other:?}"),
    }
}

async fn event_args(c: &mut Client, subscription: u64) -> Vec<Value> {
    match c.recv().await {
        Message::Event { subscription: s, payload, .. } => {
            assert_eq!(s, subscription);
            args_of(&payload)
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_waiting_for_its_authorization_holds_back_its_sessions_later_messages_only() {
    let keeper = Gatekeeper::new();
    keeper.know("alice", "t.open", Answer::Allow);
    keeper.know("bob", "t.open", Answer::Allow);
    keeper.truth("alice", "t.slow", Answer::Allow);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", true).await;
    let mut bob = join(&server, "bob", true).await;

    // alice's SUBSCRIBE is not cached: it waits, and so does her PUBLISH behind it.
    let sub_request = alice.request();
    alice.send(&Message::Subscribe { request: sub_request, options: Dict::new(), topic: "t.slow".into() }).await;
    let pub_request = alice.publish("t.open", ack(), vec![]).await;
    nothing_within(&mut alice, 100).await;
    // bob is not delayed by alice's wait.
    let bob_request = bob.publish("t.open", ack(), vec![]).await;
    published(&mut bob, bob_request).await;

    keeper.release.add_permits(1);
    match alice.recv().await {
        Message::Subscribed { request, .. } => assert_eq!(request, sub_request),
        other => panic!("expected SUBSCRIBED first, got {other:?}"),
    }
    published(&mut alice, pub_request).await;
    assert_eq!(keeper.inner.decides.load(Ordering::SeqCst), 1);
    assert_eq!(metric(&server, "authorization_waits"), 1);
    // Now cached: the same question is not asked again.
    alice.subscribe("t.slow", Dict::new()).await;
    assert_eq!(keeper.inner.decides.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_authorizer_that_cannot_decide_refuses_with_authorization_failed() {
    let keeper = Gatekeeper::new();
    keeper.truth("alice", "t.x", Answer::Fail);
    keeper.truth("alice", "t.no", Answer::Deny);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", true).await;
    keeper.release.add_permits(2);
    let request = alice.request();
    alice.send(&Message::Subscribe { request, options: Dict::new(), topic: "t.x".into() }).await;
    let args = args_of(&expect_error_for(&mut alice, code::SUBSCRIBE, request, "wamp.error.authorization_failed").await);
    assert_eq!(args, vec![Value::Str("authorization could not be decided: the test said so".into())]);
    let request = alice.request();
    alice.send(&Message::Subscribe { request, options: Dict::new(), topic: "t.no".into() }).await;
    expect_error_for(&mut alice, code::SUBSCRIBE, request, "wamp.error.not_authorized").await;
    assert_eq!(metric(&server, "authorization_failures"), 1);
}

#[tokio::test]
async fn a_withdrawn_permission_stops_events_at_once_then_revokes_the_subscription() {
    let keeper = Gatekeeper::new();
    keeper.know("alice", "t.x", Answer::Allow);
    keeper.know("bob", "t.x", Answer::Allow);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", true).await;
    let mut bob = join(&server, "bob", true).await;
    let sub = alice.subscribe("t.x", Dict::new()).await;

    let r = bob.publish("t.x", ack(), vec![1.into()]).await;
    published(&mut bob, r).await;
    assert_eq!(event_args(&mut alice, sub).await, vec![Value::UInt(1)]);

    // The authorizer learns of the change: from that moment no event reaches alice,
    // even before the router has told her session.
    keeper.know("alice", "t.x", Answer::Deny);
    let r = bob.publish("t.x", ack(), vec![2.into()]).await;
    published(&mut bob, r).await;
    nothing_within(&mut alice, 50).await;
    assert_eq!(metric(&server, "events_filtered"), 1);

    keeper.feed.recheck("alice");
    match alice.recv().await {
        Message::Unsubscribed { request: 0, details: Some(d) } => {
            assert_eq!(d, dict([("subscription", Value::UInt(sub)), ("reason", "wamp.error.not_authorized".into())]));
        }
        other => panic!("expected UNSUBSCRIBED 0, got {other:?}"),
    }
    assert_eq!(metric(&server, "subscriptions_revoked"), 1);
    // The session's holdings and the broker agree: the subscription is gone from both.
    let request = alice.request();
    alice.send(&Message::Unsubscribe { request, subscription: sub }).await;
    expect_error_for(&mut alice, code::UNSUBSCRIBE, request, "wamp.error.no_such_subscription").await;
    assert_eq!(server.router.realm("guarded").unwrap().broker.subscription_count(), 0);
}

#[tokio::test]
async fn a_client_that_did_not_announce_revocation_loses_the_subscription_silently() {
    let keeper = Gatekeeper::new();
    keeper.know("alice", "t.x", Answer::Allow);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", false).await;
    let sub = alice.subscribe("t.x", Dict::new()).await;
    keeper.know("alice", "t.x", Answer::Deny);
    keeper.feed.recheck("alice");
    nothing_within(&mut alice, 100).await;
    assert_eq!(metric(&server, "subscriptions_revoked"), 1);
    let request = alice.request();
    alice.send(&Message::Unsubscribe { request, subscription: sub }).await;
    expect_error_for(&mut alice, code::UNSUBSCRIBE, request, "wamp.error.no_such_subscription").await;
}

#[tokio::test]
async fn a_recheck_that_must_ask_holds_events_until_the_answer_then_revokes() {
    let keeper = Gatekeeper::new();
    keeper.know("alice", "t.x", Answer::Allow);
    keeper.know("bob", "t.x", Answer::Allow);
    keeper.truth("alice", "t.x", Answer::Deny);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", true).await;
    let mut bob = join(&server, "bob", true).await;
    let sub = alice.subscribe("t.x", Dict::new()).await;

    // A change made the cached answer unknown: events are held, not delivered.
    keeper.forget("alice", "t.x");
    keeper.feed.recheck("alice");
    let r = bob.publish("t.x", ack(), vec![]).await;
    published(&mut bob, r).await;
    nothing_within(&mut alice, 50).await;
    assert_eq!(metric(&server, "events_held"), 1);

    keeper.release.add_permits(1);
    match alice.recv().await {
        Message::Unsubscribed { request: 0, details: Some(d) } => assert_eq!(d["subscription"], Value::UInt(sub)),
        other => panic!("expected UNSUBSCRIBED 0, got {other:?}"),
    }
    assert_eq!(keeper.inner.decides.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_registration_cancels_its_calls_in_flight() {
    let keeper = Gatekeeper::new();
    keeper.know("alice", "p.x", Answer::Allow);
    keeper.know("bob", "p.x", Answer::Allow);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", true).await;
    let mut bob = join(&server, "bob", true).await;
    let reg = alice.register("p.x").await;
    let call_request = call(&mut bob, "p.x", Dict::new(), vec![]).await;
    let (invocation, _, _) = invocation(&mut alice).await;

    keeper.know("alice", "p.x", Answer::Deny);
    keeper.feed.recheck("alice");
    let args = args_of(&expect_error(&mut bob, call_request, "wamp.error.canceled").await);
    assert_eq!(args, vec![Value::Str("the callee's permission for this procedure was withdrawn".into())]);
    let mut got = [alice.recv().await, alice.recv().await];
    got.sort_by_key(|m| m.name());
    match &got[..] {
        [Message::Interrupt { request, .. }, Message::Unregistered { request: 0, details: Some(d) }] => {
            assert_eq!(*request, invocation);
            assert_eq!(*d, dict([("registration", Value::UInt(reg)), ("reason", "wamp.error.not_authorized".into())]));
        }
        other => panic!("expected INTERRUPT and UNREGISTERED 0, got {other:?}"),
    }
    let r = call(&mut bob, "p.x", Dict::new(), vec![]).await;
    expect_error(&mut bob, r, "wamp.error.no_such_procedure").await;
    assert_eq!(metric(&server, "registrations_revoked"), 1);
}

#[tokio::test]
async fn sessions_of_a_subject_are_closed_through_the_change_feed() {
    let keeper = Gatekeeper::new();
    let server = start(&keeper).await;
    let mut alice1 = join(&server, "alice", true).await;
    let mut alice2 = join(&server, "alice", false).await;
    let mut bob = join(&server, "bob", true).await;
    keeper.feed.end(Ending { authid: "alice".into(), token: None, message: "the user was disabled".into() });
    for alice in [&mut alice1, &mut alice2] {
        match alice.recv().await {
            Message::Goodbye { reason, details } => {
                assert_eq!(reason, "wamp.close.revoked");
                assert_eq!(details["message"], Value::Str("the user was disabled".into()));
            }
            other => panic!("expected GOODBYE, got {other:?}"),
        }
        alice.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() }).await;
        alice.expect_closed().await;
    }
    nothing_within(&mut bob, 50).await;
    let realm = server.router.realm("guarded").unwrap();
    assert_eq!(realm.sessions_of("alice").len(), 0);
    assert_eq!(realm.sessions_of("bob").len(), 1);
    assert_eq!(metric(&server, "sessions_closed_by_router"), 2);
}

#[tokio::test]
async fn a_session_whose_control_inbox_is_full_is_closed() {
    // Single-threaded runtime: the session's task cannot run while the test fills its inbox.
    let keeper = Gatekeeper::new();
    keeper.know("alice", "t.x", Answer::Allow);
    let server = start(&keeper).await;
    let mut alice = join(&server, "alice", true).await;
    let realm = server.router.realm("guarded").unwrap().clone();
    let session = realm.sessions_of("alice").pop().unwrap();
    for id in 0..switchyard::router::control::CAPACITY as u64 {
        realm.control(&session, Control::RevokeSubscription { id: 1000 + id, reason: "wamp.error.not_authorized" });
    }
    assert_eq!(metric(&server, "control_overflows"), 0);
    let closing = Closing { reason: "wamp.close.revoked".into(), message: "m".into() };
    realm.control(&session, Control::Close(Box::new(closing)));
    assert_eq!(metric(&server, "control_overflows"), 1);
    alice.expect_closed().await;
}

/// A publisher floods a topic while a client subscribes and unsubscribes over and over:
/// the first message after each SUBSCRIBE is always its SUBSCRIBED, never an EVENT of a
/// subscription the client has not heard of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_always_precedes_the_first_event() {
    let server = common::start(|_| {}).await;
    let mut publisher = Client::join_ws(&server, Serializer::Json).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                publisher.publish("t.race", Dict::new(), vec![]).await;
            }
        })
    };
    let mut subscriber = Client::join_ws(&server, Serializer::Json).await;
    for round in 0..200 {
        let request = subscriber.request();
        subscriber.send(&Message::Subscribe { request, options: Dict::new(), topic: "t.race".into() }).await;
        let subscription = match subscriber.recv().await {
            Message::Subscribed { request: r, subscription } if r == request => subscription,
            other => panic!("round {round}: expected SUBSCRIBED, got {other:?}"),
        };
        let request = subscriber.request();
        subscriber.send(&Message::Unsubscribe { request, subscription }).await;
        loop {
            match subscriber.recv().await {
                Message::Event { subscription: s, .. } => assert_eq!(s, subscription),
                Message::Unsubscribed { request: r, .. } if r == request => break,
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    assert!(metric(&server, "events_delivered") > 0);
}

/// A caller keeps calling a procedure while a callee registers and unregisters it: the
/// first message after each REGISTER is always its REGISTERED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_always_precedes_the_first_invocation() {
    let server = common::start(|_| {}).await;
    let mut caller = Client::join_ws(&server, Serializer::Json).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let calls = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call(&mut caller, "p.race", Dict::new(), vec![]).await;
                // Answered by an error (not registered, or the callee left) or a result.
                let _ = caller.recv().await;
            }
        })
    };
    let mut callee = Client::join_ws(&server, Serializer::Json).await;
    for round in 0..100 {
        let request = callee.request();
        callee.send(&Message::Register { request, options: Dict::new(), procedure: "p.race".into() }).await;
        let registration = match callee.recv().await {
            Message::Registered { request: r, registration } if r == request => registration,
            other => panic!("round {round}: expected REGISTERED, got {other:?}"),
        };
        let request = callee.request();
        callee.send(&Message::Unregister { request, registration }).await;
        loop {
            match callee.recv().await {
                Message::Invocation { request: inv, .. } => {
                    callee.send(&Message::Yield { request: inv, options: Dict::new(), payload: Default::default() }).await;
                }
                Message::Unregistered { request: r, .. } if r == request => break,
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    calls.await.unwrap();
}
