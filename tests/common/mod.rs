//! A small WAMP test client of our own, for edge cases stock clients cannot produce:
//! raw bytes, out-of-state messages, readers that stall, sockets dropped mid-call.
//! It speaks WebSocket (tokio-tungstenite) and RawSocket (TCP) with any serializer.

#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use switchyard::config::Config;
use switchyard::server::Server;
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Args, Dict, Message, Payload, Serializer, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a router on ephemeral ports with the default config adjusted by `tweak`.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        rawsocket: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    tweak(&mut cfg);
    Server::start(&cfg).await.expect("router starts")
}

enum Conn {
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    Raw(TcpStream),
}

pub struct Client {
    pub serializer: Serializer,
    conn: Conn,
    pub session: u64,
    /// WELCOME.Details of the session.
    pub welcome: Dict,
    next_request: u64,
}

impl Client {
    pub async fn ws(server: &Server, serializer: Serializer) -> Client {
        let mut req = server.websocket_url().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", serializer.subprotocol().parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
        assert_eq!(resp.headers()["sec-websocket-protocol"], serializer.subprotocol());
        Client { serializer, conn: Conn::Ws(Box::new(ws)), session: 0, welcome: Dict::new(), next_request: 0 }
    }

    /// RawSocket over TCP; `len_exp` is the client's maximum message length exponent.
    pub async fn raw(server: &Server, serializer: Serializer, len_exp: u8) -> Client {
        let (client, reply) = Client::raw_handshake(server, [0x7F, (len_exp << 4) | serializer.rawsocket_id(), 0, 0]).await;
        let client = client.expect("connection stays open");
        assert_eq!(reply[0], 0x7F);
        assert_eq!(reply[1] & 0x0F, serializer.rawsocket_id(), "handshake accepted");
        Client { serializer, ..client }
    }

