//! The session state machine of one connection: HELLO → (CHALLENGE → AUTHENTICATE) →
//! established → GOODBYE. It decodes each frame, checks it against the state, and
//! hands pub/sub to the broker and RPC to the dealer. Anything malformed or out of
//! state aborts this session only, with a message saying what was wrong.
//!
//! A session's task serves two inputs (`connection.rs`): frames from its peer, and its
//! control inbox (`control.rs`), through which the router revokes, re-checks or closes.
//! Handling either may need to wait (an authorization not in the cache): the handler
//! then returns [`Flow::Wait`] with a future that yields the rest of the work, and the
//! connection reads no further frame until it has run. So a session's messages keep
//! their order, and no other session waits.
//!
//! Files: `handshake.rs` (HELLO to WELCOME), `requests.rs` (the established session's
//! requests and their authorization), `lifecycle.rs` (control, revocation, closing),
//! `holdings.rs` (what the session holds).

mod handshake;
mod holdings;
mod lifecycle;
mod requests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::checks;
use super::control::ControlInbox;
use super::dealer::error_message;
use super::error::WampError;
use super::frames::ConnInfo;
use super::handle::{PeerFeatures, SessionHandle};
use super::meta::Testaments;
use super::quota::Rates;
use super::outbox::Outbox;
use super::realm::Realm;
use super::Router;
use crate::auth::Pending;
use crate::wamp::error::{PayloadError, RefusedHeader};
use crate::wamp::ids::{global_id, SessionId};
use crate::wamp::message::code;
use crate::wamp::uri::{self, MatchPolicy};
use crate::wamp::{DecodeError, Message};
use holdings::Holdings;

/// The rest of a piece of work that had to wait, run on the session once it can go on.
pub type Resume = Box<dyn FnOnce(&mut Session) -> Flow + Send>;
/// What a session waits for before it handles anything else from its peer.
pub type Waiting = Pin<Box<dyn Future<Output = Resume> + Send>>;

/// What the connection does after the session handled something.
pub enum Flow {
    Continue,
    /// Poll this before reading the next frame; hand its result to [`Session::resume`].
    Wait(Waiting),
    /// GOODBYE was sent and the session left: wait briefly for the peer's reply.
    Closing,
    /// Close the connection (after the outbox is flushed).
    Close,
}

impl Flow {
    pub fn is_close(&self) -> bool {
        matches!(self, Flow::Close)
    }
}

enum State {
    AwaitHello,
    Challenged { realm: Arc<Realm>, pending: Pending, features: PeerFeatures },
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
    inbox: Arc<ControlInbox>,
    id: SessionId,
    state: State,
    holdings: Holdings,
    /// Events to publish when the session leaves (`wamp.session.add_testament`).
    testaments: Testaments,
    /// The realm's per-session rate limits.
    rates: Rates,
    /// A re-check was asked for while the session waited; run it once the wait is over.
    recheck_due: bool,
}

impl Session {
    pub fn new(router: Arc<Router>, conn: ConnInfo, outbox: Arc<Outbox>, kill: CancellationToken, inbox: Arc<ControlInbox>) -> Session {
        Session {
            router,
            conn,
            outbox,
            kill,
            inbox,
            id: SessionId(global_id()),
            state: State::AwaitHello,
            holdings: Holdings::default(),
            testaments: Testaments::default(),
            rates: Rates::default(),
            recheck_due: false,
        }
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn is_established(&self) -> bool {
        !matches!(self.state, State::AwaitHello | State::Challenged { .. })
    }

    /// The realm and handle of an established session.
    fn established(&self) -> Option<(Arc<Realm>, Arc<SessionHandle>)> {
        match &self.state {
            State::Established { realm, handle } => Some((realm.clone(), handle.clone())),
            _ => None,
        }
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
                if flow.is_close() {
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

    /// Runs the rest of work that waited, then a re-check asked for meanwhile.
    pub fn resume(&mut self, rest: Resume) -> Flow {
        let flow = rest(self);
        if matches!(flow, Flow::Continue) && std::mem::take(&mut self.recheck_due) {
            return self.recheck();
        }
        flow
    }

    /// A well-formed message whose Arguments or ArgumentsKw the router cannot carry to
    /// every peer (too deep, not representable): refused with the spec's payload
    /// validation error, `wamp.error.invalid_argument`. The session goes on.
    fn refuse_payload(&mut self, name: &str, header: RefusedHeader, field: &str, problem: PayloadError) -> Flow {
        let Some((realm, me)) = self.established() else { return Flow::Continue };
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
        checks::uri(&self.router.limits, uri, policy)
    }

    /// Error URIs are held to the loose rules whatever `strict_uris` says: callee
    /// libraries name errors after exception classes (`com.example.NotFound`).
    fn check_error_uri(&self, uri: &str) -> Result<(), WampError> {
        checks::uri_length(&self.router.limits, uri)?;
        if uri::is_valid(uri, MatchPolicy::Exact, false) {
            Ok(())
        } else {
            Err(WampError::InvalidUri(uri.to_owned()))
        }
    }

    /// Queues a reply; a session whose outbox refuses it is beyond saving.
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
}
