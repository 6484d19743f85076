//! A realm: one broker, one dealer, an authenticator and an authorizer. Realms share
//! nothing, so a hot realm never slows another.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::broker::Broker;
use super::dealer::Dealer;
use super::handle::SessionHandle;
use super::metrics::Metrics;
use crate::auth::{Action, Authenticator, Authorizer, Decision, StaticRoles};
use crate::config::{Limits, RealmConfig};
use crate::wamp::ids::{IdSequence, SessionId};

#[derive(Debug)]
pub struct Realm {
    pub name: String,
    pub broker: Broker,
    pub dealer: Dealer,
    pub authenticator: Authenticator,
    authorizer: Box<dyn Authorizer>,
    /// Router-scope ids (subscriptions, registrations).
    pub ids: IdSequence,
    sessions: RwLock<HashMap<SessionId, Arc<SessionHandle>>>,
}

impl Realm {
    pub fn from_config(cfg: &RealmConfig, limits: &Limits, metrics: Arc<Metrics>) -> Realm {
        Realm {
            name: cfg.name.clone(),
            broker: Broker::new(metrics.clone()),
            dealer: Dealer::new(metrics, limits.max_calls_per_session),
            authenticator: Authenticator::from_config(cfg, limits.auth_failures_per_minute),
            authorizer: Box::new(StaticRoles::from_config(cfg)),
            ids: IdSequence::new(),
            sessions: RwLock::default(),
        }
    }

    pub fn authorize(&self, session: &SessionHandle, action: Action, uri: &str) -> Decision {
        self.authorizer.authorize(&session.authrole, action, uri)
    }

    pub fn join(&self, handle: Arc<SessionHandle>) {
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).insert(handle.id, handle);
    }

    /// Removes a session and everything it held: its subscriptions and registrations
    /// (the ids it passes in, so leaving costs what the session held, not the realm's
    /// size) and its calls in flight.
    pub fn leave(&self, id: SessionId, subscriptions: impl IntoIterator<Item = u64>, registrations: impl IntoIterator<Item = u64>) {
        for sub in subscriptions {
            self.broker.unsubscribe(id, sub);
        }
        self.dealer.session_closed(id, registrations);
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    pub fn session_count(&self) -> usize {
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn sessions(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}
