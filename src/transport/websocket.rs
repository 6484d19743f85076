//! WAMP over WebSocket on the HTTP port: subprotocol negotiation (`wamp.2.json` in text
//! frames, `wamp.2.msgpack` and `wamp.2.cbor` in binary frames), the message size
//! limit, small per-connection buffers, and batched writes (feed many, flush once).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{close_code, CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use super::{FrameReader, FrameWriter, Inbound, TransportError};
use crate::router::connection;
use crate::router::outbox::Outgoing;
use crate::router::session::ConnInfo;
use crate::router::Router;
use crate::wamp::Serializer;

/// tungstenite reads in chunks of this size; a small chunk keeps idle sessions cheap.
const READ_BUFFER: usize = 4 * 1024;
/// Frames are buffered up to this size before a write; `flush` writes the rest.
const WRITE_BUFFER: usize = 16 * 1024;

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

pub async fn upgrade(
    State(router): State<Arc<Router>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(serializer) = preferred_serializer(&headers) else {
        return (StatusCode::BAD_REQUEST, "no supported WAMP subprotocol: offer wamp.2.json, wamp.2.msgpack or wamp.2.cbor\n")
            .into_response();
    };
    let Some(admission) = router.admit() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "session limit reached\n").into_response();
    };
    let limit = router.limits.max_message_size;
    ws.protocols([serializer.subprotocol()])
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            let conn = ConnInfo { serializer, transport: "websocket", peer: peer.to_string(), max_outgoing: usize::MAX };
            let tracker = router.connections.clone();
            tracker.track_future(connection::serve(
                router,
                admission,
                conn,
                WsReader { stream },
                WsWriter { sink, binary: serializer.is_binary() },
            ))
        })
}

pub struct WsReader {
    stream: SplitStream<WebSocket>,
}

impl FrameReader for WsReader {
    async fn next(&mut self) -> Option<Result<Inbound, TransportError>> {
        let msg = match self.stream.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(map_error(e))),
        };
        // Either frame type is accepted whatever the serializer: the subprotocol, not
        // the frame type, says how to decode.
        Some(Ok(match msg {
            WsMessage::Text(t) => Inbound::Message(Bytes::from(t)),
            WsMessage::Binary(b) => Inbound::Message(b),
            WsMessage::Ping(_) | WsMessage::Pong(_) => Inbound::Alive,
            WsMessage::Close(_) => return None,
        }))
    }
}

fn map_error(e: axum::Error) -> TransportError {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { size, max_size })) => {
            TransportError::TooLarge { size: *size, limit: *max_size }
        }
        _ => TransportError::Protocol(inner.to_string()),
    }
}

pub struct WsWriter {
    sink: SplitSink<WebSocket, WsMessage>,
    binary: bool,
}

fn io_error(e: axum::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl FrameWriter for WsWriter {
    async fn send(&mut self, batch: &mut Vec<Outgoing>) -> io::Result<()> {
        for item in batch.drain(..) {
            let Outgoing::Frame(frame) = item else { continue };
            let msg = if self.binary {
                WsMessage::Binary(frame)
            } else {
                // JSON frames are produced by our encoder from UTF-8 text; validation is
                // the cheap safety net that keeps a bad frame from reaching a browser.
                match Utf8Bytes::try_from(frame) {
                    Ok(text) => WsMessage::Text(text),
                    Err(_) => {
                        tracing::error!("a JSON frame was not valid UTF-8; not sent");
                        continue;
                    }
                }
            };
            self.sink.feed(msg).await.map_err(io_error)?;
        }
        self.sink.flush().await.map_err(io_error)
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.sink.send(WsMessage::Ping(Bytes::new())).await.map_err(io_error)
    }

    /// A normal closure (1000): the WAMP session ended with GOODBYE or ABORT, which
    /// clients such as autobahn-js only treat as clean with this code.
    async fn close(mut self) {
        let frame = CloseFrame { code: close_code::NORMAL, reason: Utf8Bytes::from_static("") };
        let _ = self.sink.send(WsMessage::Close(Some(frame))).await;
        let _ = self.sink.close().await;
    }
}
