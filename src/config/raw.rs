//! Serde mirror of the TOML file format. Every value the validator may complain about
//! is wrapped in `toml::Spanned` so errors can point at it; every table denies unknown
//! keys so a typo is an error instead of a silently ignored setting.
//!
//! Integers are read as `i64` (TOML's integer type) rather than `usize`, so a negative
//! limit is a semantic error reported alongside the others instead of a type error
//! that would stop parsing the file.

use serde::Deserialize;
use toml::Spanned;

/// The main file (`switchyard.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMain {
    pub realms_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub transport: RawTransport,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub realms: Vec<RawRealm>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransport {
    pub listen: Option<Spanned<String>>,
    pub ws_path: Option<Spanned<String>>,
    pub rawsocket: Option<Spanned<String>>,
    pub unix: Option<Spanned<String>>,
}

/// `[http]`: what the WebSocket port serves over plain HTTP besides the upgrade.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub workbench: Option<bool>,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub certificate: Spanned<String>,
    pub key: Spanned<String>,
    pub websocket: Option<Spanned<bool>>,
    pub rawsocket: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub max_message_size: Option<Spanned<i64>>,
    pub max_hello_size: Option<Spanned<i64>>,
    pub handshake_timeout_ms: Option<Spanned<i64>>,
    pub hello_timeout_ms: Option<Spanned<i64>>,
    pub frame_timeout_ms: Option<Spanned<i64>>,
    pub memory_budget_bytes: Option<Spanned<i64>>,
    pub outbox_messages: Option<Spanned<i64>>,
    pub outbox_bytes: Option<Spanned<i64>>,
    pub rpc_outbox_bytes: Option<Spanned<i64>>,
    pub write_timeout_ms: Option<Spanned<i64>>,
    pub ping_interval_ms: Option<Spanned<i64>>,
    pub max_sessions: Option<Spanned<i64>>,
    pub max_subscriptions_per_session: Option<Spanned<i64>>,
    pub max_registrations_per_session: Option<Spanned<i64>>,
    pub max_calls_per_session: Option<Spanned<i64>>,
    pub max_uri_length: Option<Spanned<i64>>,
    pub auth_failures_per_minute: Option<Spanned<i64>>,
    pub strict_uris: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub format: Option<Spanned<String>>,
    pub level: Option<Spanned<String>>,
}

/// A realm: an inline `[[realms]]` table, or a whole file in `realms_dir`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealm {
    pub name: Spanned<String>,
    pub anonymous: Option<Spanned<String>>,
    #[serde(default)]
    pub roles: Vec<RawRole>,
    #[serde(default)]
    pub principals: Vec<RawPrincipal>,
    pub graph: Option<Spanned<RawGraph>>,
    pub replay: Option<RawReplay>,
    pub limits: Option<RawRealmLimits>,
}

/// `[limits]` of a realm.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealmLimits {
    pub max_call_timeout_ms: Option<Spanned<i64>>,
    pub max_sessions: Option<Spanned<i64>>,
    pub max_sessions_per_authid: Option<Spanned<i64>>,
    pub publications_per_second: Option<Spanned<i64>>,
    pub publication_burst: Option<Spanned<i64>>,
    pub calls_per_second: Option<Spanned<i64>>,
    pub call_burst: Option<Spanned<i64>>,
}

/// `[replay]` of a realm.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplay {
    pub budget_bytes: Option<Spanned<i64>>,
    pub database_url: Option<Spanned<String>>,
    #[serde(default)]
    pub topics: Vec<RawTopic>,
}

/// One `[[replay.topics]]` rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopic {
    pub uri: Spanned<String>,
    #[serde(rename = "match")]
    pub match_policy: Option<Spanned<String>>,
    pub max_events: Option<Spanned<i64>>,
    pub max_age_secs: Option<Spanned<i64>>,
    pub max_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    pub durable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGraph {
    pub database_url: Option<Spanned<String>>,
    pub policy: Spanned<String>,
    #[serde(default)]
    pub migrate: bool,
    pub cache_principals: Option<Spanned<i64>>,
    pub cache_objects: Option<Spanned<i64>>,
}

/// A policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub uri: Spanned<String>,
    pub publish: Option<RawRequirement>,
    pub subscribe: Option<RawRequirement>,
    pub call: Option<RawRequirement>,
    pub register: Option<RawRequirement>,
}

/// `"read"`, or `{ level = "read", roles = ["controller"] }`. Untagged enums lose
/// spans, so errors in a requirement point at its rule's `uri`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRequirement {
    Level(String),
    Table(RawRequirementTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirementTable {
    pub level: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub name: Spanned<String>,
    #[serde(default)]
    pub permissions: Vec<RawPermission>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPermission {
    pub uri: Spanned<String>,
    #[serde(rename = "match")]
    pub match_policy: Option<Spanned<String>>,
    #[serde(default)]
    pub allow: RawAllow,
    #[serde(default)]
    pub disclose: RawDisclose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAllow {
    pub call: bool,
    pub register: bool,
    pub publish: bool,
    pub subscribe: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDisclose {
    pub caller: bool,
    pub publisher: bool,
}

/// A principal. Every credential is optional here; `realm.rs` requires at least one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrincipal {
    pub authid: Spanned<String>,
    pub ticket: Option<Spanned<String>>,
    pub role: Spanned<String>,
    /// WAMP-CRA secret; with `salt`, the derived key.
    pub secret: Option<Spanned<String>>,
    pub salt: Option<Spanned<String>>,
    pub iterations: Option<Spanned<i64>>,
    pub keylen: Option<Spanned<i64>>,
    /// WAMP-Cryptosign public keys, hex.
    pub cryptosign: Option<Vec<Spanned<String>>>,
}
