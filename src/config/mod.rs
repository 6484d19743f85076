//! Router configuration: the typed settings the rest of the router runs on, their
//! defaults, and loading them from a TOML main file plus an optional directory of
//! per-realm TOML files.
//!
//! Loading is done in two steps: `raw` mirrors the file format with serde (keeping the
//! source span of every value), then `validate` and `realm` turn that into the types
//! below while collecting *every* semantic error with its file, line and column, so an
//! operator can fix a broken configuration in one pass instead of one error per restart.

pub mod certificate;
mod error;
mod policy;
mod principal;
mod raw;
mod realm;
mod limit_reader;
mod realm_limits;
mod replay;
mod tls;
mod uri;
mod validate;
mod x509;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wamp::uri::MatchPolicy;

pub use error::{ConfigError, ConfigErrors};
pub use policy::GRAPH_ROLES;

/// The complete router configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// File the configuration came from; `None` for the embedded default.
    pub source: Option<PathBuf>,
    /// WebSocket and HTTP listener.
    pub listen: SocketAddr,
    /// HTTP path on which WebSocket upgrades are accepted.
    pub ws_path: String,
    /// RawSocket over TCP; `None` when disabled (`rawsocket = "off"`).
    pub rawsocket: Option<SocketAddr>,
    /// RawSocket over a Unix domain socket; `None` when not configured.
    pub unix: Option<PathBuf>,
    /// TLS on the TCP listeners (`[tls]`); `None`: every listener speaks plain TCP.
    pub tls: Option<TlsConfig>,
    /// Serve the workbench page at `/` of the WebSocket/HTTP port (`[http] workbench`).
    pub workbench: bool,
    pub limits: Limits,
    pub log: LogConfig,
    pub realms: Vec<RealmConfig>,
}

/// `[tls]`: the certificate and key files, and which TCP listeners use them. The Unix
/// socket is always plain (it never leaves the machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, end-entity certificate first (resolved against the main
    /// file's folder when relative).
    pub certificate: PathBuf,
    /// PEM private key: PKCS#8, RSA (PKCS#1) or SEC1.
    pub key: PathBuf,
    /// The WebSocket/HTTP port speaks HTTPS and wss:// (default true).
    pub websocket: bool,
    /// The RawSocket TCP port speaks TLS (default true).
    pub rawsocket: bool,
}

impl TlsConfig {
    /// TLS with these files on both TCP listeners (the `--tls-*` command-line defaults).
    pub fn both(certificate: PathBuf, key: PathBuf) -> TlsConfig {
        TlsConfig { certificate, key, websocket: true, rawsocket: true }
    }
}

/// Resource limits. In the TOML file durations are written as integer milliseconds
/// (`*_ms` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted WAMP message, in bytes.
    pub max_message_size: usize,
    /// Largest message accepted before the session is established (HELLO,
    /// AUTHENTICATE, RawSocket PINGs): strangers get no big buffers.
    pub max_hello_size: usize,
    /// Time a new connection has to finish its transport handshake (the HTTP request
    /// and WebSocket upgrade, or the RawSocket handshake).
    pub handshake_timeout: Duration,
    /// Time a new connection has to complete HELLO/WELCOME after its handshake.
    pub hello_timeout: Duration,
    /// Time a message has to arrive completely once its first byte has arrived.
    pub frame_timeout: Duration,
    /// Bytes the whole process may hold in partially received messages and queued
    /// outgoing messages; see `router::budget`.
    pub memory_budget: usize,
    /// Events queued per session before further events are dropped.
    pub outbox_messages: usize,
    /// Bytes of events queued per session before further events are dropped.
    pub outbox_bytes: usize,
    /// Hard cap on queued bytes including RPC traffic; beyond it the session is closed.
    pub rpc_outbox_bytes: usize,
    /// A writer stalled this long closes the session.
    pub write_timeout: Duration,
    /// Transport keep-alive interval; `Duration::ZERO` disables pings.
    pub ping_interval: Duration,
    pub max_sessions: usize,
    pub max_subscriptions_per_session: usize,
    pub max_registrations_per_session: usize,
    /// Calls a session may have in flight as a caller.
    pub max_calls_per_session: usize,
    /// Longest URI (realm, topic, procedure, error) a client may send, in bytes.
    pub max_uri_length: usize,
    /// Failed authentications allowed per minute, per peer address and per authid.
    pub auth_failures_per_minute: u32,
    /// Apply the WAMP strict URI rules to client-supplied URIs (loose rules otherwise).
    pub strict_uris: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// Parses the `log.format` value as written in the file.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` EnvFilter directive such as `info` or `info,switchyard::router=debug`.
    pub level: String,
}

