//! Transports of the load generator: WAMP over WebSocket (tokio-tungstenite, subprotocol
//! `wamp.2.<serializer>`) and over RawSocket TCP (4-byte handshake, 4-byte frame
//! headers). A connection is split in two: a `Sender` that queues encoded frames to a
//! writer task (which batches whatever is queued into one flush), and a `Receiver` that
//! yields whole WAMP frames. `peek_type` reads a frame's message type without decoding
//! it, so subscribers that only count events stay cheap.

use std::io;
use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchyard::wamp::{Message, Serializer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Frames queued to the writer in one go before it flushes.
const MAX_BATCH: usize = 256;

/// Where the router listens.
#[derive(Clone, Debug)]
pub enum Target {
    WebSocket { url: String, addr: SocketAddr },
    RawSocket { addr: SocketAddr },
}

impl Target {
    /// Resolves the address once, so thousands of sessions do not each look it up.
    pub async fn resolve(url: &str, rawsocket: Option<&str>) -> Result<Target, String> {
        if let Some(raw) = rawsocket {
            let addr = tokio::net::lookup_host(raw)
                .await
                .map_err(|e| format!("--rawsocket {raw}: {e}"))?
                .next()
                .ok_or_else(|| format!("--rawsocket {raw}: no address"))?;
            return Ok(Target::RawSocket { addr });
        }
        let req = url.into_client_request().map_err(|e| format!("--url {url}: {e}"))?;
        let uri = req.uri();
        if uri.scheme_str() != Some("ws") {
            return Err(format!("--url {url}: only ws:// is supported (loopback benchmarks, no TLS)"));
        }
        let host = uri.host().ok_or_else(|| format!("--url {url}: no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("--url {url}: {e}"))?
            .next()
            .ok_or_else(|| format!("--url {url}: no address"))?;
        Ok(Target::WebSocket { url: url.to_owned(), addr })
    }

    pub fn transport(&self) -> &'static str {
        match self {
            Target::WebSocket { .. } => "websocket",
            Target::RawSocket { .. } => "rawsocket",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::WebSocket { url, .. } => url.clone(),
            Target::RawSocket { addr } => format!("rawsocket://{addr}"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::WebSocket { addr, .. } | Target::RawSocket { addr } => *addr,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ConnectOptions {
    pub serializer: Serializer,
    /// Local address to bind before connecting (spreads thousands of sessions over
    /// several 127.0.0.x source addresses); `None`: the kernel picks.
    pub source: Option<IpAddr>,
    /// Socket read buffer of this client (small for idle sessions).
    pub read_buffer: usize,
}

pub enum Outgoing {
    Frame(Bytes),
    Pong(Bytes),
}

/// Queues frames to the connection's writer task. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Outgoing>,
    pub serializer: Serializer,
}

impl Sender {
    pub fn send(&self, msg: &Message) -> Result<(), String> {
        let frame = msg.encode(self.serializer).map_err(|e| format!("cannot encode {}: {e}", msg.name()))?;
        self.send_frame(frame)
    }

    pub fn send_frame(&self, frame: Bytes) -> Result<(), String> {
        self.tx.send(Outgoing::Frame(frame)).map_err(|_| "connection closed".to_owned())
    }
}

/// The reading half: whole WAMP frames, in order.
pub enum Receiver {
    Ws(SplitStream<WebSocketStream<TcpStream>>),
    Raw { reader: BufReader<OwnedReadHalf>, pongs: mpsc::UnboundedSender<Outgoing> },
}

impl Receiver {
    /// The next WAMP frame; `Ok(None)` once the router closed the connection.
    pub async fn next(&mut self) -> io::Result<Option<Bytes>> {
        match self {
            Receiver::Ws(stream) => loop {
                match stream.next().await {
                    None => return Ok(None),
                    Some(Ok(WsMessage::Text(t))) => return Ok(Some(Bytes::from(t))),
                    Some(Ok(WsMessage::Binary(b))) => return Ok(Some(b)),
                    Some(Ok(WsMessage::Close(_))) => return Ok(None),
                    Some(Ok(_)) => continue, // ping/pong: tungstenite answers pings itself
                    Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                }
            },
            Receiver::Raw { reader, pongs } => loop {
                let mut head = [0u8; 4];
                match reader.read_exact(&mut head).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let len = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
                let len = if head[0] & 0x08 != 0 && len == 0 { 1 << 24 } else { len };
                let mut buf = BytesMut::zeroed(len);
                reader.read_exact(&mut buf).await?;
                match head[0] & 0x07 {
                    0 => return Ok(Some(buf.freeze())),
                    1 => {
                        let _ = pongs.send(Outgoing::Pong(buf.freeze()));
                    }
                    2 => {}
                    t => return Err(io::Error::other(format!("RawSocket frame of unknown type {t}"))),
                }
            },
        }
    }
}

async fn tcp_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens a transport connection (no WAMP session yet).
pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<(Sender, Receiver), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sender = Sender { tx: tx.clone(), serializer: opts.serializer };
    match target {
        Target::WebSocket { url, addr } => {
            let tcp = tcp_connect(*addr, opts.source).await.map_err(|e| format!("connect {addr}: {e}"))?;
            let mut req = url.as_str().into_client_request().map_err(|e| e.to_string())?;
            req.headers_mut().insert("Sec-WebSocket-Protocol", opts.serializer.subprotocol().parse().unwrap());
            let config = WebSocketConfig::default().read_buffer_size(opts.read_buffer).max_message_size(Some(64 << 20));
            let (ws, resp) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config))
                .await
                .map_err(|e| format!("WebSocket handshake with {url}: {e}"))?;
            let proto = resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
            if proto != opts.serializer.subprotocol() {
                return Err(format!("router chose subprotocol {proto:?}, asked for {}", opts.serializer.subprotocol()));
            }
            let (sink, stream) = ws.split();
            tokio::spawn(ws_writer(sink, rx, opts.serializer.is_binary()));
            Ok((sender, Receiver::Ws(stream)))
        }
        Target::RawSocket { addr } => {
            let mut tcp = tcp_connect(*addr, opts.source).await.map_err(|e| format!("connect {addr}: {e}"))?;
            let id = opts.serializer.rawsocket_id();
            tcp.write_all(&[0x7F, 0xF0 | id, 0, 0]).await.map_err(|e| format!("RawSocket handshake: {e}"))?;
            let mut reply = [0u8; 4];
            tcp.read_exact(&mut reply).await.map_err(|e| format!("RawSocket handshake reply: {e}"))?;
            if reply[0] != 0x7F {
                return Err(format!("RawSocket handshake: bad magic byte {:#04x}", reply[0]));
            }
            if reply[1] & 0x0F != id {
                return Err(format!("RawSocket handshake refused: error {}", reply[1] >> 4));
            }
            let (r, w) = tcp.into_split();
            tokio::spawn(raw_writer(w, rx));
            Ok((sender, Receiver::Raw { reader: BufReader::with_capacity(opts.read_buffer, r), pongs: tx }))
        }
    }
}

async fn ws_writer(mut sink: SplitSink<WebSocketStream<TcpStream>, WsMessage>, mut rx: mpsc::UnboundedReceiver<Outgoing>, binary: bool) {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(item) = next.take() {
            if let Outgoing::Frame(frame) = item {
                let msg = if binary {
                    WsMessage::Binary(frame)
                } else {
                    match Utf8Bytes::try_from(frame) {
                        Ok(t) => WsMessage::Text(t),
                        Err(_) => continue,
                    }
                };
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
            n += 1;
            if n < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

async fn raw_writer(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut buf = Vec::new();
    while let Some(first) = rx.recv().await {
        buf.clear();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(item) = next.take() {
            let (kind, payload) = match item {
                Outgoing::Frame(b) => (0u8, b),
                Outgoing::Pong(b) => (2u8, b),
            };
            let len = payload.len();
            buf.extend_from_slice(&[kind, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
            buf.extend_from_slice(&payload);
            n += 1;
            if n < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if w.write_all(&buf).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// The message type code of an encoded WAMP frame, read from its first bytes without
/// decoding the rest; `None` when the frame does not start like a WAMP message.
pub fn peek_type(serializer: Serializer, b: &[u8]) -> Option<u64> {
    match serializer {
        Serializer::Json => {
            let mut i = 0;
            while b.get(i)?.is_ascii_whitespace() {
                i += 1;
            }
            if b[i] != b'[' {
                return None;
            }
            i += 1;
            while b.get(i)?.is_ascii_whitespace() {
                i += 1;
            }
            let mut v: u64 = 0;
            let start = i;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                i += 1;
            }
            (i > start).then_some(v)
        }
        Serializer::MsgPack => {
            let i = match *b.first()? {
                0x90..=0x9f => 1,
                0xdc => 3,
                0xdd => 5,
                _ => return None,
            };
            match *b.get(i)? {
                x @ 0x00..=0x7f => Some(u64::from(x)),
                0xcc => b.get(i + 1).map(|x| u64::from(*x)),
                _ => None,
            }
        }
        Serializer::Cbor => {
            let i = match *b.first()? {
                0x80..=0x97 => 1,
                0x98 => 2,
                0x99 => 3,
                0x9a => 5,
                0x9f => 1,
                _ => return None,
            };
            match *b.get(i)? {
                x @ 0x00..=0x17 => Some(u64::from(x)),
                0x18 => b.get(i + 1).map(|x| u64::from(*x)),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::wamp::{Args, Dict};

    #[test]
    fn peek_type_reads_the_code_of_every_serializer() {
        let m = Message::Event { subscription: 7, publication: 9, details: Dict::new(), payload: Args::NONE };
        for s in Serializer::ALL {
            assert_eq!(peek_type(s, &m.encode(s).unwrap()), Some(36), "{s:?}");
        }
        assert_eq!(peek_type(Serializer::Json, b" [ 70, 1]"), Some(70));
        assert_eq!(peek_type(Serializer::Json, b"{}"), None);
    }
}
