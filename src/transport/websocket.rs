//! WAMP over WebSocket on the HTTP port: the upgrade (RFC 6455 §4.2, with subprotocol
//! negotiation: `wamp.2.json` in text frames, `wamp.2.msgpack` and `wamp.2.cbor` in
//! binary frames), the inbound limits through `ws_inspect.rs` under tungstenite,
//! batched writes (feed many, flush once), and close codes that say why (1002 for a
//! framing violation, 1007 for a text frame that is not UTF-8).
//!
//! The upgrade is done here rather than with axum's `WebSocketUpgrade`, which gives no
//! way to put the inspector between the socket and tungstenite.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message as WsMessage, Utf8Bytes};

use super::http_conn::Connection;
use super::inbound::InboundLimits;
use super::ws_inspect::{InboundError, Inspected};
use super::{CloseReason, FrameReader, FrameWriter, Inbound, TransportError};
use crate::router::admission::Admission;
use crate::router::connection;
use crate::router::frames::ConnInfo;
use crate::router::outbox::Outgoing;
use crate::router::Router;
use crate::wamp::Serializer;

/// tungstenite reads in chunks of this size; a small chunk keeps idle sessions cheap.
const READ_BUFFER: usize = 4 * 1024;
/// Frames are buffered up to this size before a write; `flush` writes the rest.
const WRITE_BUFFER: usize = 16 * 1024;

type Io = Inspected<TokioIo<hyper::upgrade::Upgraded>>;

/// The client's most preferred subprotocol that we speak (its list is in preference
/// order, RFC 6455 §4.1).
fn preferred_serializer(headers: &HeaderMap) -> Option<Serializer> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| Serializer::from_subprotocol(p.trim()))
}

/// True when header `name` holds `token` in its comma-separated list (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

pub async fn upgrade(State(router): State<Arc<Router>>, mut req: Request) -> Response {
    let headers = req.headers();
    if !has_token(headers, header::UPGRADE, "websocket") || !has_token(headers, header::CONNECTION, "upgrade") {
        return refuse(StatusCode::BAD_REQUEST, "this is a WAMP WebSocket endpoint: send a WebSocket upgrade\n");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        let mut r = refuse(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        r.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Some(serializer) = preferred_serializer(headers) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "no supported WAMP subprotocol: offer wamp.2.json, wamp.2.msgpack or wamp.2.cbor\n",
        );
    };
    let Some(conn) = req.extensions().get::<Connection>().cloned() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "no connection context\n");
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return refuse(StatusCode::BAD_REQUEST, "this connection cannot be upgraded\n");
    };
    let taken = conn.admission.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(admission) = taken else {
        return refuse(StatusCode::BAD_REQUEST, "this connection was upgraded already\n");
    };
    let tracker = router.connections.clone();
    tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(router, admission, serializer, conn.peer, conn.secure, upgraded).await,
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(serializer.subprotocol()));
    response
}

async fn run(
    router: Arc<Router>,
    admission: Admission,
    serializer: Serializer,
    peer: String,
    secure: bool,
    upgraded: hyper::upgrade::Upgraded,
) {
    let max = router.limits.max_message_size;
    let limits = InboundLimits::new(&router, admission.established_flag(), max);
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER);
    let ws = WebSocketStream::from_raw_socket(Inspected::new(TokioIo::new(upgraded), limits), Role::Server, Some(config)).await;
    let (sink, stream) = ws.split();
    let conn = ConnInfo { serializer, transport: "websocket", secure, peer, max_outgoing: usize::MAX };
    connection::serve(router, admission, conn, WsReader { stream }, WsWriter { sink, binary: serializer.is_binary() }).await;
}

pub struct WsReader {
    stream: SplitStream<WebSocketStream<Io>>,
}

impl FrameReader for WsReader {
    async fn next(&mut self) -> Option<Result<Inbound, TransportError>> {
        let msg = match self.stream.next().await? {
            Ok(m) => m,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return None,
            Err(e) => return Some(Err(map_error(e))),
        };
        // Either frame type is accepted whatever the serializer: the subprotocol, not
        // the frame type, says how to decode.
        Some(Ok(match msg {
            WsMessage::Text(t) => Inbound::Message(Bytes::from(t)),
            WsMessage::Binary(b) => Inbound::Message(b),
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => Inbound::Alive,
            WsMessage::Close(_) => return None,
        }))
    }
}

fn map_error(e: tungstenite::Error) -> TransportError {
    use tungstenite::error::CapacityError;
    match e {
        tungstenite::Error::Io(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<InboundError>()) {
            Some(InboundError::TooLarge { size, limit }) => TransportError::TooLarge { size: *size, limit: *limit },
            Some(InboundError::Incomplete(after)) => TransportError::Incomplete(*after),
            Some(InboundError::Protocol(what)) => TransportError::Protocol((*what).to_owned()),
            None => TransportError::Io(io),
        },
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            TransportError::TooLarge { size, limit: max_size }
        }
        tungstenite::Error::Utf8(_) => TransportError::InvalidData("a text frame is not valid UTF-8".into()),
        tungstenite::Error::Protocol(p) => TransportError::Protocol(p.to_string()),
        other => TransportError::Io(io::Error::other(other.to_string())),
    }
}

pub struct WsWriter {
    sink: SplitSink<WebSocketStream<Io>, WsMessage>,
    binary: bool,
}

fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl FrameWriter for WsWriter {
    async fn send(&mut self, batch: &mut Vec<Outgoing>) -> io::Result<()> {
        for item in batch.drain(..) {
            let Outgoing::Frame(frame) = item else { continue };
            let msg = if self.binary {
                WsMessage::Binary(frame)
            } else {
                // A JSON frame is UTF-8 by construction: each JSON payload is checked
                // once where it enters (a peer's frame in wamp/json.rs, a durable row in
                // replay/durable/read.rs, the HTTP bridge's parsed body) and the encoder
                // writes only UTF-8. `Message::Text` would check it again here, once per
                // subscriber and over the whole event; a text frame made from the bytes
                // is the same frame on the wire without that pass. Every test run (debug
                // builds) still checks each frame.
                debug_assert!(std::str::from_utf8(&frame).is_ok(), "a JSON frame is not UTF-8");
                WsMessage::Frame(Frame::message(frame, OpCode::Data(OpData::Text), true))
            };
            self.sink.feed(msg).await.map_err(io_error)?;
        }
        self.sink.flush().await.map_err(io_error)
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.sink.send(WsMessage::Ping(Bytes::new())).await.map_err(io_error)
    }

    /// 1000 when the WAMP session ended (GOODBYE or ABORT said why, and clients such as
    /// autobahn-js only treat 1000 as clean); 1002 or 1007 with the reason when the peer
    /// broke the WebSocket protocol itself.
    async fn close(mut self, reason: CloseReason) {
        let (code, why) = match reason {
            CloseReason::Normal => (CloseCode::Normal, String::new()),
            CloseReason::ProtocolError(why) => (CloseCode::Protocol, why),
            CloseReason::InvalidData(why) => (CloseCode::Invalid, why),
        };
        // A close reason is at most 123 bytes (RFC 6455 §5.5).
        let why = truncate(&why, 123);
        let frame = CloseFrame { code, reason: Utf8Bytes::from(why.to_owned()) };
        let _ = self.sink.send(WsMessage::Close(Some(frame))).await;
        let _ = self.sink.close().await;
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
