//! WAMP over RawSocket (TCP and Unix sockets): the spec's 4-octet handshake (serializer
//! and maximum message length both ways, error replies), 4-octet frame headers with
//! message/PING/PONG types, and the size limit checked before a payload is read.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::codec::{Decoder, FramedRead};

use super::{FrameReader, FrameWriter, Inbound, TransportError};
use crate::router::connection;
use crate::router::outbox::Outgoing;
use crate::router::session::ConnInfo;
use crate::router::Router;
use crate::wamp::Serializer;

const MAGIC: u8 = 0x7F;
/// Initial read buffer; it grows for large frames. Small, because 100k idle sessions
/// each hold one.
const READ_BUFFER: usize = 1024;

/// Handshake error codes (upper nibble of the second octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    SerializerUnsupported = 1,
    LengthUnacceptable = 2,
    ReservedBits = 3,
    ConnectionLimit = 4,
}

/// The outcome of a client's handshake request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub serializer: Serializer,
    /// Largest message the client accepts.
    pub client_max: usize,
}

/// Largest exponent `e` with 2^(9+e) <= limit (at least 0, at most 15).
pub fn length_exponent(limit: usize) -> u8 {
    (0..=15u8).rev().find(|e| (1usize << (9 + e)) <= limit).unwrap_or(0)
}

/// Reads a handshake request. `Ok(None)`: not RawSocket at all (fail the connection).
pub fn parse_handshake(req: [u8; 4]) -> Result<Option<Accepted>, HandshakeError> {
    if req[0] != MAGIC {
        return Ok(None);
    }
    if req[2] != 0 || req[3] != 0 {
        return Err(HandshakeError::ReservedBits);
    }
    let serializer = Serializer::from_rawsocket_id(req[1] & 0x0F).ok_or(HandshakeError::SerializerUnsupported)?;
    Ok(Some(Accepted { serializer, client_max: 1usize << (9 + (req[1] >> 4)) }))
}

pub fn reply_ok(serializer: Serializer, limit: usize) -> [u8; 4] {
    [MAGIC, (length_exponent(limit) << 4) | serializer.rawsocket_id(), 0, 0]
}

pub fn reply_error(e: HandshakeError) -> [u8; 4] {
    [MAGIC, (e as u8) << 4, 0, 0]
}

/// The size limit actually announced: a power of two not above `max_message_size`.
pub fn announced_limit(max_message_size: usize) -> usize {
    1usize << (9 + length_exponent(max_message_size))
}

pub async fn serve_tcp(listener: TcpListener, router: Arc<Router>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (r, w) = stream.into_split();
                    spawn_connection(router.clone(), r, w, peer.to_string(), "rawsocket");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rawsocket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = router.shutdown.cancelled() => return,
        }
    }
}

pub async fn serve_unix(listener: UnixListener, router: Arc<Router>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (r, w) = stream.into_split();
                    spawn_connection(router.clone(), r, w, "unix".into(), "rawsocket-unix");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unix socket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = router.shutdown.cancelled() => return,
        }
    }
}

fn spawn_connection<R, W>(router: Arc<Router>, r: R, w: W, peer: String, transport: &'static str)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let tracker = router.connections.clone();
    tracker.spawn(async move {
        if let Err(e) = handshake_and_serve(router, r, w, peer, transport).await {
            tracing::debug!(error = %e, "rawsocket connection ended during the handshake");
        }
    });
}

async fn handshake_and_serve<R, W>(router: Arc<Router>, mut r: R, mut w: W, peer: String, transport: &'static str) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut req = [0u8; 4];
    tokio::time::timeout(router.limits.hello_timeout, r.read_exact(&mut req))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no handshake"))??;
    let accepted = match parse_handshake(req) {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(()),
        Err(e) => return w.write_all(&reply_error(e)).await,
    };
    let Some(admission) = router.admit() else {
        return w.write_all(&reply_error(HandshakeError::ConnectionLimit)).await;
    };
    let limit = router.limits.max_message_size;
    w.write_all(&reply_ok(accepted.serializer, limit)).await?;
    let conn = ConnInfo { serializer: accepted.serializer, transport, peer, max_outgoing: accepted.client_max };
    let reader = RawReader { frames: FramedRead::with_capacity(r, RawCodec { limit: announced_limit(limit) }, READ_BUFFER) };
    let writer = RawWriter { w };
    connection::serve(router, admission, conn, reader, writer).await;
    Ok(())
}

/// Frame types of the 4-octet header.
const TYPE_MESSAGE: u8 = 0;
const TYPE_PING: u8 = 1;
const TYPE_PONG: u8 = 2;

/// Splits the byte stream into frames; refuses an oversized frame from its header,
/// before its payload is buffered.
pub struct RawCodec {
    pub limit: usize,
}

