//! Binds the configured listeners and runs the router behind them. Used by the binary
//! and, in-process, by the Rust integration tests.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::auth::graph;
use crate::router::{Authorizers, ConnectionLimit, RealmAuth, Router};
use crate::transport::{fd_limit, http, rawsocket};
use crate::trim;

pub struct Server {
    pub router: Arc<Router>,
    pub websocket: SocketAddr,
    pub ws_path: String,
    pub rawsocket: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
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
        let nofile = fd_limit::raise_nofile()?;
        // The limit in force is in the "listening" log line and on /health.
        let max = fd_limit::connection_limit(nofile, config.limits.max_sessions);
        let limit = ConnectionLimit { max, reserve: fd_limit::reserve(nofile) };
        let router = Router::with_authorizers(config, limit, authorizers);
        let mut tasks = JoinSet::new();

        tasks.spawn(trim::after_waves_of_closes(router.clone()));
        // Each realm follows its authorizer's changes (revocations); a no-op for static roles.
        // and expires its stored events by age; a no-op without rules.
        for realm in router.realms() {
            tasks.spawn(realm.clone().follow_changes());
            tasks.spawn(realm.clone().sweep_store());
        }
        for follow in follows {
            tasks.spawn(follow);
        }

        let http_listener = TcpListener::bind(config.listen).await?;
        let websocket = http_listener.local_addr()?;
        tasks.spawn(http::serve(http_listener, router.clone(), config.ws_path.clone()));

        let rawsocket = match config.rawsocket {
            Some(addr) => {
                let l = TcpListener::bind(addr).await?;
                let bound = l.local_addr()?;
                tasks.spawn(rawsocket::serve_tcp(l, router.clone()));
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

        Ok(Server { router, websocket, ws_path: config.ws_path.clone(), rawsocket, unix: config.unix.clone(), tasks })
    }

    pub fn websocket_url(&self) -> String {
        format!("ws://{}{}", self.websocket, self.ws_path)
    }

    /// The one line printed on stdout once every listener is bound, for scripts and tests.
    pub fn ready_line(&self) -> String {
        serde_json::json!({
            "event": "listening",
            "websocket": self.websocket_url(),
            "rawsocket": self.rawsocket.map(|a| a.to_string()),
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
