//! What the router needs of a transport: a reader of inbound frames, a writer of
//! outbound ones, and a few facts about the connection. Transports (WebSocket,
//! RawSocket) implement these; the router never sees a socket, and transport
//! differences end in `transport/`.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;

use super::outbox::Outgoing;
use crate::wamp::Serializer;

/// What the transport tells the router about a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub serializer: Serializer,
    pub transport: &'static str,
    /// Over TLS (`wss://`, RawSocket over TLS).
    pub secure: bool,
    pub peer: String,
    /// Largest message the peer accepts (RawSocket handshake), else `usize::MAX`.
    pub max_outgoing: usize,
}

impl ConnInfo {
    /// The peer's address without its port, the unit of authentication throttling
    /// ("unix" for every Unix socket peer).
    pub fn address(&self) -> &str {
        match self.peer.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host.trim_start_matches('[').trim_end_matches(']'),
            _ => &self.peer,
        }
    }
}

/// What arrives from the peer.
#[derive(Debug)]
pub enum Inbound {
    Message(Bytes),
    /// A RawSocket PING: answered with a PONG carrying the same payload.
    Ping(Bytes),
    /// Any sign of life that is not a message (a pong).
    Alive,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("a message was not completed within {0:?} of its first byte")]
    Incomplete(Duration),
    /// The peer broke the transport's framing.
    #[error("{0}")]
    Protocol(String),
    /// A text frame that is not UTF-8.
    #[error("{0}")]
    InvalidData(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why the router closes a connection, for transports that can say so (WebSocket
/// close codes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CloseReason {
    /// The WAMP session ended (GOODBYE, ABORT) or the peer went away.
    #[default]
    Normal,
    /// The peer broke the transport's framing (WebSocket 1002).
    ProtocolError(String),
    /// The peer sent data of the wrong kind (WebSocket 1007).
    InvalidData(String),
}

impl TransportError {
    /// How to close after this error; None when the connection is gone already.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            TransportError::Protocol(m) => Some(CloseReason::ProtocolError(m.clone())),
            TransportError::InvalidData(m) => Some(CloseReason::InvalidData(m.clone())),
            TransportError::TooLarge { .. } | TransportError::Incomplete(_) => Some(CloseReason::Normal),
            TransportError::Io(_) => None,
        }
    }
}

pub trait FrameReader: Send + 'static {
    /// The next inbound item; None when the peer closed the connection. Cancel-safe:
    /// a call dropped before it completes loses no data.
    fn next(&mut self) -> impl Future<Output = Option<Result<Inbound, TransportError>>> + Send;
}

pub trait FrameWriter: Send + 'static {
    /// Writes every frame of `batch` and flushes once. The frames are taken (the batch is
    /// left empty): moving a shared `Bytes` instead of cloning it saves two atomic
    /// refcount updates per frame, which under fan-out hit the same cache line from
    /// both cores.
    fn send(&mut self, batch: &mut Vec<Outgoing>) -> impl Future<Output = io::Result<()>> + Send;
    /// Sends a keep-alive ping.
    fn ping(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the connection (after the last batch), saying why where the transport can.
    fn close(self, reason: CloseReason) -> impl Future<Output = ()> + Send;
}
