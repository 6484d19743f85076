//! The HTTP bridge on the WebSocket/HTTP port, for services that cannot hold a WAMP
//! session: `POST /publish` and `POST /call` with a JSON body, and `GET /openapi.json`,
//! their OpenAPI 3 description (docs/openapi.json, compiled in).
//!
//! This module is HTTP only: the credential, the body (bounded by `max_message_size`,
//! charged to the memory budget when large, read within `frame_timeout_ms`) and the
//! answer with its status. What a request does is the router's: it becomes a
//! short-lived router-side session (`router::bridge`) that publishes and calls exactly
//! as a WAMP session does. Every answer is counted in `/metrics` by endpoint and status
//! (`switchyard_http_bridge_requests_total`). See docs/http-bridge.md.

mod reply;
mod request;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::router::bridge::{BridgeError, BridgeSession, CallRequest, PublishRequest};
use crate::router::budget::{MemoryBudget, INBOUND_FREE};
use crate::router::error::WampError;
use crate::router::metrics::BridgeLabels;
use crate::router::Router;
use super::http_conn::Connection;

/// The OpenAPI 3 description of the bridge, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn publish(State(router): State<Arc<Router>>, req: Request) -> Response {
    handle(&router, "publish", req).await
}

pub async fn call(State(router): State<Arc<Router>>, req: Request) -> Response {
    handle(&router, "call", req).await
}

/// What a request asks for, once its body is read.
enum Asked {
    Publish(PublishRequest),
    Call(CallRequest),
}

async fn handle(router: &Arc<Router>, endpoint: &'static str, req: Request) -> Response {
    let conn = req.extensions().get::<Connection>().cloned();
    let _busy = conn.as_ref().map(|c| c.activity.begin());
    let response = match run(router, endpoint, req, conn.as_ref()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(endpoint, error = %e, uri = e.uri(), "HTTP bridge request refused");
            reply::failed(&e)
        }
    };
    let labels = BridgeLabels { endpoint, status: response.status().as_u16() };
    router.metrics.http_bridge_requests.get_or_create(&labels).inc();
    response
}

async fn run(router: &Arc<Router>, endpoint: &'static str, req: Request, conn: Option<&Connection>) -> Result<Response, BridgeError> {
    let (parts, body) = req.into_parts();
    let presented = request::credential(parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes))?;
    let Some((body, _charge)) = read_body(router, &parts.headers, body).await? else {
        return Ok(reply::body_timeout(router.limits.frame_timeout));
    };
    let (asked, realm) = match endpoint {
        "publish" => {
            let p = request::publish(&body)?;
            (Asked::Publish(p.request), p.realm)
        }
        _ => {
            let c = request::call(&body)?;
            (Asked::Call(c.request), c.realm)
        }
    };
    let realm = request::realm(realm, parts.uri.query());
    let peer = conn.map_or("unknown", |c| c.peer.as_str());
    let session = BridgeSession::open(router, realm.as_deref(), presented.credential(), peer).await?;
    if let Some(conn) = conn {
        establish(conn);
    }
    match asked {
        Asked::Publish(p) => session.publish(p).await.map(reply::published),
        Asked::Call(c) => session.call(c).await.map(|r| reply::result(&r)),
    }
}

/// A connection whose request authenticated is a bridge client's: from now on it is
/// kept open between requests and no longer evicted (`activity.rs`).
fn establish(conn: &Connection) {
    if conn.activity.mark_api() {
        if let Some(admission) = conn.admission.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            admission.establish();
        }
    }
}

/// Bytes of the memory budget held while a large body is in use.
struct Charge<'a>(&'a MemoryBudget, usize);

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// Reads the body: at most `max_message_size` bytes (else `payload_size_exceeded`,
/// 413), within `frame_timeout` (else None: 408). A body larger than what every
/// connection may buffer anyway is charged to the memory budget first (when its length
/// is declared) or once read, as a WAMP transport charges a large message.
async fn read_body<'a>(router: &'a Router, headers: &HeaderMap, body: Body) -> Result<Option<(Bytes, Option<Charge<'a>>)>, BridgeError> {
    let limit = router.limits.max_message_size;
    let too_large = |n: usize| WampError::PayloadSizeExceeded(format!("the body of {n} bytes exceeds the limit of {limit} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut charge = None;
    if let Some(n) = declared {
        if n > limit {
            return Err(too_large(n).into());
        }
        if n > INBOUND_FREE {
            charge = Some(take_budget(router, n).await?);
        }
    }
    let bytes = match tokio::time::timeout(router.limits.frame_timeout, collect(body, limit)).await {
        Err(_) => return Ok(None),
        Ok(Err(BodyError::TooLarge)) => return Err(too_large(limit + 1).into()),
        Ok(Err(BodyError::Broken(e))) => return Err(WampError::InvalidArgument(format!("the body could not be read: {e}")).into()),
        Ok(Ok(b)) => b,
    };
    if charge.is_none() && bytes.len() > INBOUND_FREE {
        charge = Some(take_budget(router, bytes.len()).await?);
    }
    Ok(Some((bytes, charge)))
}

enum BodyError {
    TooLarge,
    Broken(axum::Error),
}

/// The body's bytes, refused as soon as they pass `limit` (a body without a declared
/// length is not read to its end first). One chunk, the common case, is not copied.
async fn collect(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Broken)?;
        len += chunk.len();
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        chunks.push(chunk);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => Bytes::from(chunks.concat()),
    })
}

/// Charges `n` bytes, waiting (at most `frame_timeout`) for budget to be released.
async fn take_budget(router: &Router, n: usize) -> Result<Charge<'_>, BridgeError> {
    let budget = &*router.budget;
    if !budget.try_charge(n) {
        router.metrics.inbound_budget_waits.inc();
        if tokio::time::timeout(router.limits.frame_timeout, budget.charge(n)).await.is_err() {
            return Err(WampError::Unavailable("the router's memory budget is spent: try again later".into()).into());
        }
    }
    Ok(Charge(budget, n))
}
