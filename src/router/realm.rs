//! A realm: one broker, one dealer, an authenticator and an authorizer, and the live
//! sessions by id and by authid. Realms share nothing, so a hot realm never slows
//! another.
//!
//! The realm follows its authorizer's change feed (`follow_changes`): whose answers
//! changed is turned into re-checks in those sessions' control inboxes, and sessions
//! that must end (a revoked token, a disabled user) are told to close. The sessions
//! do the rest on their own tasks.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::bridge::rates::BridgeRates;
use super::broker::{Broker, Unsubscribed};
use super::control::{Closing, Control};
use super::dealer::{Dealer, Detached};
use super::error::WampError;
use super::handle::SessionHandle;
use super::metrics::Metrics;
use super::RealmAuth;
use crate::auth::{Authenticator, Authorizer, ChangeBatch, CredentialKind, StaticRoles};
use crate::config::{Limits, RealmConfig, RealmLimits};
use crate::replay::{self, Retention, Rule, Store};
use crate::wamp::ids::{IdSequence, SessionId, SubscriptionId};

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<SessionId, Arc<SessionHandle>>,
    by_authid: HashMap<String, Vec<SessionId>>,
}

#[derive(Debug)]
pub struct Realm {
    pub name: String,
    pub broker: Broker,
    pub dealer: Dealer,
    pub authenticator: Authenticator,
    pub authorizer: Arc<dyn Authorizer>,
    /// Router-scope ids (subscriptions, registrations).
    pub ids: IdSequence,
    pub limits: RealmLimits,
    /// The realm's rates for HTTP bridge requests, per authid or anonymous address.
    pub bridge_rates: BridgeRates,
    sessions: RwLock<Sessions>,
    metrics: Arc<Metrics>,
}

impl Realm {
    pub fn from_config(cfg: &RealmConfig, limits: &Limits, metrics: Arc<Metrics>) -> Realm {
        let auth = RealmAuth { authorizer: Arc::new(StaticRoles::from_config(cfg)), tokens: None };
        Realm::new(cfg, limits, metrics, auth, None)
    }

    /// A realm authorized by `auth`, storing events in `store` (a memory store built
    /// from its `[replay]` rules when `None`).
    pub fn new(cfg: &RealmConfig, limits: &Limits, metrics: Arc<Metrics>, auth: RealmAuth, store: Option<Arc<Store>>) -> Realm {
        let mut authenticator = Authenticator::from_config(cfg, limits.auth_failures_per_minute);
        if let Some(tokens) = auth.tokens {
            authenticator = authenticator.with_tokens(tokens);
        }
        Realm {
            name: cfg.name.clone(),
            broker: Broker::new(metrics.clone(), store.unwrap_or_else(|| Arc::new(Store::new(retention(cfg))))),
            dealer: Dealer::new(metrics.clone(), limits.max_calls_per_session),
            authenticator,
            authorizer: auth.authorizer,
            ids: IdSequence::new(),
            limits: cfg.limits.clone(),
            bridge_rates: BridgeRates::new(&cfg.limits),
            sessions: RwLock::default(),
            metrics,
        }
    }

