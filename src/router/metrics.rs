//! Router metrics, one registry per router instance (tests run several routers in one
//! process). Served as Prometheus text on `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub sessions: Gauge,
    /// Set from the memory budget when metrics are rendered.
    pub budget_used: Gauge,
    pub events_published: Counter,
    pub events_delivered: Counter,
    /// Events not queued because the subscriber's outbox was full.
    pub events_dropped_full: Counter,
    /// Events not queued because the process's memory budget was spent.
    pub events_dropped_budget: Counter,
    /// Events not sent because they exceed the subscriber's maximum message size.
    pub events_dropped_too_large: Counter,
    /// Events not sent because they could not be encoded for the subscriber's serializer.
    pub events_dropped_untranscodable: Counter,
    /// Events not delivered to a subscriber that may not read the event's object (a
    /// pattern subscription over protected topics, or a permission just withdrawn).
    pub events_filtered: Counter,
    /// Events held back from a subscriber because its permission could not be decided
    /// (the permission database unreachable, or a change being applied).
    pub events_held: Counter,
    /// Subscriptions and registrations ended because their permission was withdrawn.
    pub subscriptions_revoked: Counter,
    pub registrations_revoked: Counter,
    /// Sessions closed by the router (`wamp.close.revoked`, kills).
    pub sessions_closed_by_router: Counter,
    /// Sessions closed because their control inbox was full.
    pub control_overflows: Counter,
    /// Requests refused because the authorizer could not decide.
    pub authorization_failures: Counter,
    /// Requests that waited for the authorizer to find out (a cache miss).
    pub authorization_waits: Counter,
    /// Per realm with a database-backed authorizer: 1 while it can decide, 0 while it
    /// fails closed. Set when metrics are rendered.
    pub authorizer_online: Family<Vec<(String, String)>, Gauge>,
    /// Per realm of the permission graph: the last change-log seq applied.
    pub authorizer_applied: Family<Vec<(String, String)>, Gauge>,
    /// Subscriptions that started with history (`_replay`).
    pub replays: Counter,
    /// Times a subscriber's outbox was full on a stored topic: it lags and is caught up.
    pub subscribers_lagged: Counter,
    /// History events delivered on a subscription that asked for them (`_replay`).
    pub events_replayed: Counter,
    /// Events delivered late from the store to a subscriber that lagged.
    pub events_caught_up: Counter,
    /// Events a subscriber should have had but the store no longer held (`_gap`).
    pub events_gap: Counter,
    /// Per realm: the replay store's counters, set when metrics are rendered.
    pub replay_stored: Family<Vec<(String, String)>, Gauge>,
    pub replay_evicted: Family<Vec<(String, String)>, Gauge>,
    pub replay_bytes: Family<Vec<(String, String)>, Gauge>,
    pub replay_topics: Family<Vec<(String, String)>, Gauge>,
    /// Per realm with durable topics: rows committed, rows whose batch failed, events
    /// waiting in the writer's queue.
    pub durable_committed: Family<Vec<(String, String)>, Gauge>,
    pub durable_failed: Family<Vec<(String, String)>, Gauge>,
    pub durable_queue: Family<Vec<(String, String)>, Gauge>,
    pub durable_online: Family<Vec<(String, String)>, Gauge>,
    /// Requests refused by a realm's `[limits]`, by realm and kind.
    pub quota_refusals: Family<Vec<(String, String)>, Counter>,
    /// Publications to durable topics refused while the database was not connected.
    pub publications_refused_offline: Counter,
    /// EVENT frames encoded: one per (subscription, serializer) per publication.
    pub event_encodes: Counter,
    pub calls: Counter,
    /// CALLs refused because the caller had `max_calls_per_session` in flight.
    pub calls_refused: Counter,
    pub calls_timed_out: Counter,
    pub protocol_violations: Counter,
    /// Messages refused for a payload the router cannot carry (too deep, not representable).
    pub payloads_refused: Counter,
    pub oversized_messages: Counter,
    /// Large inbound messages that had to wait for the memory budget.
    pub inbound_budget_waits: Counter,
    /// Connections closed because a message was not completed within the frame timeout.
    pub incomplete_messages: Counter,
    pub sessions_refused: Counter,
    /// Times freed memory was handed back to the system after a wave of closes.
    pub memory_trims: Counter,
    /// `accept` calls that failed (out of descriptors, memory, ...).
    pub accept_errors: Counter,
    /// Connections closed to make room: the oldest without a session, at the limit.
    pub connections_evicted: Counter,
    /// Authentications refused for a wrong secret.
    pub auth_failures: Counter,
    /// Authentications refused unchecked: the peer failed too often.
    pub auth_throttled: Counter,
    /// TLS handshakes that failed or did not finish within the handshake deadline
    /// (plain TCP clients on a TLS port among them).
    pub tls_handshakes_failed: Counter,
    /// Certificate reloads (SIGHUP), by `result` (`ok`, `failed`).
    pub tls_reloads: Family<Vec<(String, String)>, Counter>,
    /// `notAfter` of the certificate being served, in Unix seconds.
    pub tls_certificate_expiry: Gauge,
    /// HTTP bridge requests answered, by endpoint and status code.
    pub http_bridge_requests: Family<BridgeLabels, Counter>,
}

