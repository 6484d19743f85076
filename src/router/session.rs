//! The session state machine of one connection: HELLO → (CHALLENGE → AUTHENTICATE) →
//! established → GOODBYE. It decodes each frame, checks it against the state, and
//! hands pub/sub to the broker and RPC to the dealer. Anything malformed or out of
//! state aborts this session only, with a message saying what was wrong.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::broker::{Publication, Recipients};
use super::dealer::{error_message, CallRequest};
use super::error::WampError;
use super::features::router_roles;
use super::frames::ConnInfo;
use super::handle::{PeerFeatures, SessionHandle};
use super::outbox::Outbox;
use super::realm::Realm;
use super::Router;
use crate::auth::{Action, HelloOutcome, Principal};
use crate::wamp::ids::{global_id, SessionId};
use crate::wamp::message::code;
use crate::wamp::uri::{self, MatchPolicy};
use crate::wamp::error::{PayloadError, RefusedHeader};
use crate::wamp::{dict, DecodeError, Dict, Message, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

enum State {
    AwaitHello,
    Challenged { realm: Arc<Realm>, pending: Principal, features: PeerFeatures },
    Established { realm: Arc<Realm>, handle: Arc<SessionHandle> },
    /// The router said GOODBYE and waits for the peer's reply.
    Closing,
    Closed,
}

pub struct Session {
    router: Arc<Router>,
    conn: ConnInfo,
    outbox: Arc<Outbox>,
    kill: CancellationToken,
    id: SessionId,
    state: State,
    subscriptions: HashSet<u64>,
    registrations: HashSet<u64>,
}

impl Session {
    pub fn new(router: Arc<Router>, conn: ConnInfo, outbox: Arc<Outbox>, kill: CancellationToken) -> Session {
        Session {
            router,
            conn,
            outbox,
            kill,
            id: SessionId(global_id()),
            state: State::AwaitHello,
            subscriptions: HashSet::new(),
            registrations: HashSet::new(),
        }
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn is_established(&self) -> bool {
        !matches!(self.state, State::AwaitHello | State::Challenged { .. })
    }

    /// Handles one inbound frame.
    pub fn handle_frame(&mut self, frame: Bytes) -> Flow {
        let msg = match Message::decode(self.conn.serializer, &frame) {
            Ok(m) => m,
            Err(DecodeError::Payload { message, header, field, problem }) if self.is_established() => {
                return self.refuse_payload(message, header, field, problem)
            }
            Err(e) => return self.violation(format!("cannot decode message: {e}")),
        };
        match std::mem::replace(&mut self.state, State::Closed) {
            State::AwaitHello => self.on_hello(msg),
            State::Challenged { realm, pending, features } => self.on_authenticate(msg, realm, pending, features),
            State::Established { realm, handle } => {
                let flow = self.on_established(msg, &realm, &handle);
                // Even when closing, `leave` still needs the realm and the handle.
                self.state = State::Established { realm, handle };
                if flow == Flow::Close {
                    self.close_after_flush();
                }
                flow
            }
            State::Closing => match msg {
                Message::Goodbye { .. } | Message::Abort { .. } => Flow::Close,
                _ => {
                    self.state = State::Closing;
                    Flow::Continue
                }
            },
            State::Closed => Flow::Close,
        }
    }

    // ---- handshake --------------------------------------------------------------------

    fn on_hello(&mut self, msg: Message) -> Flow {
        let Message::Hello { realm, details } = msg else {
            return self.violation(format!("expected HELLO, got {}", msg.name()));
        };
        if let Err(e) = self.check_uri(&realm, MatchPolicy::Exact) {
            return self.abort(e);
        }
        let Some(realm) = self.router.realm(&realm).cloned() else {
            return self.abort(WampError::NoSuchRealm(realm));
        };
        let features = peer_features(&details);
        match realm.authenticator.hello(&details, self.id.0, self.conn.address()) {
            Ok(HelloOutcome::Welcome(principal)) => self.welcome(realm, principal, features),
            Ok(HelloOutcome::Challenge { method, extra, pending }) => {
                self.push(&Message::Challenge { authmethod: method.to_owned(), extra });
                self.state = State::Challenged { realm, pending, features };
                Flow::Continue
            }
            Err(e) => self.refuse_authentication(e),
        }
    }

    /// Counts a refused authentication by kind, then aborts with it.
    fn refuse_authentication(&mut self, e: WampError) -> Flow {
        match e {
            WampError::AuthenticationThrottled { .. } => self.router.metrics.auth_throttled.inc(),
            WampError::AuthenticationFailed(_) => self.router.metrics.auth_failures.inc(),
            _ => 0,
        };
        self.abort(e)
    }

    fn on_authenticate(&mut self, msg: Message, realm: Arc<Realm>, pending: Principal, features: PeerFeatures) -> Flow {
        match msg {
            Message::Authenticate { signature, .. } => {
                match realm.authenticator.authenticate(&pending, &signature, self.conn.address()) {
                    Ok(principal) => self.welcome(realm, principal, features),
                    Err(e) => self.refuse_authentication(e),
                }
            }
            Message::Abort { .. } => Flow::Close,
            other => self.violation(format!("expected AUTHENTICATE, got {}", other.name())),
        }
    }

    fn welcome(&mut self, realm: Arc<Realm>, p: Principal, features: PeerFeatures) -> Flow {
        let handle = Arc::new(SessionHandle::new(
            self.id,
            realm.name.clone(),
            p.authid.clone(),
            p.authrole.clone(),
            p.authmethod.to_owned(),
            &self.conn,
            features,
            self.outbox.clone(),
            self.kill.clone(),
        ));
        let details = dict([
            ("realm", realm.name.as_str().into()),
            ("authid", p.authid.into()),
            ("authrole", p.authrole.into()),
            ("authmethod", p.authmethod.into()),
            ("authprovider", "static".into()),
            ("roles", router_roles()),
        ]);
        self.push(&Message::Welcome { session: self.id.0, details });
        realm.join(handle.clone());
        self.router.metrics.sessions.inc();
        tracing::debug!(session = %self.id, realm = %realm.name, authid = %handle.authid, "session joined");
        self.state = State::Established { realm, handle };
        Flow::Continue
    }

    // ---- established ------------------------------------------------------------------

    fn on_established(&mut self, msg: Message, realm: &Arc<Realm>, me: &Arc<SessionHandle>) -> Flow {
        let result = match msg {
            Message::Publish { request, options, topic, payload } => {
                let ack = options.get("acknowledge").and_then(Value::as_bool).unwrap_or(false);
                match self.publish(realm, me, &options, &topic, payload) {
                    Ok(publication) if ack => Ok(Some(Message::Published { request, publication })),
                    Ok(_) => Ok(None),
                    Err(e) if ack => Err((code::PUBLISH, request, e)),
                    Err(_) => Ok(None),
                }
            }
            Message::Subscribe { request, options, topic } => self
                .subscribe(realm, me, &options, &topic)
                .map(|subscription| Some(Message::Subscribed { request, subscription }))
                .map_err(|e| (code::SUBSCRIBE, request, e)),
            Message::Unsubscribe { request, subscription } => {
                if self.subscriptions.remove(&subscription) && realm.broker.unsubscribe(self.id, subscription) {
                    Ok(Some(Message::Unsubscribed { request, details: None }))
                } else {
                    Err((code::UNSUBSCRIBE, request, WampError::NoSuchSubscription(subscription)))
                }
            }
            Message::Call { request, options, procedure, payload } => self
                .call(realm, me, request, options, procedure, payload)
                .map(|()| None)
                .map_err(|e| (code::CALL, request, e)),
            Message::Cancel { request, options } => {
                realm.dealer.cancel(self.id, request, &options).map(|()| None).map_err(|e| (code::CANCEL, request, e))
            }
            Message::Register { request, options, procedure } => self
                .register(realm, me, &options, &procedure)
                .map(|registration| Some(Message::Registered { request, registration }))
                .map_err(|e| (code::REGISTER, request, e)),
            Message::Unregister { request, registration } => {
                match realm.dealer.unregister(self.id, registration) {
                    Ok(()) => {
                        self.registrations.remove(&registration);
                        Ok(Some(Message::Unregistered { request, details: None }))
                    }
                    Err(e) => Err((code::UNREGISTER, request, e)),
                }
            }
            Message::Yield { request, options, payload } => {
                realm.dealer.yield_result(self.id, request, &options, payload);
                Ok(None)
            }
            Message::Error { request_type: code::INVOCATION, request, details, error, payload } => {
                match self.check_error_uri(&error) {
                    Ok(()) => realm.dealer.callee_error(self.id, request, details, error, payload),
                    Err(e) => realm.dealer.fail_invocation(self.id, request, &e),
                }
                Ok(None)
            }
            Message::Goodbye { .. } => {
                self.push(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() });
                return Flow::Close;
            }
            Message::Abort { .. } => return Flow::Close,
            other => return self.violation(format!("{} is not allowed from a client in an established session", other.name())),
        };
        match result {
            Ok(Some(reply)) => self.push(&reply),
            Ok(None) => {}
            Err((request_type, request, e)) => self.push(&error_message(request_type, request, &e, me)),
        }
        Flow::Continue
    }

    /// A well-formed message whose Arguments or ArgumentsKw the router cannot carry to
    /// every peer (too deep, not representable): refused with the spec's payload
    /// validation error, `wamp.error.invalid_argument`. The session goes on.
    fn refuse_payload(&mut self, name: &str, header: RefusedHeader, field: &str, problem: PayloadError) -> Flow {
        let State::Established { realm, handle } = &self.state else { return Flow::Continue };
        let (realm, me) = (realm.clone(), handle.clone());
        let err = WampError::InvalidArgument(format!("{name}.{field}: {problem}"));
        self.router.metrics.payloads_refused.inc();
        tracing::debug!(session = %self.id, error = %err, "payload refused");
        match (header.code, header.request_type) {
            (code::PUBLISH, _) => {
                if header.acknowledge {
                    self.push(&error_message(code::PUBLISH, header.request, &err, &me));
                }
            }
            (code::CALL, _) => self.push(&error_message(code::CALL, header.request, &err, &me)),
            (code::YIELD, _) | (code::ERROR, code::INVOCATION) => realm.dealer.fail_invocation(self.id, header.request, &err),
            _ => return self.violation(format!("{name} is not allowed from a client in an established session")),
        }
        Flow::Continue
    }

    fn check_uri(&self, uri: &str, policy: MatchPolicy) -> Result<(), WampError> {
        self.check_uri_length(uri)?;
        if uri::is_valid(uri, policy, self.router.limits.strict_uris) {
            Ok(())
        } else {
            Err(WampError::InvalidUri(uri.to_owned()))
        }
    }

    fn check_uri_length(&self, uri: &str) -> Result<(), WampError> {
        let limit = self.router.limits.max_uri_length;
        if uri.len() > limit {
            return Err(WampError::UriTooLong { len: uri.len(), limit });
        }
        Ok(())
    }

    /// Error URIs are held to the loose rules whatever `strict_uris` says: callee
    /// libraries name errors after exception classes (`com.example.NotFound`).
    fn check_error_uri(&self, uri: &str) -> Result<(), WampError> {
        self.check_uri_length(uri)?;
        if uri::is_valid(uri, MatchPolicy::Exact, false) {
            Ok(())
        } else {
            Err(WampError::InvalidUri(uri.to_owned()))
        }
    }

    /// Clients may use the `wamp` namespace only where the router serves it (meta
    /// topics to subscribe to, meta procedures to call), never to publish or register.
    fn check_not_reserved(uri: &str) -> Result<(), WampError> {
        if uri::is_reserved(uri) {
            return Err(WampError::ReservedUri(uri.to_owned()));
        }
        Ok(())
    }

    fn authorize(&self, realm: &Realm, me: &SessionHandle, action: Action, uri: &str) -> Result<bool, WampError> {
        let d = realm.authorize(me, action, uri);
        if d.allowed {
            Ok(d.disclose)
        } else {
            Err(WampError::NotAuthorized { action: action.as_str(), uri: uri.to_owned() })
        }
    }

    fn publish(
        &self,
        realm: &Realm,
        me: &SessionHandle,
        options: &Dict,
        topic: &str,
        payload: crate::wamp::Args,
    ) -> Result<u64, WampError> {
        self.check_uri(topic, MatchPolicy::Exact)?;
        Session::check_not_reserved(topic)?;
        let role_discloses = self.authorize(realm, me, Action::Publish, topic)?;
        let recipients = Recipients::from_options(self.id, options)?;
        let disclose = role_discloses || options.get("disclose_me").and_then(Value::as_bool).unwrap_or(false);
        Ok(realm.broker.publish(Publication { publisher: me, topic, recipients, disclose, payload }))
    }

    fn subscribe(&mut self, realm: &Realm, me: &Arc<SessionHandle>, options: &Dict, topic: &str) -> Result<u64, WampError> {
        let policy = match_policy(options)?;
        self.check_uri(topic, policy)?;
        self.authorize(realm, me, Action::Subscribe, topic)?;
        if self.subscriptions.len() >= self.router.limits.max_subscriptions_per_session {
            return Err(WampError::LimitReached(format!(
                "a session may hold at most {} subscriptions",
                self.router.limits.max_subscriptions_per_session
            )));
        }
        let id = realm.broker.subscribe(me, topic, policy, &realm.ids);
        self.subscriptions.insert(id);
        Ok(id)
    }

    fn register(&mut self, realm: &Realm, me: &Arc<SessionHandle>, options: &Dict, procedure: &str) -> Result<u64, WampError> {
        if match_policy(options)? != MatchPolicy::Exact {
            return Err(WampError::InvalidArgument("pattern-based registration is not supported".into()));
        }
        match options.get("invoke").and_then(Value::as_str) {
            None | Some("single") => {}
            Some(other) => {
                return Err(WampError::InvalidArgument(format!("invocation policy '{other}' is not supported")))
            }
        }
        self.check_uri(procedure, MatchPolicy::Exact)?;
        Session::check_not_reserved(procedure)?;
        self.authorize(realm, me, Action::Register, procedure)?;
        if self.registrations.len() >= self.router.limits.max_registrations_per_session {
            return Err(WampError::LimitReached(format!(
                "a session may hold at most {} registrations",
                self.router.limits.max_registrations_per_session
            )));
        }
        let id = realm.dealer.register(me, procedure, &realm.ids)?;
        self.registrations.insert(id);
        Ok(id)
    }

    fn call(
        &self,
        realm: &Realm,
        me: &Arc<SessionHandle>,
        request: u64,
        options: Dict,
        procedure: String,
        payload: crate::wamp::Args,
    ) -> Result<(), WampError> {
        self.check_uri(&procedure, MatchPolicy::Exact)?;
        let disclose = self.authorize(realm, me, Action::Call, &procedure)?;
        realm.dealer.call(me, CallRequest { request, procedure, options, payload, disclose })
    }

    // ---- closing ------------------------------------------------------------------------

    fn push(&self, msg: &Message) {
        match msg.encode(self.conn.serializer) {
            Ok(frame) => {
                if self.outbox.push(frame).is_err() {
                    tracing::debug!(session = %self.id, "outbox closed or overflowing: reply not sent");
                    self.kill.cancel();
                }
            }
            Err(e) => tracing::error!(session = %self.id, error = %e, "reply cannot be encoded"),
        }
    }

    fn abort(&mut self, e: WampError) -> Flow {
        tracing::debug!(session = %self.id, reason = e.uri(), message = %e, "aborting session");
        self.push(&Message::Abort { details: e.details(), reason: e.uri().to_owned() });
        self.close_after_flush();
        Flow::Close
    }

    fn violation(&mut self, message: String) -> Flow {
        self.router.metrics.protocol_violations.inc();
        tracing::info!(session = %self.id, peer = %self.conn.peer, "protocol violation: {message}");
        let keep = std::mem::replace(&mut self.state, State::Closed);
        if let State::Established { .. } = keep {
            self.state = keep;
        }
        self.abort(WampError::ProtocolViolation(message))
    }

    fn close_after_flush(&self) {
        self.outbox.close();
    }

    /// The peer sent a message above the size limit: tell it why, then close.
    pub fn too_large(&mut self, size: usize, limit: usize) {
        self.violation(format!("message of {size} bytes exceeds the limit of {limit} bytes"));
    }

    pub fn hello_timeout(&mut self) {
        self.violation(format!("no HELLO within {:?}", self.router.limits.hello_timeout));
    }

    /// A message begun and not finished within the frame timeout.
    pub fn incomplete(&mut self, after: std::time::Duration) {
        self.violation(format!("a message was not completed within {after:?} of its first byte"));
    }

    /// A newer connection took this one's place at the connection limit before this one
    /// established a session.
    pub fn evicted(&mut self) {
        tracing::debug!(session = %self.id, peer = %self.conn.peer, "evicted at the connection limit");
        self.abort(WampError::ProtocolViolation(
            "the router is at its connection limit and this connection has not established a session".into(),
        ));
    }

    /// Router shutdown: GOODBYE `wamp.close.system_shutdown`. Returns false when the
    /// session has no one to say goodbye to (not established).
    pub fn system_shutdown(&mut self) -> bool {
        let msg = Message::Goodbye {
            details: dict([("message", "the router is shutting down".into())]),
            reason: "wamp.close.system_shutdown".into(),
        };
        if let State::Established { .. } = self.state {
            self.push(&msg);
            self.leave();
            self.state = State::Closing;
            true
        } else {
            self.abort(WampError::ProtocolViolation("the router is shutting down".into()));
            false
        }
    }

    /// Leaves the realm: subscriptions, registrations and calls in flight go with it.
    pub fn leave(&mut self) {
        if let State::Established { realm, .. } = std::mem::replace(&mut self.state, State::Closed) {
            realm.leave(self.id, self.subscriptions.drain(), self.registrations.drain());
            self.router.metrics.sessions.dec();
            tracing::debug!(session = %self.id, "session left");
        }
    }
}

fn match_policy(options: &Dict) -> Result<MatchPolicy, WampError> {
    match options.get("match") {
        None => Ok(MatchPolicy::Exact),
        Some(Value::Str(s)) => {
            MatchPolicy::parse(s).ok_or_else(|| WampError::InvalidArgument(format!("unknown match policy '{s}'")))
        }
        Some(_) => Err(WampError::InvalidArgument("match must be a string".into())),
    }
}

/// Reads the client's announced roles and features from HELLO.Details.roles.
fn peer_features(details: &Dict) -> PeerFeatures {
    let feature = |role: &str, name: &str| -> bool {
        details
            .get("roles")
            .and_then(Value::as_dict)
            .and_then(|r| r.get(role))
            .and_then(Value::as_dict)
            .and_then(|r| r.get("features"))
            .and_then(Value::as_dict)
            .and_then(|f| f.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    PeerFeatures {
        callee_call_canceling: feature("callee", "call_canceling"),
        callee_progressive_call_results: feature("callee", "progressive_call_results"),
        caller_progressive_call_results: feature("caller", "progressive_call_results"),
        subscription_revocation: feature("subscriber", "subscription_revocation"),
        registration_revocation: feature("callee", "registration_revocation"),
    }
}
