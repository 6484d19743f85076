//! The router: realms, sessions, broker and dealer, independent of any transport.
//! Transports hand it connections (`connection::serve`); it hands back frames through
//! each session's bounded outbox.

pub mod broker;
pub mod connection;
pub mod dealer;
pub mod error;
pub mod features;
pub mod handle;
pub mod metrics;
pub mod outbox;
pub mod realm;
pub mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Limits};
use metrics::Metrics;
use outbox::OutboxLimits;
use realm::Realm;

#[derive(Debug)]
pub struct Router {
    pub limits: Limits,
    realms: HashMap<String, Arc<Realm>>,
    pub metrics: Arc<Metrics>,
    /// Cancelled on SIGTERM/SIGINT: every session says GOODBYE `wamp.close.system_shutdown`.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub connections: TaskTracker,
    open: AtomicUsize,
}

/// Holds one of `max_sessions` places while a connection is open.
#[derive(Debug)]
pub struct Admission(Arc<Router>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Router {
    pub fn new(config: &Config) -> Arc<Router> {
        let metrics = Arc::new(Metrics::new());
        let realms =
            config.realms.iter().map(|r| (r.name.clone(), Arc::new(Realm::from_config(r, &config.limits, metrics.clone())))).collect();
        Arc::new(Router {
            limits: config.limits.clone(),
            realms,
            metrics,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            open: AtomicUsize::new(0),
        })
    }

    pub fn realm(&self, name: &str) -> Option<&Arc<Realm>> {
        self.realms.get(name)
    }

    pub fn outbox_limits(&self) -> OutboxLimits {
        OutboxLimits {
            max_messages: self.limits.outbox_messages,
            max_bytes: self.limits.outbox_bytes,
            rpc_bytes: self.limits.rpc_outbox_bytes.max(self.limits.max_message_size),
        }
    }

    /// Takes a connection place, or None at `max_sessions` (the transport refuses the
    /// connection in its own way: RawSocket error 4, HTTP 503).
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let n = self.open.fetch_add(1, Ordering::Relaxed);
        if n >= self.limits.max_sessions || self.shutdown.is_cancelled() {
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.metrics.sessions_refused.inc();
            return None;
        }
        Some(Admission(self.clone()))
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Starts a graceful shutdown and waits (up to `grace`) for every connection to end.
    pub async fn shut_down(&self, grace: std::time::Duration) {
        self.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(grace, self.connections.wait()).await.is_err() {
            tracing::warn!(open = self.open_connections(), "connections still open after the shutdown grace period");
        }
    }
}