    /// Deletes the durable store's rows past retention, every ten seconds, once the
    /// store is connected (at start, or later when the database comes); returns at once
    /// for a realm without durable topics.
    pub async fn prune_durable(self: Arc<Self>) {
        if !self.broker.store().retention().any_durable() {
            return;
        }
        let store = self.broker.store().clone();
        drop(self);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            let Some(durable) = store.durable() else { continue };
            if let Err(e) = durable.prune(store.retention()).await {
                tracing::warn!(realm = durable.realm(), error = %e, "pruning the durable event store failed; retrying later");
            }
        }
    }

    /// Ends calls at their timeout as the deadlines pass, until the realm is dropped.
    pub async fn expire_calls(self: Arc<Self>) {
        let timer = self.dealer.timer();
        let realm = Arc::downgrade(&self);
        drop(self);
        loop {
            let next = match realm.upgrade() {
                Some(realm) => realm.dealer.expire(std::time::Instant::now()),
                None => return,
            };
            // Woken early by a call with an earlier deadline; at least once a second,
            // to notice a dropped realm.
            let wait = next.unwrap_or_else(|| std::time::Instant::now() + std::time::Duration::from_secs(1));
            let _ = tokio::time::timeout_at(wait.into(), timer.notified()).await;
        }
    }

    /// Expires stored events past their age limit, once a second, until the realm is
    /// dropped; returns at once for a realm that stores nothing.
    pub async fn sweep_store(self: Arc<Self>) {
        if self.broker.store().retention().is_empty() {
            return;
        }
        let realm = Arc::downgrade(&self);
        drop(self);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(realm) = realm.upgrade() else { return };
            realm.broker.store().sweep(std::time::SystemTime::now());
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Sessions> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Sessions> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a session unless the realm's `[limits]` say it is full (for all, or for
    /// this authid): then the error says which, and the refusal is counted.
    pub fn join(self: &Arc<Self>, handle: Arc<SessionHandle>) -> Result<(), WampError> {
        let mut s = self.write();
        if let Some(max) = self.limits.max_sessions.filter(|max| s.by_id.len() >= *max) {
            drop(s);
            self.metrics.quota_refused(&self.name, "session");
            return Err(WampError::LimitReached(format!("realm '{}' holds at most {max} sessions", self.name)));
        }
        let theirs = s.by_authid.get(&handle.authid).map_or(0, Vec::len);
        if let Some(max) = self.limits.max_sessions_per_authid.filter(|max| theirs >= *max) {
            drop(s);
            self.metrics.quota_refused(&self.name, "authid_session");
            return Err(WampError::LimitReached(format!("'{}' may hold at most {max} sessions in realm '{}'", handle.authid, self.name)));
        }
        if let Some(at) = handle.expires_at {
            self.close_at(&handle, at);
        }
        s.by_authid.entry(handle.authid.clone()).or_default().push(handle.id);
        s.by_id.insert(handle.id, handle);
        Ok(())
    }

    /// A session lives no longer than its credential: at `at` it is told GOODBYE
    /// `wamp.close.revoked`. The timer holds neither the session nor the realm.
    fn close_at(self: &Arc<Self>, handle: &Arc<SessionHandle>, at: std::time::SystemTime) {
        let (realm, session) = (Arc::downgrade(self), Arc::downgrade(handle));
        let wait = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let (Some(realm), Some(session)) = (realm.upgrade(), session.upgrade()) {
                realm.revoke_session(&session, "the token expired");
            }
        });
    }

    /// Removes a session and everything it held: its subscriptions and registrations
    /// (the ids it passes in, so leaving costs what the session held, not the realm's
    /// size) and its calls in flight.
    /// Returns what it detached from, for the meta events.
    pub fn leave(
        &self,
        id: SessionId,
        subscriptions: impl IntoIterator<Item = u64>,
        registrations: impl IntoIterator<Item = u64>,
    ) -> (Vec<Unsubscribed>, Vec<Detached>) {
        let unsubscribed = subscriptions.into_iter().filter_map(|sub| self.broker.unsubscribe(id, SubscriptionId(sub))).collect();
        let unregistered = self.dealer.session_closed(id, registrations);
        let mut s = self.write();
        if let Some(handle) = s.by_id.remove(&id) {
            if let Some(ids) = s.by_authid.get_mut(&handle.authid) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    s.by_authid.remove(&handle.authid);
                }
            }
        }
        (unsubscribed, unregistered)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn session(&self, id: SessionId) -> Option<Arc<SessionHandle>> {
        self.read().by_id.get(&id).cloned()
    }

    pub fn session_count(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn sessions(&self) -> Vec<Arc<SessionHandle>> {
        self.read().by_id.values().cloned().collect()
    }

    /// The live sessions of `authid`.
    pub fn sessions_of(&self, authid: &str) -> Vec<Arc<SessionHandle>> {
        let s = self.read();
        s.by_authid.get(authid).map_or_else(Vec::new, |ids| ids.iter().filter_map(|id| s.by_id.get(id).cloned()).collect())
    }

    /// Hands `c` to a session; a session that cannot take it is closed and counted.
    pub fn control(&self, session: &SessionHandle, c: Control) {
        if session.control(c).is_err() {
            self.metrics.control_overflows.inc();
        }
    }

    /// Closes a session whose credential or user no longer holds: GOODBYE
    /// `wamp.close.revoked` saying why.
    fn revoke_session(&self, session: &SessionHandle, message: &str) {
        let closing = Closing { reason: "wamp.close.revoked".into(), message: message.to_owned() };
        self.control(session, Control::Close(Box::new(closing)));
    }

    /// Follows the authorizer's change feed until the realm is dropped; returns at once
    /// for an authorizer whose answers never change.
    pub async fn follow_changes(self: Arc<Self>) {
        let Some(feed) = self.authorizer.changes() else { return };
        loop {
            let batch = feed.next().await;
            self.apply(batch);
        }
    }

    fn apply(&self, batch: ChangeBatch) {
        let rechecked: Vec<Arc<SessionHandle>> = if batch.recheck_all {
            self.sessions()
        } else {
            batch.recheck.iter().flat_map(|authid| self.sessions_of(authid)).collect()
        };
        for session in rechecked {
            session.inbox.request_recheck();
        }
        for ending in batch.end {
            for session in self.sessions_of(&ending.authid) {
                if ending.token.is_some() && session.token != ending.token {
                    continue;
                }
                self.revoke_session(&session, &ending.message);
            }
        }
        for (kind, message) in batch.end_opened_with {
            for session in self.sessions() {
                if session.token.as_deref().map(CredentialKind::of) == Some(kind) {
                    self.revoke_session(&session, &message);
                }
            }
        }
    }
}

/// The realm's retention rules from its `[replay]` table.
pub fn retention(cfg: &RealmConfig) -> Retention {
    let rules = cfg
        .replay
        .topics
        .iter()
        .map(|t| Rule {
            uri: t.uri.clone(),
            policy: t.policy,
            limits: replay::Limits { max_events: t.max_events, max_age: t.max_age, max_bytes: t.max_bytes, durable: t.durable },
        })
        .collect();
    Retention::new(rules, cfg.replay.budget_bytes)
}