    /// Sends a raw handshake and returns the reply (and the connection, if still open).
    pub async fn raw_handshake(server: &Server, request: [u8; 4]) -> (Option<Client>, [u8; 4]) {
        let mut tcp = TcpStream::connect(server.rawsocket.unwrap()).await.unwrap();
        tcp.write_all(&request).await.unwrap();
        let mut reply = [0u8; 4];
        tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut reply)).await.expect("handshake reply").unwrap();
        let c = Client { serializer: Serializer::Json, conn: Conn::Raw(tcp), session: 0, welcome: Dict::new(), next_request: 0 };
        (Some(c), reply)
    }

    /// Connects and joins `realm1` anonymously.
    pub async fn join_ws(server: &Server, serializer: Serializer) -> Client {
        let mut c = Client::ws(server, serializer).await;
        c.join("realm1", Dict::new()).await;
        c
    }

    pub async fn join(&mut self, realm: &str, mut details: Dict) {
        let roles = dict([
            ("publisher", Value::Dict(Dict::new())),
            ("subscriber", Value::Dict(Dict::new())),
            ("caller", Value::Dict(dict([("features", Value::Dict(dict([("progressive_call_results", true.into())])))]))),
            (
                "callee",
                Value::Dict(dict([(
                    "features",
                    Value::Dict(dict([("progressive_call_results", true.into()), ("call_canceling", true.into())])),
                )])),
            ),
        ]);
        details.entry("roles".into()).or_insert(Value::Dict(roles));
        self.send(&Message::Hello { realm: realm.into(), details }).await;
        match self.recv().await {
            Message::Welcome { session, details } => {
                self.session = session;
                self.welcome = details;
            }
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    pub fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    pub async fn send(&mut self, msg: &Message) {
        let frame = msg.encode(self.serializer).unwrap();
        self.send_bytes(&frame).await;
    }

    pub async fn send_bytes(&mut self, frame: &[u8]) {
        match &mut self.conn {
            Conn::Ws(ws) => {
                let m = if self.serializer.is_binary() {
                    WsMessage::Binary(Bytes::copy_from_slice(frame))
                } else {
                    WsMessage::Text(String::from_utf8_lossy(frame).into_owned().into())
                };
                ws.send(m).await.unwrap();
            }
            Conn::Raw(tcp) => {
                let len = frame.len();
                tcp.write_all(&[0, (len >> 16) as u8, (len >> 8) as u8, len as u8]).await.unwrap();
                tcp.write_all(frame).await.unwrap();
            }
        }
    }

    /// Writes bytes straight to the socket, past any framing: a RawSocket frame header
    /// and payload, or a WebSocket frame built by hand.
    pub async fn send_wire(&mut self, bytes: &[u8]) {
        let tcp = match &mut self.conn {
            Conn::Raw(tcp) => tcp,
            Conn::Ws(ws) => match ws.get_mut() {
                MaybeTlsStream::Plain(tcp) => tcp,
                _ => panic!("plain TCP only"),
            },
        };
        tcp.write_all(bytes).await.unwrap();
    }

    /// The close frame the router sent, as (code, reason); None if the connection ended
    /// without one (WebSocket only).
    pub async fn expect_ws_close(&mut self) -> Option<(u16, String)> {
        let Conn::Ws(ws) = &mut self.conn else { panic!("websocket only") };
        loop {
            match tokio::time::timeout(TIMEOUT, ws.next()).await.expect("close within the timeout") {
                Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next frame's bytes, or None when the connection closed.
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        tokio::time::timeout(TIMEOUT, self.recv_frame_inner()).await.expect("no frame within the timeout")
    }

    async fn recv_frame_inner(&mut self) -> Option<Bytes> {
        match &mut self.conn {
            Conn::Ws(ws) => loop {
                match ws.next().await? {
                    Ok(WsMessage::Text(t)) => return Some(Bytes::copy_from_slice(t.as_bytes())),
                    Ok(WsMessage::Binary(b)) => return Some(b),
                    Ok(WsMessage::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            },
            Conn::Raw(_) => loop {
                let (kind, payload) = self.recv_wire_inner().await?;
                match kind {
                    0 => return Some(payload),
                    1 => {
                        // Answer the router's keep-alive ping.
                        let mut pong = vec![2, 0, 0, 0];
                        pong[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
                        pong.extend_from_slice(&payload);
                        self.send_wire(&pong).await;
                    }
                    2 => continue,
                    t => panic!("unknown frame type {t}"),
                }
            },
        }
    }

    /// The next RawSocket frame as (type, payload), pings and pongs included.
    pub async fn recv_wire(&mut self) -> Option<(u8, Bytes)> {
        tokio::time::timeout(TIMEOUT, self.recv_wire_inner()).await.expect("no frame within the timeout")
    }

    async fn recv_wire_inner(&mut self) -> Option<(u8, Bytes)> {
        let Conn::Raw(tcp) = &mut self.conn else { panic!("raw only") };
        let mut head = [0u8; 4];
        tcp.read_exact(&mut head).await.ok()?;
        let len = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
        let mut buf = vec![0u8; len];
        tcp.read_exact(&mut buf).await.ok()?;
        Some((head[0], Bytes::from(buf)))
    }

    pub async fn recv(&mut self) -> Message {
        let frame = self.recv_frame().await.expect("connection closed while a message was expected");
        Message::decode(self.serializer, &frame).expect("router sent a decodable message")
    }

    /// Asserts the router closes the connection (after any frames it still sends).
    pub async fn expect_closed(&mut self) {
        if let Some(frame) = self.recv_frame().await {
            panic!("expected the connection to close, got {:?}", Message::decode(self.serializer, &frame));
        }
    }

    /// Receives ABORT and checks its reason; returns the details' message.
    pub async fn expect_abort(&mut self, reason: &str) -> String {
        match self.recv().await {
            Message::Abort { reason: r, details } => {
                assert_eq!(r, reason);
                details.get("message").and_then(Value::as_str).unwrap_or_default().to_owned()
            }
            other => panic!("expected ABORT {reason}, got {other:?}"),
        }
    }

    pub async fn subscribe(&mut self, topic: &str, options: Dict) -> u64 {
        let request = self.request();
        self.send(&Message::Subscribe { request, options, topic: topic.into() }).await;
        match self.recv().await {
            Message::Subscribed { request: r, subscription } if r == request => subscription,
            other => panic!("expected SUBSCRIBED, got {other:?}"),
        }
    }

    pub async fn register(&mut self, procedure: &str) -> u64 {
        let request = self.request();
        self.send(&Message::Register { request, options: Dict::new(), procedure: procedure.into() }).await;
        match self.recv().await {
            Message::Registered { request: r, registration } if r == request => registration,
            other => panic!("expected REGISTERED, got {other:?}"),
        }
    }

    pub async fn publish(&mut self, topic: &str, options: Dict, args: Vec<Value>) -> u64 {
        let request = self.request();
        let payload = self.args(args);
        self.send(&Message::Publish { request, options, topic: topic.into(), payload }).await;
        request
    }

    pub fn args(&self, args: Vec<Value>) -> Args {
        Args { args: Some(Payload::from_value(self.serializer, &Value::List(args))), kwargs: None }
    }

    pub async fn close(mut self) {
        if let Conn::Ws(ws) = &mut self.conn {
            let _ = WebSocketStream::close(ws, None).await;
        }
    }
}

/// Sends a CALL and returns its request id.
pub async fn call(c: &mut Client, procedure: &str, options: Dict, args: Vec<Value>) -> u64 {
    let request = c.request();
    let payload = c.args(args);
    c.send(&Message::Call { request, options, procedure: procedure.into(), payload }).await;
    request
}

/// Receives an INVOCATION: (request, details, payload).
pub async fn invocation(c: &mut Client) -> (u64, Dict, Args) {
    match c.recv().await {
        Message::Invocation { request, details, payload, .. } => (request, details, payload),
        other => panic!("expected INVOCATION, got {other:?}"),
    }
}

/// Receives the ERROR for CALL `request` and checks its URI; returns its payload.
pub async fn expect_error(c: &mut Client, request: u64, uri: &str) -> Args {
    expect_error_for(c, code::CALL, request, uri).await
}

/// Receives the ERROR for (`request_type`, `request`) and checks its URI.
pub async fn expect_error_for(c: &mut Client, request_type: u64, request: u64, uri: &str) -> Args {
    match c.recv().await {
        Message::Error { request_type: t, request: r, error, payload, .. } => {
            assert_eq!((t, r, error.as_str()), (request_type, request, uri));
            payload
        }
        other => panic!("expected ERROR {uri}, got {other:?}"),
    }
}

/// Decoded positional arguments of a message payload.
pub fn args_of(a: &Args) -> Vec<Value> {
    match &a.args {
        Some(p) => match p.to_value().unwrap() {
            Value::List(l) => l,
            other => panic!("args not a list: {other:?}"),
        },
        None => vec![],
    }
}

/// Reads a counter from the router's Prometheus text.
pub fn metric(server: &Server, name: &str) -> u64 {
    let text = server.router.metrics.render();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("switchyard_{name} ")) || l.starts_with(&format!("switchyard_{name}_total ")))
        .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}
