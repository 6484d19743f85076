//! Transports: WebSocket (with HTTP on the same port) and RawSocket (TCP and Unix).
//! Each turns its socket into a [`FrameReader`] and a [`FrameWriter`]; the router never
//! sees a socket, and transport differences end here.

pub mod http;
pub mod rawsocket;
pub mod websocket;

use std::future::Future;
use std::io;

use bytes::Bytes;

use crate::router::outbox::Outgoing;

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
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub trait FrameReader: Send + 'static {
    /// The next inbound item; None when the peer closed the connection.
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
    /// Closes the connection (after the last batch).
    fn close(self) -> impl Future<Output = ()> + Send;
}