/// One realm and its authorization rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmConfig {
    pub name: String,
    /// Role given to anonymous sessions; `None`: anonymous sessions are refused.
    pub anonymous: Option<String>,
    pub roles: Vec<RoleConfig>,
    /// Principals that may authenticate with WAMP-Ticket, WAMP-CRA or WAMP-Cryptosign.
    pub principals: Vec<PrincipalConfig>,
    /// The permission graph in PostgreSQL, for realms authorized by it.
    pub graph: Option<GraphConfig>,
    /// Which topics the replay store keeps, and how much of them.
    pub replay: ReplayConfig,
    /// What this realm's sessions may use (`[limits]` of the realm).
    pub limits: RealmLimits,
}

/// The limits of one realm; `None`: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealmLimits {
    /// The longest a call may run before the router ends it with `wamp.error.timeout`,
    /// whatever `CALL.Options.timeout` asks (a call asking for none gets this one).
    pub max_call_timeout: Option<Duration>,
    /// Sessions the realm holds at once.
    pub max_sessions: Option<usize>,
    /// Sessions one authid holds at once in the realm.
    pub max_sessions_per_authid: Option<usize>,
    /// Publications one session may make: a token bucket refilled at this rate.
    pub publications: Option<Rate>,
    /// Calls one session may make.
    pub calls: Option<Rate>,
}

/// A token bucket: `per_second` tokens a second, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The replay store of a realm (`[replay]` in a realm file).
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Bytes all stored events of the realm may take in memory together (default 64 MiB).
    pub budget_bytes: usize,
    /// Database for durable topics; `None`: the realm's `[graph] database_url`, else
    /// SWITCHYARD_DATABASE_URL / DATABASE_URL at start (same resolution as
    /// `GraphConfig`; see `RealmConfig::replay_database_url`). Like the graph's, a
    /// missing URL is not a configuration error: `check-config` runs without a
    /// database, and the start decides.
    pub database_url: Option<String>,
    /// Rules in file order; the first rule matching a topic decides. No rules: nothing stored.
    pub topics: Vec<TopicRetention>,
}

/// One `[[replay.topics]]` rule: which topics it names and how much of each is kept.
/// An event leaves when any bound is passed (oldest first), or earlier when the
/// realm's `budget_bytes` needs the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRetention {
    pub uri: String,
    /// `match = "exact" | "prefix" | "wildcard"`; exact by default, as for permissions.
    pub policy: MatchPolicy,
    /// Events kept per topic, at least 1 (default 1000).
    pub max_events: usize,
    /// Events older than this leave (`max_age_secs`); `None`: no age limit.
    pub max_age: Option<Duration>,
    /// Bytes one topic's events may take (`max_bytes`); `None`: only the realm budget.
    pub max_bytes: Option<usize>,
    /// Also written to PostgreSQL, so the topic's history survives a restart.
    pub durable: bool,
}

impl ReplayConfig {
    /// `budget_bytes` when the file does not say: 64 MiB.
    pub const DEFAULT_BUDGET_BYTES: usize = 64 * 1024 * 1024;

    /// Nothing stored (a realm file without `[replay]`).
    pub fn none() -> ReplayConfig {
        ReplayConfig {
            budget_bytes: ReplayConfig::DEFAULT_BUDGET_BYTES,
            database_url: None,
            topics: Vec::new(),
        }
    }

    /// Every topic in memory, the last 1,000 events per topic, 64 MiB for the realm:
    /// the embedded default realm.
    pub fn store_everything() -> ReplayConfig {
        ReplayConfig {
            topics: vec![TopicRetention {
                uri: String::new(),
                policy: MatchPolicy::Prefix,
                max_events: TopicRetention::DEFAULT_MAX_EVENTS,
                max_age: None,
                max_bytes: None,
                durable: false,
            }],
            ..ReplayConfig::none()
        }
    }

    /// Whether some rule is durable (then the realm needs a database at start).
    pub fn any_durable(&self) -> bool {
        self.topics.iter().any(|t| t.durable)
    }
}

