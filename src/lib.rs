//! Switchyard: a WAMP v2 router.
//!
//! - [`wamp`]: the protocol (messages, codecs, URIs, ids); pure, no I/O.
//! - [`transport`]: WebSocket and RawSocket; turns bytes into frames and back.
//! - [`router`]: realms, sessions, the broker and the dealer.
//! - [`auth`]: who a peer is (authenticators) and what it may do (authorizer).
//! - [`replay`]: the replay store (positions, history, durable topics).
//! - [`config`]: the configuration file and its checks.
//! - [`pg`]: what the PostgreSQL-backed parts share (which errors mean unreachable).
//! - [`trim`]: giving freed memory back to the operating system.

pub mod config;
pub mod wamp;
pub mod auth;
pub mod pg;
pub mod replay;
pub mod router;
pub mod server;
pub mod transport;
pub mod trim;
