//! A subscription (one per topic and match policy) and its subscribers, with the
//! state the broker keeps per subscriber: live or lagging, where it attached, and, while
//! it lags, where each topic must resume.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use crate::auth::{Admit, Guard};
use crate::replay::{Position, Seq, StoredEvent};
use crate::router::handle::SessionHandle;
use crate::wamp::ids::{SessionId, SubscriptionId};
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Dict, Value};

/// Events are queued to the subscriber as they are published.
pub(super) const LIVE: u8 = 0;
/// Its outbox could not take an event of a stored topic (or it starts with history):
/// publishers skip it and note where each topic left off; `catchup.rs` delivers.
pub(super) const LAGGING: u8 = 1;

#[derive(Debug)]
pub struct Subscriber {
    pub session: Arc<SessionHandle>,
    /// Events dropped since the last one delivered; reported in the next EVENT.
    pub(super) dropped: AtomicU64,
    pub(super) state: AtomicU8,
    pub(super) guard: Option<Arc<dyn Guard>>,
    /// The realm's last stored event when this subscriber attached: its history
    /// (`get_events`) is what was stored up to here, its live events what came after.
    pub(super) attached: Seq,
    pub(super) lag: Mutex<Lag>,
    /// Held by whoever runs a catch-up round, so rounds never overlap.
    pub(super) busy: Mutex<()>,
    /// A catch-up driver is registered with the session's outbox.
    pub(super) registered: AtomicBool,
}

/// Where a lagging subscriber stands. Touched only while it lags, never on the hot
/// path of a live subscriber.
#[derive(Debug, Default)]
pub(super) struct Lag {
    /// Per topic, the next position it must receive.
    pub next: Vec<(Arc<str>, Position)>,
    /// Events the store no longer had when they were due; told in the next EVENT.
    pub gap: u64,
    /// Events stored up to here are history (`_replayed: true`).
    pub history_until: Seq,
}

impl Lag {
    /// Records that `topic` has events from `pos` on for this subscriber, unless an
    /// earlier position is already noted.
    pub fn note(&mut self, topic: &Arc<str>, pos: Position) {
        if !self.next.iter().any(|(t, _)| **t == **topic) {
            self.next.push((topic.clone(), pos));
        }
    }
}

impl Subscriber {
    pub(super) fn lag(&self) -> MutexGuard<'_, Lag> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn attached(&self) -> Seq {
        self.attached
    }

    pub fn is_lagging(&self) -> bool {
        self.state.load(Ordering::Acquire) == LAGGING
    }

    /// Whether this subscriber gets `ev` (its guard and the publisher's exclusion),
    /// for history and catch-up; live delivery asks the same per publication. `Hold`:
    /// its permission cannot be decided now (the permission database is unreachable).
    pub(super) fn may_see(&self, ev: &StoredEvent) -> Admit {
        if ev.excluded == Some(self.session.id) {
            return Admit::No;
        }
        self.guard.as_ref().map_or(Admit::Yes, |g| g.admits(&ev.topic))
    }
}

#[derive(Debug)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub uri: String,
    pub policy: MatchPolicy,
    pub created: SystemTime,
    pub(super) subscribers: RwLock<Vec<Arc<Subscriber>>>,
}

impl Subscription {
    pub fn subscriber_ids(&self) -> Vec<SessionId> {
        self.subscribers.read().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.session.id).collect()
    }

    /// The subscriber of `session`, if it is one.
    pub fn subscriber(&self, session: SessionId) -> Option<Arc<Subscriber>> {
        self.subscribers.read().unwrap_or_else(|p| p.into_inner()).iter().find(|s| s.session.id == session).cloned()
    }

    pub fn matches(&self, topic: &str) -> bool {
        crate::wamp::uri::matches(&self.uri, self.policy, topic)
    }

    /// EVENT.Details on this subscription, live or from the store alike: the
    /// publisher's identity when disclosed, the topic for a pattern, the position on a
    /// stored topic.
    pub(super) fn event_details(&self, publisher: &Dict, topic: &str, pos: Option<Position>) -> Dict {
        let mut d = publisher.clone();
        if self.policy != MatchPolicy::Exact {
            d.insert("topic".into(), topic.into());
        }
        if let Some(pos) = pos {
            d.insert("_pos".into(), Value::UInt(pos.0));
        }
        d
    }
}