impl TopicRetention {
    /// `max_events` when the rule does not say.
    pub const DEFAULT_MAX_EVENTS: usize = 1000;
}

// Hand-written so that a password in a database URL never ends up in logs.
impl fmt::Debug for ReplayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayConfig")
            .field("budget_bytes", &self.budget_bytes)
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("topics", &self.topics)
            .finish()
    }
}

/// A realm authorized by the permission graph (`[graph]` in a realm file).
#[derive(Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// `None`: taken from `SWITCHYARD_DATABASE_URL`, else `DATABASE_URL`, at start.
    pub database_url: Option<String>,
    /// Apply the schema migrations at start.
    pub migrate: bool,
    /// Users whose closures stay cached after their sessions left (for a warm
    /// reconnect), at most; users with live sessions are always cached.
    pub cache_principals: usize,
    /// Objects whose access rows are cached at most.
    pub cache_objects: usize,
    pub policy: PolicyConfig,
}

impl GraphConfig {
    /// The database URL in force: the realm's own, else the environment's.
    pub fn resolved_database_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("SWITCHYARD_DATABASE_URL").ok())
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .filter(|u| !u.is_empty())
    }
}

// Hand-written so that a password in a database URL never ends up in logs.
impl fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphConfig")
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("migrate", &self.migrate)
            .field("cache_principals", &self.cache_principals)
            .field("cache_objects", &self.cache_objects)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A policy file (`policies/<realm>.toml`): which graph object a URI names, and what
/// each action on it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    pub file: PathBuf,
    pub rules: Vec<PolicyRule>,
}

/// One rule: a URI template whose `{object}` component (if any) is a graph node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// Components of the template; `None` stands for `{object}`.
    pub template: Vec<Option<String>>,
    pub publish: Requirement,
    pub subscribe: Requirement,
    pub call: Requirement,
    pub register: Requirement,
}

impl PolicyRule {
    /// The template as written (`containers.{object}.logs`).
    pub fn uri(&self) -> String {
        self.template.iter().map(|c| c.as_deref().unwrap_or("{object}")).collect::<Vec<_>>().join(".")
    }
}

/// What one action of a rule needs: a level on the rule's object (graph users), or one
/// of the listed static roles. Neither: denied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirement {
    pub level: Option<LevelName>,
    pub roles: Vec<String>,
}

/// A level of the permission graph, as policy files name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LevelName {
    Read = 1,
    Write = 2,
    Manage = 3,
}

impl LevelName {
    pub fn parse(s: &str) -> Option<LevelName> {
        match s {
            "read" => Some(LevelName::Read),
            "write" => Some(LevelName::Write),
            "manage" => Some(LevelName::Manage),
            _ => None,
        }
    }
}

impl RealmConfig {
    /// The role called `name`, if the realm defines it.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The database for durable replay topics: `[replay] database_url`, else the
    /// graph's (`[graph] database_url`, else SWITCHYARD_DATABASE_URL, else
    /// DATABASE_URL). One realm, one database, unless the file says otherwise.
    pub fn replay_database_url(&self) -> Option<String> {
        let env = || {
            std::env::var("SWITCHYARD_DATABASE_URL")
                .ok()
                .or_else(|| std::env::var("DATABASE_URL").ok())
        };
        self.replay
            .database_url
            .clone()
            .or_else(|| self.graph.as_ref().and_then(|g| g.database_url.clone()))
            .or_else(env)
            .filter(|u| !u.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    pub name: String,
    pub permissions: Vec<Permission>,
}

/// A Crossbar-style permission: which actions are allowed on URIs matching `uri`
/// under `match_policy`, and whether caller/publisher identities are disclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub uri: String,
    pub match_policy: MatchPolicy,
    pub allow: Allow,
    pub disclose: Disclose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allow {
    pub call: bool,
    pub register: bool,
    pub publish: bool,
    pub subscribe: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disclose {
    pub caller: bool,
    pub publisher: bool,
}

/// A principal of the realm file: one identity with one role, and the credentials it
/// may prove it with (at least one of them).
#[derive(Clone, PartialEq, Eq)]
pub struct PrincipalConfig {
    pub authid: String,
    /// WAMP-Ticket: the ticket itself.
    pub ticket: Option<String>,
    pub role: String,
    /// WAMP-CRA: the shared secret, plain or salted.
    pub wampcra: Option<CraSecret>,
    /// WAMP-Cryptosign: the Ed25519 public keys the principal may sign with.
    pub cryptosign: Vec<[u8; 32]>,
}

impl PrincipalConfig {
    /// A principal that logs in with a ticket only.
    pub fn ticket(authid: impl Into<String>, ticket: impl Into<String>, role: impl Into<String>) -> PrincipalConfig {
        PrincipalConfig { authid: authid.into(), ticket: Some(ticket.into()), role: role.into(), wampcra: None, cryptosign: Vec::new() }
    }
}

/// A WAMP-CRA secret. Unsalted, `secret` is the password both sides know. Salted, it is
/// the key the client derives from its password (PBKDF2-HMAC-SHA256 with `salt`,
/// `iterations` and `keylen`, in base64), so the password itself is stored nowhere: the
/// router uses the text as the HMAC key either way, as autobahn's clients do.
#[derive(Clone, PartialEq, Eq)]
pub struct CraSecret {
    pub secret: String,
    pub salt: Option<CraSalt>,
}

/// The PBKDF2 parameters of a salted WAMP-CRA secret, sent in CHALLENGE.Details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CraSalt {
    pub salt: String,
    pub iterations: u32,
    pub keylen: u32,
}

// Hand-written so that secrets never end up in logs through `{:?}` of a Config.
impl fmt::Debug for PrincipalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalConfig")
            .field("authid", &self.authid)
            .field("ticket", &self.ticket.as_ref().map(|_| "<redacted>"))
            .field("role", &self.role)
            .field("wampcra", &self.wampcra)
            .field("cryptosign", &self.cryptosign.len())
            .finish()
    }
}

