//! The HTTP side of the WebSocket port: `/health`, `/metrics`, the HTTP bridge
//! (`POST /publish`, `POST /call`, `/openapi.json`: `http_bridge`), the workbench page
//! (`workbench`, every other path), and the WebSocket upgrade on the configured path,
//! with each connection served here rather than by
//! `axum::serve`, so that it goes through the admission gate and lives under a deadline:
//! a connection has `handshake_timeout_ms` to send its request and upgrade (or be done
//! with HTTP), and is closed when a newer connection takes its place at the limit. A
//! connection whose bridge request authenticated is kept open between its requests
//! instead (`http_conn::Activity`).
//! With TLS on, the TLS handshake comes first, inside the same deadline; the plain
//! listener keeps its own monomorphic path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tower_service::Service;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::http_bridge;
use super::http_conn::{Activity, Connection};
use super::{listener, tls};
use super::websocket;
use super::workbench::Page;
use crate::router::admission::{Admission, Refusal};
use crate::router::Router;

/// Largest request head accepted (hyper's read buffer, per connection).
const MAX_REQUEST_HEAD: usize = 32 * 1024;
/// After the handshake deadline, a request in progress gets this long to finish.
const DRAIN: Duration = Duration::from_secs(1);
/// How long a refused client has to send its request before it gets the 503.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 22\r\n\
connection: close\r\n\r\nsession limit reached\n";

pub fn app(router: Arc<Router>, ws_path: &str, workbench: Option<Page>) -> axum::Router {
    let app = axum::Router::new()
        .route(ws_path, get(websocket::upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/publish", post(http_bridge::publish))
        .route("/call", post(http_bridge::call))
        .route("/openapi.json", get(http_bridge::openapi))
        .with_state(router);
    match workbench {
        Some(page) => app.fallback(move |req: Request<Body>| std::future::ready(page.respond(&req))),
        None => app,
    }
}

async fn health(State(router): State<Arc<Router>>) -> impl IntoResponse {
    let status = if router.shutdown.is_cancelled() { "shutting_down" } else { "ok" };
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            r#"{{"status":"{status}","connections":{},"max_connections":{}}}"#,
            router.open_connections(),
            router.max_connections()
        ),
    )
}

async fn metrics(State(router): State<Arc<Router>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], router.render_metrics())
}

/// Serves HTTP and WebSocket until the router shuts down; HTTPS and wss:// when
/// `tls` is given; the workbench page when `workbench` is.
pub async fn serve(l: TcpListener, router: Arc<Router>, ws_path: String, tls: Option<TlsAcceptor>, workbench: Option<Page>) {
    let app = app(router.clone(), &ws_path, workbench);
    let r = router.clone();
    let Some(acceptor) = tls else {
        let serve = move |stream, peer, admission| {
            let deadline = Instant::now() + r.limits.handshake_timeout;
            serve_connection(r.clone(), app.clone(), stream, peer, false, admission, deadline)
        };
        return listener::run(l, router, "http", serve, refuse).await;
    };
    let a = acceptor.clone();
    let serve = move |stream, peer: String, admission| {
        let (r, app, acceptor) = (r.clone(), app.clone(), acceptor.clone());
        async move {
            let deadline = Instant::now() + r.limits.handshake_timeout;
            if let Some(stream) = tls::handshake(&acceptor, stream, deadline, &admission, &r, &peer).await {
                serve_connection(r, app, stream, peer, true, admission, deadline).await;
            }
        }
    };
    // A refused HTTPS client gets the same 503, once it can read it.
    let refuse = move |stream, refusal| {
        let a = a.clone();
        async move {
            if let Some(stream) = tls::handshake_refused(&a, stream, REFUSAL_WAIT).await {
                refuse(stream, refusal).await;
            }
        }
    };
    listener::run(l, router, "https", serve, refuse).await
}

/// One HTTP connection until it is upgraded or done; it has until `deadline` (the
/// handshake deadline) to get there.
async fn serve_connection<S>(
    router: Arc<Router>,
    app: axum::Router,
    stream: S,
    peer: String,
    secure: bool,
    admission: Admission,
    deadline: Instant,
)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let evicted = admission.evicted().clone();
    // The upgrade takes the admission over; plain HTTP leaves it here, and the place is
    // freed when the connection ends.
    let activity = Arc::new(Activity::default());
    let context = Connection { peer, secure, admission: Arc::new(Mutex::new(Some(admission))), activity: activity.clone() };
    // Each request carries the connection's context to the handlers. (Layering an
    // `Extension` per connection built a whole router per connection: 3 KiB more for
    // every connection still in its handshake.)
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(context.clone());
        let mut app = app.clone();
        async move { app.call(req.map(Body::new)).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(MAX_REQUEST_HEAD);
    let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(conn);
    let deadline = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline);
    let mut draining = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = &mut deadline => {
                if draining {
                    return;
                }
                // A bridge client's connection lives on while it is in use.
                let now = Instant::now();
                if let Some(until) = activity.keep_open_until(now).filter(|until| *until > now) {
                    deadline.as_mut().reset(until);
                    continue;
                }
                draining = true;
                conn.as_mut().graceful_shutdown();
                deadline.as_mut().reset(Instant::now() + DRAIN);
            }
            _ = evicted.cancelled() => return,
            _ = router.shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
                deadline.as_mut().reset(Instant::now() + DRAIN);
            }
        }
    }
}

/// At the connection limit: the documented 503, once the request head is in (or after
/// a second), then close.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, refusal: Refusal) {
    let mut head = [0u8; 8192];
    let mut n = 0;
    let _ = tokio::time::timeout(REFUSAL_WAIT, async {
        while n < head.len() {
            match stream.read(&mut head[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
            if head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(REFUSAL_WAIT, stream.write_all(REFUSAL)).await;
    let _ = stream.shutdown().await;
    drop(refusal);
}
