//! WAMP over RawSocket (TCP and Unix sockets): the spec's 4-octet handshake (serializer
//! and maximum message length both ways, error replies) within `handshake_timeout_ms`,
//! 4-octet frame headers with message/PING/PONG types, and every limit of
//! `inbound.rs` checked from the frame header, before the payload is read. On TCP the
//! stream may be TLS: its handshake comes first, inside the same deadline.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Decoder;

use super::inbound::{FrameClock, InboundLimits};
use super::{listener, tls};
use super::{CloseReason, FrameReader, FrameWriter, Inbound, TransportError};
use crate::router::admission::{Admission, Refusal};
use crate::router::connection;
use crate::router::frames::ConnInfo;
use crate::router::outbox::Outgoing;
use crate::router::Router;
use crate::wamp::Serializer;

const MAGIC: u8 = 0x7F;
/// Initial read buffer; it grows for large frames. Small, because 100k idle sessions
/// each hold one.
const READ_BUFFER: usize = 1024;
/// A large frame's buffer grows by at most this much per read, so that a header
/// announcing 16 MiB costs nothing until the bytes arrive.
const READ_STEP: usize = 64 * 1024;
/// Frames up to this size are gathered into one write with their neighbours; larger
/// ones are written from where they lie.
const GATHER_MAX: usize = 16 * 1024;
/// How long a refused client has to send its handshake before it gets error 4.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

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

/// RawSocket on TCP, over TLS when `tls` is given.
pub async fn serve_tcp(l: TcpListener, router: Arc<Router>, tls: Option<TlsAcceptor>) {
    let r = router.clone();
    let Some(acceptor) = tls else {
        let serve = move |stream: tokio::net::TcpStream, peer, admission| {
            let (rd, wr) = stream.into_split();
            let deadline = Instant::now() + r.limits.handshake_timeout;
            handshake_and_serve(r.clone(), rd, wr, peer, ("rawsocket", false), admission, deadline)
        };
        return listener::run(l, router, "rawsocket", serve, |stream, refusal| {
            let (rd, wr) = stream.into_split();
            refuse(rd, wr, refusal)
        })
        .await;
    };
    let a = acceptor.clone();
    let serve = move |stream: tokio::net::TcpStream, peer: String, admission| {
        let (r, acceptor) = (r.clone(), acceptor.clone());
        async move {
            let deadline = Instant::now() + r.limits.handshake_timeout;
            if let Some(stream) = tls::handshake(&acceptor, stream, deadline, &admission, &r, &peer).await {
                let (rd, wr) = tokio::io::split(stream);
                handshake_and_serve(r, rd, wr, peer, ("rawsocket", true), admission, deadline).await;
            }
        }
    };
    // A refused client gets error 4 over TLS, once it can read it.
    let refuse_tls = move |stream, refusal| {
        let a = a.clone();
        async move {
            if let Some(stream) = tls::handshake_refused(&a, stream, REFUSAL_WAIT).await {
                let (rd, wr) = tokio::io::split(stream);
                refuse(rd, wr, refusal).await;
            }
        }
    };
    listener::run(l, router, "rawsocket-tls", serve, refuse_tls).await
}

pub async fn serve_unix(l: UnixListener, router: Arc<Router>) {
    let r = router.clone();
    let serve = move |stream: tokio::net::UnixStream, peer, admission| {
        let (rd, wr) = stream.into_split();
        let deadline = Instant::now() + r.limits.handshake_timeout;
        handshake_and_serve(r.clone(), rd, wr, peer, ("rawsocket-unix", false), admission, deadline)
    };
    listener::run(l, router, "unix", serve, |stream, refusal| {
        let (rd, wr) = stream.into_split();
        refuse(rd, wr, refusal)
    })
    .await
}

