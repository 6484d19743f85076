//! Transports: WebSocket (with HTTP on the same port, the HTTP bridge among it) and
//! RawSocket (TCP and Unix), each TCP listener optionally over TLS (`tls`).
//! Each accepts connections through the router's admission gate (`listener`), enforces
//! the read limits of `inbound`, and turns its socket into a `FrameReader` and a
//! `FrameWriter` (`router::frames`); the router never sees a socket, and transport
//! differences end here.

pub mod fd_limit;
pub mod http;
pub mod http_bridge;
pub mod http_conn;
pub mod inbound;
pub mod listener;
pub mod rawsocket;
pub mod tls;
pub mod websocket;
pub mod workbench;
pub mod ws_inspect;

pub use crate::router::frames::{CloseReason, FrameReader, FrameWriter, Inbound, TransportError};
