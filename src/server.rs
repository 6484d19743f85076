//! Binds the configured listeners and runs the router behind them. Used by the binary
//! and, in-process, by the Rust integration tests.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use futures_util::future::BoxFuture;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::auth::graph;
use crate::replay::durable::{Durable, DurableOptions};
use crate::replay::Store;
use crate::router::realm::retention;
use crate::router::{Authorizers, ConnectionLimit, RealmAuth, Router, Stores};
use crate::transport::tls::Tls;
use crate::transport::workbench::Page;
use crate::transport::{fd_limit, http, rawsocket};
use crate::trim;

pub struct Server {
    pub router: Arc<Router>,
    pub websocket: SocketAddr,
    pub ws_path: String,
    pub rawsocket: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
    /// The TLS certificate and acceptors, when `[tls]` is configured.
    pub tls: Option<Arc<Tls>>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Binds every listener (port 0 picks a free port) and starts serving.
    pub async fn start(config: &Config) -> io::Result<Server> {
        Server::start_with(config, Authorizers::new()).await
    }

    /// Like `start`, with the given realms authorized by `authorizers` instead of their
    /// static roles.
    pub async fn start_with(config: &Config, mut authorizers: Authorizers) -> io::Result<Server> {
        // Realms of the permission graph: their authorizer, token check and the task that
        // follows the database (spawned below, once the runtime's tasks are set up).
        let mut follows = Vec::new();
        for realm in &config.realms {
            if authorizers.contains_key(&realm.name) {
                continue;
            }
            if let Some(g) = graph::build(realm) {
                let auth = RealmAuth { authorizer: g.authorizer, tokens: Some(g.tokens) };
                authorizers.insert(realm.name.clone(), auth);
                follows.extend(g.follow);
            }
        }
        let (stores, durable_retries) = durable_stores(config).await;
        let nofile = fd_limit::raise_nofile()?;
        // The limit in force is in the "listening" log line and on /health.
        let max = fd_limit::connection_limit(nofile, config.limits.max_sessions);
        let limit = ConnectionLimit { max, reserve: fd_limit::reserve(nofile) };
        let router = Router::with_parts(config, limit, authorizers, stores);
        // Loaded before any listener is bound: a certificate that cannot be served
        // stops the start instead of failing every handshake.
        let tls = match &config.tls {
            Some(t) => Some(Arc::new(Tls::start(t, router.metrics.clone()).map_err(io::Error::other)?)),
            None => None,
        };
        let mut tasks = JoinSet::new();

        tasks.spawn(trim::after_waves_of_closes(router.clone()));
        // Each realm follows its authorizer's changes (revocations); a no-op for static roles.
        // and expires its stored events by age; a no-op without rules.
        for realm in router.realms() {
            tasks.spawn(realm.clone().follow_changes());
            tasks.spawn(realm.clone().sweep_store());
            tasks.spawn(realm.clone().expire_calls());
            tasks.spawn(realm.clone().prune_durable());
        }
        for follow in follows {
            tasks.spawn(follow);
        }
        for retry in durable_retries {
            tasks.spawn(retry);
        }

        let http_listener = TcpListener::bind(config.listen).await?;
        let websocket = http_listener.local_addr()?;
        let https = tls.as_ref().and_then(|t| t.websocket().cloned());
        let page = config.workbench.then(|| Page::new(&config.ws_path));
        tasks.spawn(http::serve(http_listener, router.clone(), config.ws_path.clone(), https, page));

        let rawsocket = match config.rawsocket {
            Some(addr) => {
                let l = TcpListener::bind(addr).await?;
                let bound = l.local_addr()?;
                let raw_tls = tls.as_ref().and_then(|t| t.rawsocket().cloned());
                tasks.spawn(rawsocket::serve_tcp(l, router.clone(), raw_tls));
                Some(bound)
            }
            None => None,
        };

        if let Some(path) = &config.unix {
            // A stale socket file from a previous run would make bind fail.
            if path.exists() {
                std::fs::remove_file(path)?;
            }
            let l = UnixListener::bind(path)?;
            tasks.spawn(rawsocket::serve_unix(l, router.clone()));
        }

        Ok(Server { router, websocket, ws_path: config.ws_path.clone(), rawsocket, unix: config.unix.clone(), tls, tasks })
    }