/// At the connection limit: the client's handshake is answered with error 4
/// (maximum connection count reached).
async fn refuse<R, W>(mut r: R, mut w: W, refusal: Refusal)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut req = [0u8; 4];
    if let Ok(Ok(_)) = tokio::time::timeout(REFUSAL_WAIT, r.read_exact(&mut req)).await {
        let _ = tokio::time::timeout(REFUSAL_WAIT, w.write_all(&reply_error(HandshakeError::ConnectionLimit))).await;
        let _ = w.shutdown().await;
    }
    drop(refusal);
}

async fn handshake_and_serve<R, W>(
    router: Arc<Router>,
    mut r: R,
    mut w: W,
    peer: String,
    (transport, secure): (&'static str, bool),
    admission: Admission,
    deadline: Instant,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut req = [0u8; 4];
    let read = tokio::select! {
        read = tokio::time::timeout_at(deadline, r.read_exact(&mut req)) => read,
        _ = admission.evicted().cancelled() => return,
    };
    if !matches!(read, Ok(Ok(_))) {
        tracing::debug!(peer, "rawsocket connection ended before its handshake");
        return;
    }
    let accepted = match parse_handshake(req) {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            let _ = w.write_all(&reply_error(e)).await;
            return;
        }
    };
    let limit = announced_limit(router.limits.max_message_size);
    if w.write_all(&reply_ok(accepted.serializer, router.limits.max_message_size)).await.is_err() {
        return;
    }
    let conn = ConnInfo { serializer: accepted.serializer, transport, secure, peer, max_outgoing: accepted.client_max };
    let limits = InboundLimits::new(&router, admission.established_flag(), limit);
    let reader = RawReader::new(r, limits);
    connection::serve(router, admission, conn, reader, RawWriter { w }).await;
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

impl RawCodec {
    /// The type and length of the frame at the front of `src`, once its header is there.
    pub fn header(&self, src: &[u8]) -> Result<Option<(u8, usize)>, TransportError> {
        let Some(&[head, a, b, c]) = src.first_chunk::<4>() else { return Ok(None) };
        if head & 0xF0 != 0 {
            return Err(TransportError::Protocol("reserved bits set in a frame header".into()));
        }
        let kind = head & 0x07;
        if !matches!(kind, TYPE_MESSAGE | TYPE_PING | TYPE_PONG) {
            return Err(TransportError::Protocol(format!("unknown frame type {kind}")));
        }
        let extra = if head & 0x08 != 0 { 1usize << 24 } else { 0 };
        let len = extra | (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
        if len > self.limit {
            return Err(TransportError::TooLarge { size: len, limit: self.limit });
        }
        Ok(Some((kind, len)))
    }

    /// Takes the frame of `kind` and `len` off the front of `src` if it is all there;
    /// otherwise makes room for the next step of it.
    fn take(src: &mut BytesMut, kind: u8, len: usize) -> Option<Inbound> {
        if src.len() < 4 + len {
            src.reserve((4 + len - src.len()).min(READ_STEP));
            return None;
        }
        src.advance(4);
        let payload = src.split_to(len).freeze();
        Some(match kind {
            TYPE_MESSAGE => Inbound::Message(payload),
            TYPE_PING => Inbound::Ping(payload),
            _ => Inbound::Alive,
        })
    }
}

impl Decoder for RawCodec {
    type Item = Inbound;
    type Error = TransportError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, TransportError> {
        match self.header(src)? {
            Some((kind, len)) => Ok(RawCodec::take(src, kind, len)),
            None => Ok(None),
        }
    }
}

pub fn frame_header(kind: u8, len: usize) -> [u8; 4] {
    let x = if len == 1 << 24 { 0x08 } else { 0 };
    [kind | x, (len >> 16) as u8, (len >> 8) as u8, len as u8]
}

/// Reads frames under the connection's inbound limits: the size limit of the moment
/// (small until the session is established), a budget charge before a large payload is
/// buffered, and a deadline for a frame once its first byte has arrived.
struct RawReader<R> {
    r: R,
    buf: BytesMut,
    limits: InboundLimits,
    /// Runs while the frame at the front of `buf` is incomplete.
    clock: FrameClock,
}

impl<R> RawReader<R> {
    fn new(r: R, limits: InboundLimits) -> RawReader<R> {
        let clock = limits.clock();
        RawReader { r, buf: BytesMut::with_capacity(READ_BUFFER), limits, clock }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> FrameReader for RawReader<R> {
    async fn next(&mut self) -> Option<Result<Inbound, TransportError>> {
        let incomplete = TransportError::Incomplete(self.limits.frame_timeout);
        // The message returned last has been handed to the router by now.
        self.limits.release();
        loop {
            let codec = RawCodec { limit: self.limits.limit() };
            match codec.header(&self.buf) {
                Err(e) => return Some(Err(e)),
                Ok(None) => {}
                Ok(Some((kind, len))) => {
                    let need = self.limits.needs(len);
                    if need > 0 {
                        self.clock.begin();
                        tokio::select! {
                            () = self.limits.charge(need) => self.limits.charged(need),
                            () = self.clock.expired() => return Some(Err(incomplete)),
                        }
                    }
                    if let Some(item) = RawCodec::take(&mut self.buf, kind, len) {
                        // What is left is the start of the next frame, begun now.
                        if self.buf.is_empty() {
                            self.clock.end();
                        } else {
                            self.clock.restart();
                        }
                        return Some(Ok(item));
                    }
                }
            }
            if !self.buf.is_empty() {
                self.clock.begin();
            }
            let read = tokio::select! {
                read = self.r.read_buf(&mut self.buf) => read,
                () = self.clock.expired() => return Some(Err(incomplete)),
            };
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

struct RawWriter<W> {
    w: W,
}

/// The frame type and payload of an outgoing item.
fn parts(item: Outgoing) -> (u8, Bytes) {
    match item {
        Outgoing::Frame(b) => (TYPE_MESSAGE, b),
        Outgoing::Pong(b) => (TYPE_PONG, b),
    }
}

/// Appends the frames of `items` (headers included) to `buf`.
fn gather(items: impl Iterator<Item = Outgoing>, buf: &mut Vec<u8>) {
    for (kind, payload) in items.map(parts) {
        buf.extend_from_slice(&frame_header(kind, payload.len()));
        buf.extend_from_slice(&payload);
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> FrameWriter for RawWriter<W> {
    /// Gathers the batch, headers included, into one buffer written with one syscall
    /// where the socket takes it; a frame larger than `GATHER_MAX` is written from where
    /// it lies instead of being copied. The buffer lives only for the batch, so an idle
    /// session holds none. Small frames are gathered in a plain loop: an `.await` inside
    /// the loop made every frame pass through the future's state, which cost fan-out
    /// several percent.
    async fn send(&mut self, batch: &mut Vec<Outgoing>) -> io::Result<()> {
        let gathered = batch.iter().filter(|i| i.len() <= GATHER_MAX).map(|i| 4 + i.len()).sum();
        let mut buf = Vec::with_capacity(gathered);
        let mut rest = batch.drain(..).peekable();
        while rest.peek().is_some() {
            buf.clear();
            gather(std::iter::from_fn(|| rest.next_if(|i| i.len() <= GATHER_MAX)), &mut buf);
            if !buf.is_empty() {
                self.w.write_all(&buf).await?;
            }
            // The gathering stopped at a large frame, or at the end.
            if let Some((kind, large)) = rest.next().map(parts) {
                self.w.write_all(&frame_header(kind, large.len())).await?;
                self.w.write_all(&large).await?;
            }
        }
        drop(rest);
        self.w.flush().await
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.w.write_all(&frame_header(TYPE_PING, 0)).await?;
        self.w.flush().await
    }

    /// RawSocket has no close frame: the WAMP ABORT or GOODBYE said why.
    async fn close(mut self, _reason: CloseReason) {
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