impl Decoder for RawCodec {
    type Item = Inbound;
    type Error = TransportError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, TransportError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let head = src[0];
        if head & 0xF0 != 0 {
            return Err(TransportError::Protocol("reserved bits set in a frame header".into()));
        }
        let extra = if head & 0x08 != 0 { 1usize << 24 } else { 0 };
        let len = extra | (usize::from(src[1]) << 16) | (usize::from(src[2]) << 8) | usize::from(src[3]);
        if len > self.limit {
            return Err(TransportError::TooLarge { size: len, limit: self.limit });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let payload = src.split_to(len).freeze();
        match head & 0x07 {
            TYPE_MESSAGE => Ok(Some(Inbound::Message(payload))),
            TYPE_PING => Ok(Some(Inbound::Ping(payload))),
            TYPE_PONG => Ok(Some(Inbound::Alive)),
            t => Err(TransportError::Protocol(format!("unknown frame type {t}"))),
        }
    }
}

pub fn frame_header(kind: u8, len: usize) -> [u8; 4] {
    let x = if len == 1 << 24 { 0x08 } else { 0 };
    [kind | x, (len >> 16) as u8, (len >> 8) as u8, len as u8]
}

struct RawReader<R> {
    frames: FramedRead<R, RawCodec>,
}

impl<R: AsyncRead + Unpin + Send + 'static> FrameReader for RawReader<R> {
    async fn next(&mut self) -> Option<Result<Inbound, TransportError>> {
        self.frames.next().await
    }
}

struct RawWriter<W> {
    w: W,
}

impl<W: AsyncWrite + Unpin + Send + 'static> FrameWriter for RawWriter<W> {
    /// Gathers the whole batch, headers included, into one buffer and writes it with one
    /// syscall where the socket takes it. The buffer lives only for the batch, so an idle
    /// session holds no write buffer.
    async fn send(&mut self, batch: &mut Vec<Outgoing>) -> io::Result<()> {
        let total: usize = batch.iter().map(|i| 4 + match i { Outgoing::Frame(b) | Outgoing::Pong(b) => b.len() }).sum();
        let mut buf = Vec::with_capacity(total);
        for item in batch.drain(..) {
            let (kind, payload) = match item {
                Outgoing::Frame(b) => (TYPE_MESSAGE, b),
                Outgoing::Pong(b) => (TYPE_PONG, b),
            };
            buf.extend_from_slice(&frame_header(kind, payload.len()));
            buf.extend_from_slice(&payload);
        }
        self.w.write_all(&buf).await?;
        self.w.flush().await
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.w.write_all(&frame_header(TYPE_PING, 0)).await?;
        self.w.flush().await
    }

    async fn close(mut self) {
        let _ = self.w.flush().await;
        let _ = self.w.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_replies() {
        assert_eq!(
            parse_handshake([0x7F, 0xF2, 0, 0]),
            Ok(Some(Accepted { serializer: Serializer::MsgPack, client_max: 1 << 24 }))
        );
        assert_eq!(parse_handshake([0x7F, 0x17, 0, 0]), Err(HandshakeError::SerializerUnsupported));
        assert_eq!(parse_handshake([0x7F, 0x10, 0, 0]), Err(HandshakeError::SerializerUnsupported));
        assert_eq!(parse_handshake([0x7F, 0x11, 1, 0]), Err(HandshakeError::ReservedBits));
        assert_eq!(parse_handshake([b'G', b'E', b'T', b' ']), Ok(None));
        assert_eq!(reply_error(HandshakeError::SerializerUnsupported), [0x7F, 0x10, 0, 0]);
        assert_eq!(reply_error(HandshakeError::ConnectionLimit), [0x7F, 0x40, 0, 0]);
        assert_eq!(reply_ok(Serializer::Json, 65536), [0x7F, 0x71, 0, 0]);
        assert_eq!(reply_ok(Serializer::Cbor, 16 * 1024 * 1024), [0x7F, 0xF3, 0, 0]);
        assert_eq!(length_exponent(100), 0);
        assert_eq!(announced_limit(100_000), 65536);
    }

    #[test]
    fn codec_splits_frames_and_enforces_the_limit() {
        let mut codec = RawCodec { limit: 8 };
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame_header(TYPE_MESSAGE, 3));
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(&frame_header(TYPE_PING, 1));
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Inbound::Message(b))) if &b[..] == b"abc"));
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"z");
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Inbound::Ping(b))) if &b[..] == b"z"));
        buf.extend_from_slice(&frame_header(TYPE_MESSAGE, 9));
        assert!(matches!(codec.decode(&mut buf), Err(TransportError::TooLarge { size: 9, limit: 8 })));
        assert_eq!(frame_header(TYPE_MESSAGE, 1 << 24), [0x08, 0, 0, 0]);
    }
}
