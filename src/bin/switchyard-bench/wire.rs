//! Byte-level WAMP peers for the `hostile` workload. The regular client (`conn`) can only
//! send whole, well-formed frames and reads everything it is sent; an attacker must do
//! what a well-behaved client never does: announce a frame and send half of it, send a
//! PING before HELLO, stop reading, shrink its receive buffer. So this module owns the
//! socket itself and writes frame headers and payload bytes by hand, for RawSocket
//! (4-octet headers) and for WebSocket (masked client frames, RFC 6455 §5.2, after a
//! normal tokio-tungstenite upgrade whose stream it takes back with `into_inner`).
//! It also reads what the router sends back, frame by frame, so the workload can say
//! what the attacker received before its connection ended.

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Payload bytes written per `write_all`: a half-sent 16 MiB frame is streamed from one
/// small buffer instead of allocating it in the generator (48 attackers × 8 MiB would
/// otherwise cost the generator 384 MiB).
const CHUNK: usize = 64 * 1024;

/// RawSocket frame types (low three bits of the first header octet).
pub const RAW_MESSAGE: u8 = 0;
pub const RAW_PING: u8 = 1;

/// How frames are put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    RawSocket,
    WebSocket,
}

/// One thing read from the router.
#[derive(Debug)]
pub enum Event {
    /// A WAMP message (RawSocket type 0, WebSocket text or binary).
    Message(Bytes),
    /// A RawSocket PING or WebSocket ping, with its payload length.
    Ping(usize),
    /// A RawSocket PONG or WebSocket pong, with its payload length.
    Pong(usize),
    /// A WebSocket close frame and its status code, if it had one.
    Close(Option<u16>),
    /// The router closed the connection (read returned 0).
    Eof,
    /// Reading failed (typically: connection reset by the router).
    Error(String),
}

pub struct Peer {
    stream: TcpStream,
    framing: Framing,
    pub serializer: Serializer,
    buf: BytesMut,
    /// This end of the TCP connection, to find the router's end in /proc/net/tcp.
    pub local: SocketAddr,
}

/// A TCP connection with TCP_NODELAY and, when asked, a small receive buffer (set before
/// connecting so the window the router sees is small from the first segment).
pub async fn tcp(addr: SocketAddr, recv_buffer: Option<u32>) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| e.to_string())?;
    if let Some(n) = recv_buffer {
        socket.set_recv_buffer_size(n).map_err(|e| format!("SO_RCVBUF {n}: {e}"))?;
    }
    let stream = socket.connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

impl Peer {
    /// Connects and completes the RawSocket handshake, announcing a maximum message
    /// length of 2^(9 + `exponent`) bytes (15: 16 MiB). A refused handshake is an error
    /// naming the router's error code.
    pub async fn rawsocket(addr: SocketAddr, serializer: Serializer, exponent: u8, recv_buffer: Option<u32>) -> Result<Peer, String> {
        let mut stream = tcp(addr, recv_buffer).await?;
        let id = serializer.rawsocket_id();
        stream.write_all(&[0x7F, (exponent.min(15) << 4) | id, 0, 0]).await.map_err(|e| format!("RawSocket handshake: {e}"))?;
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await.map_err(|e| format!("RawSocket handshake reply: {e}"))?;
        if reply[0] != 0x7F {
            return Err(format!("RawSocket handshake: bad magic byte {:#04x}", reply[0]));
        }
        if reply[1] & 0x0F != id {
            return Err(format!("RawSocket handshake error {} ({})", reply[1] >> 4, handshake_error_name(reply[1] >> 4)));
        }
        let local = stream.local_addr().map_err(|e| e.to_string())?;
        Ok(Peer { stream, framing: Framing::RawSocket, serializer, buf: BytesMut::with_capacity(4096), local })
    }

    /// Connects and upgrades to WebSocket with subprotocol `wamp.2.<serializer>`, then
    /// keeps only the TCP stream: from here on frames are written and parsed by hand.
    pub async fn websocket(addr: SocketAddr, url: &str, serializer: Serializer, recv_buffer: Option<u32>) -> Result<Peer, String> {
        let stream = tcp(addr, recv_buffer).await?;
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", serializer.subprotocol().parse().map_err(|_| "bad subprotocol")?);
        let (ws, resp) = tokio_tungstenite::client_async(req, stream).await.map_err(|e| format!("WebSocket handshake with {url}: {e}"))?;
        let proto = resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
        if proto != serializer.subprotocol() {
            return Err(format!("router chose subprotocol {proto:?}, asked for {}", serializer.subprotocol()));
        }
        // The router sends nothing before HELLO, so tungstenite has buffered nothing we
        // would lose here.
        let stream = ws.into_inner();
        let local = stream.local_addr().map_err(|e| e.to_string())?;
        Ok(Peer { stream, framing: Framing::WebSocket, serializer, buf: BytesMut::with_capacity(4096), local })
    }