    pub fn websocket_url(&self) -> String {
        let scheme = if self.websocket_tls() { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.websocket, self.ws_path)
    }

    pub fn websocket_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.websocket().is_some())
    }

    pub fn rawsocket_tls(&self) -> bool {
        self.rawsocket.is_some() && self.tls.as_ref().is_some_and(|t| t.rawsocket().is_some())
    }

    /// SIGHUP: re-reads the TLS certificate and key (a no-op without TLS). Open
    /// connections are untouched; a bad file keeps the current certificate.
    pub fn reload_tls(&self) {
        match &self.tls {
            // Logged and counted by `reload` itself.
            Some(tls) => {
                let _ = tls.reload();
            }
            None => tracing::info!("nothing to reload: TLS is not configured"),
        }
    }

    /// The one line printed on stdout once every listener is bound, for scripts and tests.
    pub fn ready_line(&self) -> String {
        serde_json::json!({
            "event": "listening",
            "websocket": self.websocket_url(),
            "rawsocket": self.rawsocket.map(|a| a.to_string()),
            "rawsocket_tls": self.rawsocket_tls(),
            "unix": self.unix.as_ref().map(|p| p.display().to_string()),
        })
        .to_string()
    }

    /// GOODBYE `wamp.close.system_shutdown` to every session, then stop the listeners.
    pub async fn shut_down(mut self, grace: Duration) {
        self.router.shut_down(grace).await;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Some(path) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The replay stores of realms with durable topics, connected to their database (its
/// schema applied) and filled with what it retained, so positions and history go on
/// where the last run stopped. A database that cannot be reached at start does not stop
/// the router: the realm's durable topics refuse publications (fail closed, counted,
/// `replay_durable_online` 0) while a task keeps trying, returned here to be spawned.
async fn durable_stores(config: &Config) -> (Stores, Vec<BoxFuture<'static, ()>>) {
    let mut stores = Stores::new();
    let mut retries: Vec<BoxFuture<'static, ()>> = Vec::new();
    for realm in &config.realms {
        if !realm.replay.any_durable() {
            continue;
        }
        let store = Arc::new(Store::new(retention(realm)));
        stores.insert(realm.name.clone(), store.clone());
        let Some(url) = realm.replay_database_url() else {
            tracing::error!(realm = %realm.name, "durable topics need a database: set [replay] database_url, [graph] database_url or SWITCHYARD_DATABASE_URL; they refuse publications meanwhile");
            continue;
        };
        if let Err(e) = connect_durable(&store, &url, &realm.name).await {
            tracing::error!(realm = %realm.name, error = %e, "the durable event store cannot be opened; durable topics refuse publications until it can");
            let name = realm.name.clone();
            retries.push(Box::pin(async move {
                let mut wait = Duration::from_secs(1);
                loop {
                    tokio::time::sleep(wait).await;
                    match connect_durable(&store, &url, &name).await {
                        Ok(()) => return,
                        Err(e) => tracing::debug!(realm = %name, error = %e, "the durable event store is still unreachable"),
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }));
        }
    }
    (stores, retries)
}

async fn connect_durable(store: &Store, url: &str, realm: &str) -> Result<(), crate::replay::ReplayError> {
    let durable = Durable::open(url, realm, DurableOptions::default()).await?;
    let loaded = durable.load(store.retention()).await?;
    let (events, topics) = (loaded.events.len(), loaded.heads.len());
    store.connect_durable(durable, loaded);
    tracing::info!(realm, events, topics, "durable event store connected and restored");
    Ok(())
}
