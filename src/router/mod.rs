//! The router: realms, sessions, broker and dealer, independent of any transport.
//! Transports hand it connections (`connection::serve`); it hands back frames through
//! each session's bounded outbox.

pub mod admission;
pub mod broker;
pub mod bridge;
pub mod budget;
pub mod checks;
pub mod connection;
pub mod control;
pub mod dealer;
pub mod error;
pub mod features;
pub mod frames;
pub mod handle;
pub mod meta;
pub mod metrics;
pub mod outbox;
pub mod patterns;
pub mod quota;
pub mod realm;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{Authorizer, StaticRoles, TokenCheck};
use crate::config::{Config, Limits};
use admission::{Admit, Gate};
use budget::MemoryBudget;
use metrics::Metrics;
use outbox::OutboxLimits;
use realm::Realm;

#[derive(Debug)]
pub struct Router {
    pub limits: Limits,
    realms: HashMap<String, Arc<Realm>>,
    /// The first realm configured: where an HTTP bridge request that names none goes.
    default_realm: Option<String>,
    pub metrics: Arc<Metrics>,
    /// Cancelled on SIGTERM/SIGINT: every session says GOODBYE `wamp.close.system_shutdown`.
    pub shutdown: CancellationToken,
    /// Cancelled when a shutdown's grace is nearly over: connections still open are
    /// dropped without waiting for their writers.
    pub force_close: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub connections: TaskTracker,
    gate: Arc<Gate>,
    pub budget: Arc<MemoryBudget>,
}

/// How a realm that does not use its static roles alone is authorized: an authorizer
/// (the permission graph, or an embedding application's own) and, optionally, API
/// tokens accepted as tickets.
#[derive(Debug, Clone)]
pub struct RealmAuth {
    pub authorizer: Arc<dyn Authorizer>,
    pub tokens: Option<Arc<dyn TokenCheck>>,
}

impl From<Arc<dyn Authorizer>> for RealmAuth {
    fn from(authorizer: Arc<dyn Authorizer>) -> RealmAuth {
        RealmAuth { authorizer, tokens: None }
    }
}

/// Realm authorization by realm name, for the realms that do not use their static roles.
pub type Authorizers = HashMap<String, RealmAuth>;

/// Replay stores by realm name, for the realms whose store is not a plain memory one.
pub type Stores = HashMap<String, Arc<crate::replay::Store>>;

/// How many connections the process may hold, as the server worked it out from the
/// descriptor limit (`transport::fd_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimit {
    /// Connections admitted at most (`max_sessions` or less).
    pub max: usize,
    /// Descriptors kept back for listeners, logs, refusals and evictions in progress.
    pub reserve: usize,
}

impl Router {
    pub fn new(config: &Config, connections: ConnectionLimit) -> Arc<Router> {
        Router::with_authorizers(config, connections, Authorizers::new())
    }

    /// A router whose realms named in `authorizers` use that authorizer instead of
    /// their static roles (the permission graph, or an embedding application's own).
    pub fn with_authorizers(config: &Config, connections: ConnectionLimit, authorizers: Authorizers) -> Arc<Router> {
        Router::with_parts(config, connections, authorizers, Stores::new())
    }

    /// Like `with_authorizers`, with the given realms storing events in `stores` (a
    /// durable store, restored from its database) instead of a memory store.
    pub fn with_parts(config: &Config, connections: ConnectionLimit, mut authorizers: Authorizers, mut stores: Stores) -> Arc<Router> {
        let metrics = Arc::new(Metrics::new());
        let realms = config
            .realms
            .iter()
            .map(|r| {
                let auth = authorizers
                    .remove(&r.name)
                    .unwrap_or_else(|| RealmAuth { authorizer: Arc::new(StaticRoles::from_config(r)), tokens: None });
                let realm = Realm::new(r, &config.limits, metrics.clone(), auth, stores.remove(&r.name));
                (r.name.clone(), Arc::new(realm))
            })
            .collect();
        Arc::new(Router {
            limits: config.limits.clone(),
            realms,
            default_realm: config.realms.first().map(|r| r.name.clone()),
            gate: Arc::new(Gate::new(connections.max, connections.reserve, metrics.clone())),
            budget: Arc::new(MemoryBudget::new(config.limits.memory_budget)),
            metrics,
            shutdown: CancellationToken::new(),
            force_close: CancellationToken::new(),
            connections: TaskTracker::new(),
        })
    }

