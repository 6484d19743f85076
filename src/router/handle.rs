//! What the rest of the router sees of an established session: identity, serializer,
//! outbox. Shared (`Arc`) by the broker's and dealer's indexes; the session's own state
//! machine stays private to its reader task (`session.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::outbox::{Outbox, PushError};
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
}

#[derive(Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub realm: String,
    pub authid: String,
    pub authrole: String,
    pub authmethod: String,
    pub serializer: Serializer,
    pub transport: &'static str,
    pub peer: String,
    pub features: PeerFeatures,
    /// Largest frame the peer accepts (RawSocket handshake), `usize::MAX` otherwise.
    pub max_outgoing: usize,
    pub outbox: Arc<Outbox>,
    /// Cancelled to tear the connection down.
    pub kill: CancellationToken,
    /// Session-scope ids for requests the router sends (INVOCATION).
    pub requests: IdSequence,
    /// Events not delivered to this session because its outbox was full.
    pub dropped_events: AtomicU64,
    /// Calls this session has in flight as a caller (kept by the dealer).
    pub calls_in_flight: AtomicUsize,
    closing: AtomicBool,
}

impl SessionHandle {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: SessionId,
        realm: String,
        authid: String,
        authrole: String,
        authmethod: String,
        conn: &super::frames::ConnInfo,
        features: PeerFeatures,
        outbox: Arc<Outbox>,
        kill: CancellationToken,
    ) -> SessionHandle {
        SessionHandle {
            id,
            realm,
            authid,
            authrole,
            authmethod,
            serializer: conn.serializer,
            transport: conn.transport,
            peer: conn.peer.clone(),
            features,
            max_outgoing: conn.max_outgoing,
            outbox,
            kill,
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