    /// HELLO with the four client roles, then the first message back must be WELCOME.
    pub async fn join(&mut self, realm: &str) -> Result<u64, String> {
        let roles = ["publisher", "subscriber", "caller", "callee"].map(|r| (r, Value::Dict(Dict::new())));
        let details = dict([("roles", Value::Dict(dict(roles)))]);
        self.send(&Message::Hello { realm: realm.to_owned(), details }).await?;
        loop {
            match self.next().await {
                Event::Message(m) => {
                    return match Message::decode(self.serializer, &m) {
                        Ok(Message::Welcome { session, .. }) => Ok(session),
                        Ok(Message::Abort { reason, .. }) => Err(format!("ABORT {reason}")),
                        Ok(other) => Err(format!("expected WELCOME, got {}", other.name())),
                        Err(e) => Err(format!("cannot decode the reply to HELLO: {e}")),
                    }
                }
                Event::Ping(_) | Event::Pong(_) => continue,
                other => return Err(format!("no WELCOME: {}", describe(self.serializer, &other))),
            }
        }
    }

    /// Sends one whole WAMP message.
    pub async fn send(&mut self, msg: &Message) -> Result<(), String> {
        let body = msg.encode(self.serializer).map_err(|e| format!("cannot encode {}: {e}", msg.name()))?;
        let key: [u8; 4] = rand::random();
        let mut frame = self.header(RAW_MESSAGE, body.len(), key);
        let start = frame.len();
        frame.extend_from_slice(&body);
        if self.framing == Framing::WebSocket {
            mask(&mut frame[start..], key);
        }
        self.stream.write_all(&frame).await.map_err(|e| format!("write: {e}"))
    }

    /// Writes the header of a frame announcing `announced` payload bytes, then only the
    /// first `sent` of them (zeros, masked for WebSocket). `raw_type` is the RawSocket
    /// frame type (message or PING); WebSocket frames are binary data frames.
    pub async fn send_partial(&mut self, raw_type: u8, announced: usize, sent: usize) -> Result<(), String> {
        let key: [u8; 4] = rand::random();
        let header = self.header(raw_type, announced, key);
        self.stream.write_all(&header).await.map_err(|e| format!("write: {e}"))?;
        // Zeros masked with `key` are the key repeated; CHUNK is a multiple of 4, so
        // every chunk starts at a mask offset of 0.
        let mut chunk = vec![0u8; CHUNK];
        if self.framing == Framing::WebSocket {
            mask(&mut chunk, key);
        }
        let mut left = sent.min(announced);
        while left > 0 {
            let n = left.min(CHUNK);
            self.stream.write_all(&chunk[..n]).await.map_err(|e| format!("write after {} bytes: {e}", sent - left))?;
            left -= n;
        }
        self.stream.flush().await.map_err(|e| format!("flush: {e}"))
    }

    fn header(&self, raw_type: u8, len: usize, key: [u8; 4]) -> Vec<u8> {
        match self.framing {
            Framing::RawSocket => raw_header(raw_type, len).to_vec(),
            // The WAMP subprotocol decides how a frame is decoded, so binary data frames
            // are fine for JSON too as far as the router is concerned; text frames keep
            // JSON peers well-formed for any other router.
            Framing::WebSocket => {
                let opcode = if self.serializer.is_binary() || raw_type != RAW_MESSAGE { 0x2 } else { 0x1 };
                ws_header(opcode, len, key)
            }
        }
    }

    /// The next frame from the router, or how the connection ended.
    pub async fn next(&mut self) -> Event {
        loop {
            match self.parse() {
                Ok(Some(e)) => return e,
                Ok(None) => {}
                Err(e) => return Event::Error(e),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Event::Eof,
                Ok(_) => {}
                Err(e) => return Event::Error(e.to_string()),
            }
        }
    }

    /// Bytes received of a frame not yet complete (what a peer got of a large frame
    /// before its connection ended).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn parse(&mut self) -> Result<Option<Event>, String> {
        match self.framing {
            Framing::RawSocket => parse_raw(&mut self.buf),
            Framing::WebSocket => parse_ws(&mut self.buf),
        }
    }
}

/// A RawSocket header. Lengths up to 2^24 − 1 fit the three length octets; exactly 2^24
/// (the largest the handshake can announce) uses bit 3 of the first octet, as
/// Switchyard's codec does.
pub fn raw_header(kind: u8, len: usize) -> [u8; 4] {
    let high = if len >= 1 << 24 { 0x08 } else { 0 };
    [kind | high, (len >> 16) as u8, (len >> 8) as u8, len as u8]
}