/// The labels of `http_bridge_requests`: fixed strings and a number, so counting a
/// request allocates nothing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BridgeLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchyard");
        let m = Metrics {
            sessions: Gauge::default(),
            budget_used: Gauge::default(),
            events_published: Counter::default(),
            events_delivered: Counter::default(),
            events_dropped_full: Counter::default(),
            events_dropped_too_large: Counter::default(),
            events_dropped_budget: Counter::default(),
            event_encodes: Counter::default(),
            events_dropped_untranscodable: Counter::default(),
            calls: Counter::default(),
            calls_refused: Counter::default(),
            calls_timed_out: Counter::default(),
            protocol_violations: Counter::default(),
            payloads_refused: Counter::default(),
            oversized_messages: Counter::default(),
            incomplete_messages: Counter::default(),
            inbound_budget_waits: Counter::default(),
            sessions_refused: Counter::default(),
            connections_evicted: Counter::default(),
            accept_errors: Counter::default(),
            memory_trims: Counter::default(),
            auth_failures: Counter::default(),
            auth_throttled: Counter::default(),
            events_filtered: Counter::default(),
            events_held: Counter::default(),
            subscriptions_revoked: Counter::default(),
            registrations_revoked: Counter::default(),
            sessions_closed_by_router: Counter::default(),
            control_overflows: Counter::default(),
            authorization_failures: Counter::default(),
            authorization_waits: Counter::default(),
            authorizer_online: Family::default(),
            authorizer_applied: Family::default(),
            replays: Counter::default(),
            subscribers_lagged: Counter::default(),
            events_replayed: Counter::default(),
            events_caught_up: Counter::default(),
            events_gap: Counter::default(),
            replay_stored: Family::default(),
            replay_evicted: Family::default(),
            replay_bytes: Family::default(),
            replay_topics: Family::default(),
            durable_committed: Family::default(),
            durable_failed: Family::default(),
            durable_queue: Family::default(),
            durable_online: Family::default(),
            quota_refusals: Family::default(),
            publications_refused_offline: Counter::default(),
            tls_handshakes_failed: Counter::default(),
            tls_reloads: Family::default(),
            tls_certificate_expiry: Gauge::default(),
            http_bridge_requests: Family::default(),
            registry: Registry::default(),
        };
        registry.register("sessions", "Established sessions", m.sessions.clone());
        registry.register("events_published", "Publications accepted", m.events_published.clone());
        registry.register("events_delivered", "EVENTs queued to subscribers", m.events_delivered.clone());
        registry.register("events_dropped_outbox_full", "EVENTs dropped: subscriber outbox full", m.events_dropped_full.clone());
        registry.register(
            "events_dropped_too_large",
            "EVENTs dropped: larger than the subscriber's maximum message size",
            m.events_dropped_too_large.clone(),
        );
        registry.register(
            "events_dropped_untranscodable",
            "EVENTs dropped: the payload could not be encoded for the subscriber's serializer",
            m.events_dropped_untranscodable.clone(),
        );
        registry.register(
            "events_dropped_budget",
            "EVENTs dropped: the process's memory budget was spent",
            m.events_dropped_budget.clone(),
        );
        registry.register(
            "memory_budget_used_bytes",
            "Bytes held in partially received and queued messages, charged to memory_budget_bytes",
            m.budget_used.clone(),
        );
        registry.register("event_encodes", "EVENT frames encoded (once per subscription and serializer)", m.event_encodes.clone());
        registry.register("calls", "CALLs routed to a callee", m.calls.clone());
        registry.register("calls_refused", "CALLs refused: the caller had max_calls_per_session in flight", m.calls_refused.clone());
        registry.register("calls_timed_out", "Calls ended by the router at their timeout (wamp.error.timeout)", m.calls_timed_out.clone());
        registry.register("protocol_violations", "Sessions aborted for a protocol violation", m.protocol_violations.clone());
        registry.register(
            "payloads_refused",
            "Messages refused with wamp.error.invalid_argument: a payload too deep or not representable in every serializer",
            m.payloads_refused.clone(),
        );
        registry.register("oversized_messages", "Connections closed for a message above the size limit", m.oversized_messages.clone());
        registry.register(
            "incomplete_messages",
            "Connections closed: a message not completed within frame_timeout_ms of its first byte",
            m.incomplete_messages.clone(),
        );
        registry.register(
            "inbound_budget_waits",
            "Large inbound messages that waited for the memory budget before being read",
            m.inbound_budget_waits.clone(),
        );
        registry.register("sessions_refused", "Connections refused at the session limit", m.sessions_refused.clone());
        registry.register(
            "connections_evicted",
            "Connections without a session closed to make room for a new one at the connection limit",
            m.connections_evicted.clone(),
        );
        registry.register(
            "memory_trims",
            "Times freed memory was handed back to the system after a wave of closed connections",
            m.memory_trims.clone(),
        );
        registry.register("accept_errors", "accept() calls that failed (e.g. out of descriptors)", m.accept_errors.clone());
        registry.register(
            "events_filtered",
            "EVENTs not delivered to a subscriber that may not read the event's object",
            m.events_filtered.clone(),
        );
        registry.register(
            "events_held",
            "EVENTs held back: the subscriber's permission could not be decided at that moment",
            m.events_held.clone(),
        );
        registry.register("subscriptions_revoked", "Subscriptions ended: permission withdrawn", m.subscriptions_revoked.clone());
        registry.register("registrations_revoked", "Registrations ended: permission withdrawn", m.registrations_revoked.clone());
        registry.register(
            "sessions_closed_by_router",
            "Sessions closed by the router (token revoked or expired, user disabled, killed)",
            m.sessions_closed_by_router.clone(),
        );
        registry.register("control_overflows", "Sessions closed: their control inbox was full", m.control_overflows.clone());
        registry.register(
            "authorization_failures",
            "Requests refused with wamp.error.authorization_failed: the authorizer could not decide",
            m.authorization_failures.clone(),
        );
        registry.register(
            "authorization_waits",
            "Requests that waited for the authorizer to find out (not cached)",
            m.authorization_waits.clone(),
        );
        registry.register(
            "graph_online",
            "1 while the realm's permission database is reachable and caught up, 0 while it fails closed",
            m.authorizer_online.clone(),
        );
        registry.register(
            "graph_applied_seq",
            "The last permission-graph change-log seq the realm has applied (re-checks done)",
            m.authorizer_applied.clone(),
        );
        registry.register("replays", "Subscriptions that started with history (_replay)", m.replays.clone());
        registry.register(
            "subscribers_lagged",
            "Times a subscriber's outbox was full on a stored topic (it is caught up from the store, not dropped from)",
            m.subscribers_lagged.clone(),
        );
        registry.register("events_replayed", "History EVENTs delivered on subscriptions that asked for them", m.events_replayed.clone());
        registry.register("events_caught_up", "EVENTs delivered late from the replay store to a lagging subscriber", m.events_caught_up.clone());
        registry.register("events_gap", "EVENTs a subscriber missed because the store had evicted them (told as _gap)", m.events_gap.clone());
        registry.register("replay_stored_events", "Events appended to the realm's replay store since start", m.replay_stored.clone());
        registry.register(
            "replay_evicted_events",
            "Events evicted from the realm's replay store since start, by reason (retention, age, budget)",
            m.replay_evicted.clone(),
        );
        registry.register("replay_bytes", "Bytes the realm's replay store holds (charged against its budget)", m.replay_bytes.clone());
        registry.register("replay_topics", "Topics the realm's replay store holds", m.replay_topics.clone());
        registry.register("replay_durable_committed_events", "Events committed to the realm's durable store since start", m.durable_committed.clone());
        registry.register(
            "replay_durable_failed_events",
            "Events whose batch failed to commit to the durable store (delivered, not durable; PUBLISHED answered with an error)",
            m.durable_failed.clone(),
        );
        registry.register("replay_durable_queue", "Events waiting for the durable store's writer", m.durable_queue.clone());
        registry.register(
            "replay_durable_online",
            "1 while the realm's durable event store is connected, 0 while durable topics refuse publications",
            m.durable_online.clone(),
        );
        registry.register(
            "quota_refusals",
            "Requests refused by a realm's [limits], by kind: publication and call (over the session's rate), session (max_sessions), authid_session (max_sessions_per_authid)",
            m.quota_refusals.clone(),
        );
        registry.register(
            "publications_refused_offline",
            "Publications to durable topics refused: the durable event store was not connected",
            m.publications_refused_offline.clone(),
        );
        registry.register("auth_failures", "Authentications refused: wrong secret", m.auth_failures.clone());
        registry.register(
            "auth_throttled",
            "Authentications refused unchecked: too many failures from that address",
            m.auth_throttled.clone(),
        );
        registry.register(
            "tls_handshakes_failed",
            "TLS handshakes that failed or did not finish within handshake_timeout_ms (plain clients on a TLS port among them)",
            m.tls_handshakes_failed.clone(),
        );
        registry.register(
            "tls_certificate_reloads",
            "Certificate reloads on SIGHUP, by result (ok; failed: the previous certificate is kept)",
            m.tls_reloads.clone(),
        );
        registry.register(
            "tls_certificate_expiry_seconds",
            "notAfter of the TLS certificate being served, in Unix seconds (0 without TLS)",
            m.tls_certificate_expiry.clone(),
        );
        registry.register(
            "http_bridge_requests",
            "HTTP bridge requests (POST /publish, POST /call) answered, by endpoint and status code",
            m.http_bridge_requests.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a request refused by `realm`'s limits.
    pub fn quota_refused(&self, realm: &str, kind: &str) {
        self.quota_refusals.get_or_create(&vec![("realm".to_owned(), realm.to_owned()), ("kind".to_owned(), kind.to_owned())]).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}
