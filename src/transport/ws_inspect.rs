//! The bytes a WebSocket client sends, watched frame by frame on their way to
//! tungstenite, so that the inbound limits (`inbound.rs`) hold before tungstenite
//! buffers anything: tungstenite reserves a frame's whole announced length as soon as
//! it has parsed the header, so a header announcing 16 MiB would cost 16 MiB at once.
//!
//! The inspector parses each frame header as it passes and, before handing it on,
//! - refuses what a client must never send (RSV bits, unknown opcodes, unmasked frames,
//!   control frames over 125 bytes) with a precise error, and a message larger than the
//!   limit of the moment (small until the session is established);
//! - holds the header back, bytes and all, until a large frame's length is charged to
//!   the memory budget (waiting for it if need be);
//! - arms a deadline at a frame's first byte that holds until the message is complete.
//!
//! It is transparent otherwise: tungstenite reads exactly the bytes the client sent.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::inbound::{FrameClock, InboundLimits};
use crate::router::budget::INBOUND_FREE;

/// Why the inspector stopped a connection; travels inside an `io::Error` through
/// tungstenite, and `websocket.rs` takes it out again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundError {
    TooLarge { size: usize, limit: usize },
    Incomplete(Duration),
    Protocol(&'static str),
}

impl fmt::Display for InboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InboundError::TooLarge { size, limit } => write!(f, "message of {size} bytes exceeds the limit of {limit} bytes"),
            InboundError::Incomplete(after) => write!(f, "a message was not completed within {after:?}"),
            InboundError::Protocol(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for InboundError {}

fn io_error(e: InboundError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// A complete frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
}

/// Where the parser stands in the client's byte stream.
#[derive(Debug, Default)]
struct Parser {
    header: [u8; 14],
    /// Header bytes collected for the frame being started.
    have: usize,
    /// Payload bytes still to come of the current frame.
    remaining: u64,
    /// Data bytes of the message in progress (over its fragments).
    message: u64,
    /// A fragmented data message has begun and not ended.
    fragmented: bool,
    /// The frame whose payload is passing ends its message.
    ends_message: bool,
}

/// What scanning a slice found.
enum Scan {
    /// Every byte may pass.
    Pass,
    /// Bytes from `at` on must wait until `charge` bytes are charged; the parser has
    /// been set back to read that header again.
    Hold { at: usize, charge: usize },
}

/// Events the inspector acts on as the parser passes them.
#[derive(Default)]
struct Events {
    /// A message (or a control frame outside a message) was completed.
    idle: bool,
    message_done: bool,
}

impl Parser {
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let ext = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.header[1] & 0x80 != 0 { 4 } else { 0 }
    }

    fn parse_header(&self) -> Result<Header, InboundError> {
        let (b0, b1) = (self.header[0], self.header[1]);
        if b0 & 0x70 != 0 {
            return Err(InboundError::Protocol("reserved bits set in a frame header (no extension was agreed)"));
        }
        if b1 & 0x80 == 0 {
            return Err(InboundError::Protocol("unmasked frame from a client"));
        }
        let opcode = b0 & 0x0F;
        let len = match b1 & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap_or_default()),
            n => u64::from(n),
        };
        match opcode {
            0..=2 => {}
            8..=10 if len > 125 => return Err(InboundError::Protocol("control frame larger than 125 bytes")),
            8..=10 if b0 & 0x80 == 0 => return Err(InboundError::Protocol("fragmented control frame")),
            8..=10 => {}
            _ => return Err(InboundError::Protocol("unknown opcode")),
        }
        Ok(Header { fin: b0 & 0x80 != 0, opcode, len })
    }

    /// Scans `data`, the next bytes of the stream; `approved` says the header about to
    /// complete has been charged already. `limit` is the message size limit of the moment.
    fn scan(&mut self, data: &[u8], limit: usize, approved: &mut bool, ev: &mut Events) -> Result<Scan, InboundError> {
        let mut i = 0;
        while i < data.len() {
            if self.remaining > 0 {
                let n = (self.remaining.min((data.len() - i) as u64)) as usize;
                self.remaining -= n as u64;
                i += n;
                if self.remaining == 0 {
                    self.frame_done(ev);
                }
                continue;
            }
            // A header byte.
            let started_here = i;
            let had = self.have;
            while i < data.len() && self.have < self.header_len() {
                self.header[self.have] = data[i];
                self.have += 1;
                i += 1;
            }
            if self.have < self.header_len() {
                break;
            }
            let h = self.parse_header()?;
            let data_frame = h.opcode <= 2;
            if data_frame {
                match (h.opcode, self.fragmented) {
                    (0, false) => return Err(InboundError::Protocol("continuation frame without a message to continue")),
                    (1 | 2, true) => return Err(InboundError::Protocol("new message while a fragmented one is incomplete")),
                    _ => {}
                }
                let message = self.message.saturating_add(h.len);
                if message > limit as u64 {
                    return Err(InboundError::TooLarge { size: usize::try_from(message).unwrap_or(usize::MAX), limit });
                }
                if message > INBOUND_FREE as u64 && h.len > 0 && !*approved {
                    // Set back to read this header again once it is charged.
                    self.have = had;
                    let at = if had == 0 { started_here } else { 0 };
                    return Ok(Scan::Hold { at, charge: h.len as usize });
                }
                *approved = false;
                self.message = message;
                self.fragmented = !h.fin;
            }
            self.have = 0;
            self.remaining = h.len;
            self.ends_message = data_frame && h.fin;
            if h.len == 0 {
                self.frame_done(ev);
            }
        }
        Ok(Scan::Pass)
    }

    fn frame_done(&mut self, ev: &mut Events) {
        if self.ends_message {
            self.message = 0;
            ev.message_done = true;
        }
        if !self.fragmented {
            ev.idle = true;
        }
    }
}