impl fmt::Debug for CraSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CraSecret").field("secret", &"<redacted>").field("salt", &self.salt).finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 * 1024 * 1024,
            max_hello_size: 64 * 1024,
            handshake_timeout: Duration::from_millis(5_000),
            hello_timeout: Duration::from_millis(10_000),
            frame_timeout: Duration::from_millis(30_000),
            memory_budget: 256 * 1024 * 1024,
            outbox_messages: 1024,
            outbox_bytes: 8 * 1024 * 1024,
            rpc_outbox_bytes: 64 * 1024 * 1024,
            write_timeout: Duration::from_millis(10_000),
            ping_interval: Duration::from_millis(30_000),
            max_sessions: 100_000,
            max_subscriptions_per_session: 10_000,
            max_registrations_per_session: 10_000,
            max_calls_per_session: 1_000,
            max_uri_length: 4096,
            auth_failures_per_minute: 10,
            strict_uris: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

impl RealmConfig {
    /// The embedded default realm: `realm1`, where anonymous sessions may do everything.
    fn default_realm() -> RealmConfig {
        let all = Allow {
            call: true,
            register: true,
            publish: true,
            subscribe: true,
        };
        RealmConfig {
            name: "realm1".to_string(),
            anonymous: Some("anonymous".to_string()),
            roles: vec![RoleConfig {
                name: "anonymous".to_string(),
                permissions: vec![Permission {
                    uri: String::new(),
                    match_policy: MatchPolicy::Prefix,
                    allow: all,
                    disclose: Disclose::default(),
                }],
            }],
            principals: Vec::new(),
            graph: None,
            // Without a file every topic keeps recent history, within 64 MiB for the realm.
            replay: ReplayConfig::store_everything(),
            limits: Default::default(),
        }
    }
}

impl Default for Config {
    /// The embedded default, used when the router is started without a config file.
    fn default() -> Self {
        Config {
            source: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            ws_path: "/ws".to_string(),
            rawsocket: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 8081))),
            unix: None,
            tls: None,
            workbench: true,
            limits: Limits::default(),
            log: LogConfig::default(),
            realms: vec![RealmConfig::default_realm()],
        }
    }
}

impl Config {
    /// Reads and validates the main file at `path` and the realm files of its
    /// `realms_dir`. On failure returns every error found, not just the first.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_str(&text, path),
            Err(e) => Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read configuration file: {e}"),
            }])),
        }
    }

    /// Validates `text` as the contents of the main file `file`. `file` is used in
    /// error messages and to resolve `realms_dir` (relative to `file`'s folder), whose
    /// realm files are read from disk.
    #[allow(clippy::should_implement_trait)] // two arguments: not `FromStr`
    pub fn from_str(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        validate::build(text, file)
    }
}