    pub fn realm(&self, name: &str) -> Option<&Arc<Realm>> {
        self.realms.get(name)
    }

    /// The first realm configured (`realm1` in the embedded default and the shipped
    /// configuration), for requests that name no realm (the HTTP bridge).
    pub fn default_realm(&self) -> Option<&Arc<Realm>> {
        self.default_realm.as_deref().and_then(|name| self.realms.get(name))
    }

    pub fn realms(&self) -> impl Iterator<Item = &Arc<Realm>> {
        self.realms.values()
    }

    pub fn outbox_limits(&self) -> OutboxLimits {
        OutboxLimits {
            max_messages: self.limits.outbox_messages,
            max_bytes: self.limits.outbox_bytes,
            rpc_bytes: self.limits.rpc_outbox_bytes.max(self.limits.max_message_size),
        }
    }

    /// Waits (briefly) for connections evicted at the limit to close; see `admission.rs`.
    pub async fn wait_for_room(&self) {
        // Bounded, so that a connection stuck in closing cannot stop the listener.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), self.gate.wait_for_room()).await;
    }

    /// Decides about a connection just accepted (see `admission.rs`).
    pub fn admit(&self) -> Admit {
        self.gate.admit(self.shutdown.is_cancelled())
    }

    pub fn open_connections(&self) -> usize {
        self.gate.open()
    }

    /// Connections closed since start.
    pub fn closed_connections(&self) -> u64 {
        self.gate.closed_total()
    }

    /// The metrics as Prometheus text, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        self.metrics.budget_used.set(self.budget.used() as i64);
        for realm in self.realms.values() {
            if let Some(online) = realm.authorizer.online() {
                let labels = vec![("realm".to_owned(), realm.name.clone())];
                self.metrics.authorizer_online.get_or_create(&labels).set(i64::from(online));
            }
            if let Some(seq) = realm.authorizer.applied() {
                let labels = vec![("realm".to_owned(), realm.name.clone())];
                self.metrics.authorizer_applied.get_or_create(&labels).set(seq);
            }
            self.render_replay(realm);
        }
        self.metrics.render()
    }

    fn render_replay(&self, realm: &Realm) {
        let store = realm.broker.store();
        if store.retention().is_empty() {
            return;
        }
        let m = &self.metrics;
        let labels = vec![("realm".to_owned(), realm.name.clone())];
        let stats = &store.stats;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as i64;
        m.replay_stored.get_or_create(&labels).set(get(&stats.stored));
        m.replay_bytes.get_or_create(&labels).set(store.used_bytes() as i64);
        m.replay_topics.get_or_create(&labels).set(stats.topics.load(std::sync::atomic::Ordering::Relaxed) as i64);
        for (reason, counter) in [("retention", &stats.evicted_retention), ("age", &stats.evicted_age), ("budget", &stats.evicted_budget)] {
            let labels = vec![("realm".to_owned(), realm.name.clone()), ("reason".to_owned(), reason.to_owned())];
            m.replay_evicted.get_or_create(&labels).set(get(counter));
        }
        if store.retention().any_durable() {
            m.durable_online.get_or_create(&labels).set(i64::from(store.durable().is_some()));
        }
        if let Some(durable) = store.durable() {
            let d = durable.stats();
            m.durable_committed.get_or_create(&labels).set(d.rows_committed as i64);
            m.durable_failed.get_or_create(&labels).set(d.rows_failed as i64);
            m.durable_queue.get_or_create(&labels).set(d.queue_len as i64);
        }
    }

    /// The connection limit in force.
    pub fn max_connections(&self) -> usize {
        self.gate.limit()
    }

    /// Starts a graceful shutdown and returns within `grace`: every session is told
    /// GOODBYE and given time to answer; a second before the end, connections still
    /// open (peers that do not read, writers stuck) are dropped.
    pub async fn shut_down(&self, grace: std::time::Duration) {
        let margin = (grace / 5).min(std::time::Duration::from_secs(1));
        self.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(grace - margin, self.connections.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(open = self.open_connections(), "connections still open near the end of the shutdown grace: dropping them");
        self.force_close.cancel();
        if tokio::time::timeout(margin, self.connections.wait()).await.is_err() {
            tracing::warn!(open = self.open_connections(), "connections still open after the shutdown grace");
        }
    }
}