type Charging = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Inspected<S> {
    inner: S,
    limits: InboundLimits,
    parser: Parser,
    /// Bytes read but held back: they start with a header waiting for its charge.
    held: BytesMut,
    /// The charge being waited for, and its size.
    charging: Option<(Charging, usize)>,
    /// The held header has been charged and may pass.
    approved: bool,
    /// Runs from a message's first byte until it is complete.
    clock: FrameClock,
}

impl<S> Inspected<S> {
    pub fn new(inner: S, limits: InboundLimits) -> Inspected<S> {
        let clock = limits.clock();
        Inspected { inner, limits, parser: Parser::default(), held: BytesMut::new(), charging: None, approved: false, clock }
    }

    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        self.clock.poll_expired(cx).is_ready()
    }

    fn incomplete(&self) -> io::Error {
        io_error(InboundError::Incomplete(self.limits.frame_timeout))
    }

    /// True while a frame or a fragmented message is incomplete.
    fn mid_message(&self) -> bool {
        self.parser.have > 0 || self.parser.remaining > 0 || self.parser.fragmented
    }

    /// Acts on what the parser passed. The deadline runs from the first byte of a
    /// message (or control frame) to its last: a message completed clears it, and one
    /// begun after it, in the same bytes, gets a fresh one.
    fn after(&mut self, ev: Events) {
        if ev.message_done {
            // tungstenite now holds the message and the router takes it next; from here
            // on its memory is the router's to account for.
            self.limits.release();
        }
        match (ev.idle, self.mid_message()) {
            (true, true) => self.clock.restart(),
            (true, false) => self.clock.end(),
            (false, true) => self.clock.begin(),
            (false, false) => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inspected<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some((charge, n)) = this.charging.as_mut() {
            if charge.as_mut().poll(cx).is_pending() {
                return if this.deadline_passed(cx) { Poll::Ready(Err(this.incomplete())) } else { Poll::Pending };
            }
            let n = *n;
            this.limits.charged(n);
            this.charging = None;
            this.approved = true;
        }
        let before = buf.filled().len();
        if this.held.is_empty() {
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Pending => {
                    return if this.deadline_passed(cx) { Poll::Ready(Err(this.incomplete())) } else { Poll::Pending };
                }
                Poll::Ready(r) => r?,
            }
        } else {
            let n = this.held.len().min(buf.remaining());
            buf.put_slice(&this.held[..n]);
            this.held.advance(n);
        }
        let mut ev = Events::default();
        let limit = this.limits.limit();
        let scan = this.parser.scan(&buf.filled()[before..], limit, &mut this.approved, &mut ev).map_err(io_error)?;
        this.after(ev);
        if let Scan::Hold { at, charge } = scan {
            let cut = before + at;
            let mut held = BytesMut::from(&buf.filled()[cut..]);
            held.extend_from_slice(&this.held);
            this.held = held;
            buf.set_filled(cut);
            this.charging = Some((Box::pin(this.limits.charge(charge)), charge));
            // The held frame has begun, though the parser was set back before it.
            this.clock.begin();
            if buf.filled().len() == before {
                // Nothing may pass yet: wait for the charge (this registers the waker).
                return self.poll_read(cx, buf);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inspected<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}
