//! The HTTP side of the WebSocket port: `/health`, `/metrics`, and the WebSocket
//! upgrade on the configured path.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use super::websocket;
use crate::router::Router;

pub fn app(router: Arc<Router>, ws_path: &str) -> axum::Router {
    axum::Router::new()
        .route(ws_path, get(websocket::upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(router)
}

async fn health(State(router): State<Arc<Router>>) -> impl IntoResponse {
    let status = if router.shutdown.is_cancelled() { "shutting_down" } else { "ok" };
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"status":"{status}","connections":{}}}"#, router.open_connections()),
    )
}

async fn metrics(State(router): State<Arc<Router>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], router.metrics.render())
}

/// Serves HTTP and WebSocket until the router shuts down.
pub async fn serve(listener: TcpListener, router: Arc<Router>, ws_path: String) -> std::io::Result<()> {
    // WAMP messages are small and latency-bound: without TCP_NODELAY, Nagle's algorithm
    // and delayed ACKs hold frames back for tens of milliseconds.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let shutdown = router.shutdown.clone();
    let app = app(router, &ws_path).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
