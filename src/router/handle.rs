//! What the rest of the router sees of an established session: identity, serializer,
//! outbox, control inbox. Shared (`Arc`) by the broker's and dealer's indexes; the
//! session's own state machine, and what it holds, stay private to its task
//! (`session/`), which the rest of the router reaches through the control inbox.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::control::{Control, ControlInbox, InboxFull};
use super::outbox::{Outbox, PushError};
use crate::auth::{Permissions, Principal};
use crate::wamp::ids::{IdSequence, SessionId};
use crate::wamp::{Message, Serializer};

/// Client roles and features announced in HELLO that change what the router sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerFeatures {
    pub callee_call_canceling: bool,
    pub callee_progressive_call_results: bool,
    pub caller_progressive_call_results: bool,
    pub subscription_revocation: bool,
    pub registration_revocation: bool,
    /// `payload_passthru_mode` announced for the role.
    pub publisher_ppt: bool,
    pub caller_ppt: bool,
    pub callee_ppt: bool,
}

#[derive(Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub realm: String,
    pub authid: String,
    pub authrole: String,
    pub authmethod: String,
    pub authprovider: &'static str,
    /// What this session may do: its realm's authorizer's view of it.
    pub permissions: Arc<dyn Permissions>,
    /// The credential the session was opened with, when it can be revoked (see
    /// `auth::Principal::token`).
    pub token: Option<String>,
    /// When the credential expires (the session is closed then).
    pub expires_at: Option<std::time::SystemTime>,
    pub serializer: Serializer,
    pub transport: &'static str,
    /// Over TLS.
    pub secure: bool,
    pub peer: String,
    pub features: PeerFeatures,
    /// Largest frame the peer accepts (RawSocket handshake), `usize::MAX` otherwise.
    pub max_outgoing: usize,
    pub outbox: Arc<Outbox>,
    /// Cancelled to tear the connection down.
    pub kill: CancellationToken,
    /// How the router reaches the live session (`control.rs`).
    pub inbox: Arc<ControlInbox>,
    /// Session-scope ids for requests the router sends (INVOCATION).
    pub requests: IdSequence,
    /// Events not delivered to this session because its outbox was full.
    pub dropped_events: AtomicU64,
    /// Calls this session has in flight as a caller (kept by the dealer).
    pub calls_in_flight: AtomicUsize,
    closing: AtomicBool,
}

impl SessionHandle {
    pub fn new(
        id: SessionId,
        realm: String,
        principal: Principal,
        permissions: Arc<dyn Permissions>,
        conn: &super::frames::ConnInfo,
        features: PeerFeatures,
        (outbox, kill, inbox): (Arc<Outbox>, CancellationToken, Arc<ControlInbox>),
    ) -> SessionHandle {
        SessionHandle {
            id,
            realm,
            authid: principal.authid,
            authrole: principal.authrole,
            authmethod: principal.authmethod.to_owned(),
            authprovider: principal.authprovider,
            token: principal.token,
            expires_at: principal.expires_at,
            permissions,
            serializer: conn.serializer,
            transport: conn.transport,
            secure: conn.secure,
            peer: conn.peer.clone(),
            features,
            max_outgoing: conn.max_outgoing,
            outbox,
            kill,
            inbox,
            requests: IdSequence::new(),
            dropped_events: AtomicU64::new(0),
            calls_in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// Sends a message that must not be dropped. If it cannot be encoded for this peer
    /// or the outbox overflowed, the error says so and the caller decides what the
    /// other party is told.
    pub fn send(&self, msg: &Message) -> Result<(), SendError> {
        let frame = msg.encode(self.serializer).map_err(|e| SendError::Encode(e.to_string()))?;
        self.send_frame(frame)
    }

    pub fn send_frame(&self, frame: Bytes) -> Result<(), SendError> {
        let len = frame.len();
        if len > self.max_outgoing {
            return Err(SendError::TooLarge(len));
        }
        match self.outbox.push(frame) {
            Ok(()) => Ok(()),
            Err(PushError::Overflow) => {
                tracing::warn!(session = %self.id, "outbox overflow on RPC traffic: closing the session");
                self.close_now();
                Err(SendError::Gone)
            }
            Err(PushError::Budget) => Err(SendError::Budget(len)),
            Err(PushError::Full | PushError::Closed) => Err(SendError::Gone),
        }
    }

    /// Hands `c` to the session's task. A session whose inbox is full is closed at once
    /// (it could not be told of a revocation: fail closed); the error says so, for the
    /// caller to count.
    pub fn control(&self, c: Control) -> Result<(), InboxFull> {
        let sent = self.inbox.send(c);
        if sent.is_err() {
            tracing::warn!(session = %self.id, "control inbox full: closing the session");
            self.close_now();
        }
        sent
    }

    /// Tears the connection down without a goodbye (the peer cannot keep up or is gone).
    pub fn close_now(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.outbox.abandon();
        self.kill.cancel();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    #[error("the payload cannot be encoded for this peer: {0}")]
    Encode(String),
    #[error("the message of {0} bytes exceeds the peer's maximum message size")]
    TooLarge(usize),
    #[error("the message of {0} bytes cannot be queued: the router's memory budget is spent")]
    Budget(usize),
    #[error("the peer is gone")]
    Gone,
}

#[cfg(test)]
pub(crate) mod testing {
    //! Sessions without a connection, for unit tests of the broker and dealer.
    use super::*;
    use crate::router::budget::MemoryBudget;
    use crate::router::frames::ConnInfo;
    use crate::router::outbox::OutboxLimits;

    pub fn handle(id: u64) -> Arc<SessionHandle> {
        handle_with(id, 64)
    }

    /// A session whose outbox takes `max_messages` events.
    pub fn handle_with(id: u64, max_messages: usize) -> Arc<SessionHandle> {
        let conn = ConnInfo { serializer: Serializer::Json, transport: "test", secure: false, peer: "127.0.0.1:1".into(), max_outgoing: usize::MAX };
        let limits = OutboxLimits { max_messages, max_bytes: 1 << 20, rpc_bytes: 1 << 20 };
        let outbox = Arc::new(Outbox::new(limits, Arc::new(MemoryBudget::new(64 << 20))));
        let principal = Principal {
            authid: format!("user{id}"),
            authrole: "user".into(),
            authmethod: "ticket",
            authprovider: "static",
            token: None,
            expires_at: None,
        };
        let parts = (outbox, CancellationToken::new(), Arc::new(ControlInbox::new()));
        let permissions = Arc::new(crate::auth::Role::default());
        Arc::new(SessionHandle::new(SessionId(id), "r".into(), principal, permissions, &conn, PeerFeatures::default(), parts))
    }

    /// The messages queued for `h`, decoded, oldest first, as its writer would take
    /// them (refilling lagging subscriptions after each batch).
    pub async fn drain(h: &SessionHandle) -> Vec<Message> {
        take(h, usize::MAX).await
    }

    /// Like `drain`, but at most about `max` messages (whole batches of up to 16).
    pub async fn take(h: &SessionHandle, max: usize) -> Vec<Message> {
        let mut batch = Vec::new();
        let mut out = Vec::new();
        while !h.outbox.is_empty() && out.len() < max {
            h.outbox.next_batch(&mut batch, 16, 1 << 20).await;
            for o in batch.drain(..) {
                if let crate::router::outbox::Outgoing::Frame(f) = o {
                    out.push(Message::decode(Serializer::Json, &f).expect("decodable"));
                }
            }
            h.outbox.written();
            h.outbox.refill();
        }
        out
    }
}