/// A masked client frame header (FIN set) with the 7-, 16- or 64-bit length form.
pub fn ws_header(opcode: u8, len: usize, key: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xFFFF => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h.extend_from_slice(&key);
    h
}

fn mask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

fn parse_raw(buf: &mut BytesMut) -> Result<Option<Event>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let extra = if buf[0] & 0x08 != 0 { 1usize << 24 } else { 0 };
    let len = extra | (usize::from(buf[1]) << 16) | (usize::from(buf[2]) << 8) | usize::from(buf[3]);
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    let kind = buf[0] & 0x07;
    buf.advance(4);
    let payload = buf.split_to(len).freeze();
    Ok(Some(match kind {
        0 => Event::Message(payload),
        1 => Event::Ping(len),
        2 => Event::Pong(len),
        t => return Err(format!("RawSocket frame of unknown type {t}")),
    }))
}

/// Server frames are unmasked (a masked one is unmasked anyway); fragmented messages
/// are not reassembled, since the router does not fragment.
fn parse_ws(buf: &mut BytesMut) -> Result<Option<Event>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
        126 | 127 => return Ok(None),
        n => (usize::from(n), 2),
    };
    let key = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        at += 4;
        Some([buf[at - 4], buf[at - 3], buf[at - 2], buf[at - 1]])
    } else {
        None
    };
    if buf.len() < at + len {
        buf.reserve(at + len - buf.len());
        return Ok(None);
    }
    buf.advance(at);
    let mut payload = buf.split_to(len);
    if let Some(k) = key {
        mask(&mut payload, k);
    }
    Ok(Some(match opcode {
        0x0..=0x2 => Event::Message(payload.freeze()),
        0x8 => Event::Close((len >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))),
        0x9 => Event::Ping(len),
        0xA => Event::Pong(len),
        op => return Err(format!("WebSocket frame with opcode {op:#x}")),
    }))
}

/// The RawSocket handshake error codes (upper nibble of the reply's second octet).
fn handshake_error_name(code: u8) -> &'static str {
    match code {
        0 => "illegal",
        1 => "serializer unsupported",
        2 => "maximum message length unacceptable",
        3 => "use of reserved bits",
        4 => "maximum connection count reached",
        _ => "unknown",
    }
}

/// One event in a few words: `ABORT wamp.error.protocol_violation`, `PING 4 B`, `EOF`…
pub fn describe(serializer: Serializer, e: &Event) -> String {
    match e {
        Event::Message(m) => match Message::decode(serializer, m) {
            Ok(Message::Abort { reason, .. }) => format!("ABORT {reason}"),
            Ok(Message::Goodbye { reason, .. }) => format!("GOODBYE {reason}"),
            Ok(Message::Error { error, .. }) => format!("ERROR {error}"),
            Ok(other) => other.name().to_owned(),
            Err(_) => format!("undecodable message of {} B", m.len()),
        },
        Event::Ping(n) => format!("ping {n} B"),
        Event::Pong(n) => format!("pong {n} B"),
        Event::Close(Some(code)) => format!("WebSocket close {code}"),
        Event::Close(None) => "WebSocket close (no code)".into(),
        Event::Eof => "EOF".into(),
        Event::Error(e) => format!("read error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(raw_header(RAW_PING, 0xFF_FFFF), [0x01, 0xFF, 0xFF, 0xFF]);
        assert_eq!(raw_header(RAW_MESSAGE, 1 << 24), [0x08, 0, 0, 0]);
        assert_eq!(ws_header(0x2, 5, [1, 2, 3, 4]), vec![0x82, 0x85, 1, 2, 3, 4]);
        assert_eq!(ws_header(0x2, 1 << 24, [0; 4])[..10], [0x82, 0xFF, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn parses_server_frames() {
        let mut b = BytesMut::from(&[0x89u8, 0x00, 0x88, 0x02, 0x03, 0xE8, 0x02, 0x01][..]);
        assert!(matches!(parse_ws(&mut b), Ok(Some(Event::Ping(0)))));
        assert!(matches!(parse_ws(&mut b), Ok(Some(Event::Close(Some(1000))))));
        assert!(matches!(parse_ws(&mut b), Ok(None)));
        let mut r = BytesMut::from(&[0x02u8, 0, 0, 1, 9, 0x01, 0, 0][..]);
        assert!(matches!(parse_raw(&mut r), Ok(Some(Event::Pong(1)))));
        assert!(matches!(parse_raw(&mut r), Ok(None)));
    }
}
