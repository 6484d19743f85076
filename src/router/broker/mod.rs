//! The broker: subscriptions and the fan-out of publications.
//!
//! One subscription per (topic, match policy), shared by all its subscribers, so an
//! EVENT is encoded once per subscription and serializer and the same `Bytes` is queued
//! to every subscriber. Lookups go through `router::patterns`.
//!
//! Publications on one topic are ordered by its stripe of the replay store
//! (`replay::Store`): under that lock a stored topic's event gets its position, is
//! appended, and is handed to every subscriber. A subscriber is attached under the same
//! lock (every stripe, for a pattern), with its SUBSCRIBED queued before the lock is
//! released: so SUBSCRIBED precedes the first EVENT, and the events a subscription
//! receives live are exactly those stored after its attach point (`Subscriber::attached`).
//!
//! A subscriber whose outbox is full is not dropped from on a stored topic: it turns
//! lagging, publishers note where each topic left off, and it is caught up from the
//! store as its outbox drains (`catchup.rs`). A subscription asked to start with history
//! (`SUBSCRIBE.Options._replay`) starts lagging at its history's first event. On topics
//! without a store, a full outbox drops the event and the next one says so (`_dropped`).
//!
//! A subscriber whose permission can change carries a guard (`auth::Guard`) asked per
//! event: it stops delivery the moment the permission is gone.

mod catchup;
mod filter;
mod history;
mod subscription;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;

pub use filter::{flag, Recipients};
pub use history::{History, HistoryQuery, ReplayFrom, Start};
pub use subscription::{Subscriber, Subscription};
use subscription::{LAGGING, LIVE};

use super::handle::SessionHandle;
use super::metrics::Metrics;
use super::outbox::PushError;
use super::patterns::Patterns;
use crate::auth::{Admit, Guard};
use crate::replay::durable::{Commit, Slot};
use crate::replay::{Seq, Store, StoredEvent, StripeGuard};
use crate::wamp::ids::{global_id, IdSequence, PublicationId, SessionId, SubscriptionId};
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Args, Dict, Message, Serializer, Value};

#[derive(Debug, Default)]
struct Index {
    patterns: Patterns<Arc<Subscription>>,
    by_id: std::collections::HashMap<SubscriptionId, Arc<Subscription>>,
}

impl Index {
    fn find(&self, uri: &str, policy: MatchPolicy) -> Option<&Arc<Subscription>> {
        self.patterns.get(uri, policy)
    }

    fn insert(&mut self, sub: Arc<Subscription>) {
        self.patterns.insert(&sub.uri, sub.policy, sub.clone());
        self.by_id.insert(sub.id, sub);
    }

    fn remove(&mut self, sub: &Subscription) {
        self.patterns.remove(&sub.uri, sub.policy);
        self.by_id.remove(&sub.id);
    }

    fn matching(&self, topic: &str, out: &mut Vec<Arc<Subscription>>) {
        self.patterns.matching(topic, out);
    }
}

#[derive(Debug)]
pub struct Broker {
    index: RwLock<Index>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// Publisher details of a publication that discloses nothing, shared.
    undisclosed: Arc<Dict>,
}

/// What a publication needs besides its topic and payload.
pub struct Publication<'a> {
    /// The publishing session; `None` for the router's own events (the meta API).
    pub publisher: Option<&'a SessionHandle>,
    pub topic: &'a str,
    pub recipients: Recipients,
    pub disclose: bool,
    pub payload: Args,
    /// `retain: true`: the topic's retained event (spec: event retention).
    pub retain: bool,
    /// The `ppt_*` attributes of a payload passthru publication, for EVENT.Details.
    pub ppt: Option<Dict>,
    /// A place in the durable writer's queue, taken before publishing to a durable
    /// topic (`Store::durable_for`).
    pub slot: Option<Slot>,
}

impl<'a> Publication<'a> {
    /// The publication a client's PUBLISH (or HTTP POST /publish) asks for, from its
    /// options: recipient lists and `exclude_me`, `disclose_me` (or the role's
    /// `disclose`), `retain`. A list or flag of the wrong type is `invalid_argument`.
    pub fn from_options(
        publisher: &'a SessionHandle,
        topic: &'a str,
        options: &Dict,
        payload: Args,
        role_discloses: bool,
        ppt: Option<Dict>,
        slot: Option<Slot>,
    ) -> Result<Publication<'a>, super::error::WampError> {
        let recipients = Recipients::from_options(publisher.id, options)?;
        let disclose = role_discloses || options.get("disclose_me").and_then(Value::as_bool).unwrap_or(false);
        let retain = flag(options, "retain", false)?;
        Ok(Publication { publisher: Some(publisher), topic, recipients, disclose, payload, retain, ppt, slot })
    }
}

/// What became of a publication: its id and, on a durable topic, its commit.
pub struct Published {
    pub publication: u64,
    pub stored: Option<Arc<StoredEvent>>,
    pub commit: Option<Commit>,
}

/// A session attached to a subscription: `created` when the subscription is new,
/// `added` unless the session was already subscribed.
pub struct Subscribed {
    pub sub: Arc<Subscription>,
    pub created: bool,
    pub added: bool,
}

/// A session detached from a subscription; `deleted` when it was the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribed {
    pub subscription: SubscriptionId,
    pub deleted: bool,
}

/// A new subscriber: who, to what, under which guard, and from where.
pub struct Attach<'a> {
    pub session: &'a Arc<SessionHandle>,
    pub uri: &'a str,
    pub policy: MatchPolicy,
    pub guard: Option<Arc<dyn Guard>>,
    /// History to deliver before live events (`_replay`), and the retained event.
    pub start: Start,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Critical sections never leave the data half-updated, so poisoning is ignored.
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Broker {
    pub fn new(metrics: Arc<Metrics>, store: Arc<Store>) -> Broker {
        Broker { index: RwLock::default(), store, metrics, undisclosed: Arc::new(Dict::new()) }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Adds the session to the subscription for (uri, policy), creating it if needed,
    /// and calls `announce` with its id (to queue SUBSCRIBED) while the topic's stripe
    /// (every stripe, for a pattern) is held: no event can come between the attach
    /// point and the announcement. Subscribing twice returns the same subscription and
    /// asks for no history again. `ids` is the router-scope id sequence.
    pub fn subscribe(&self, a: Attach<'_>, ids: &IdSequence, announce: impl FnOnce(u64)) -> Subscribed {
        let stripes = self.store.lock_covering(a.uri, a.policy);
        let mut index = write(&self.index);
        let found = index.find(a.uri, a.policy).cloned();
        let created = found.is_none();
        let sub = match found {
            Some(s) => s,
            None => {
                let s = Arc::new(Subscription {
                    id: SubscriptionId(ids.next()),
                    uri: a.uri.to_owned(),
                    policy: a.policy,
                    created: SystemTime::now(),
                    subscribers: RwLock::default(),
                });
                index.insert(s.clone());
                s
            }
        };
        let mut subs = write(&sub.subscribers);
        if let Some(existing) = subs.iter().find(|s| s.session.id == a.session.id) {
            let _ = existing;
            drop(subs);
            drop(index);
            announce(sub.id.0);
            return Subscribed { sub, created: false, added: false };
        }
        drop(index);
        let attached = self.store.last_seq();
        let plan = history::plan(&sub, &a.start, &stripes);
        let subscriber = Arc::new(Subscriber {
            session: a.session.clone(),
            dropped: AtomicU64::new(0),
            state: AtomicU8::new(if plan.is_some() { LAGGING } else { LIVE }),
            guard: a.guard,
            attached,
            lag: Mutex::default(),
            busy: Mutex::default(),
            registered: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some(plan) = &plan {
            let mut lag = subscriber.lag();
            lag.next = plan.next.clone();
            lag.gap = plan.gap;
            lag.history_until = attached;
        }
        subs.push(subscriber.clone());
        drop(subs);
        announce(sub.id.0);
        if a.start.retained {
            self.send_retained(&sub, &subscriber, &stripes);
        }
        drop(stripes);
        if plan.is_some() {
            self.metrics.replays.inc();
            catchup::start(&self.store, &self.metrics, &sub, &subscriber);
        }
        Subscribed { sub, created, added: true }
    }

    /// Removes `session` from subscription `id`; the subscription goes away with its last
    /// subscriber so the index never keeps topics nobody listens to. `None` if the
    /// session was not subscribed, else whether the subscription was deleted.
    pub fn unsubscribe(&self, session: SessionId, id: SubscriptionId) -> Option<Unsubscribed> {
        let mut index = write(&self.index);
        let sub = index.by_id.get(&id).cloned()?;
        let mut subs = write(&sub.subscribers);
        let before = subs.len();
        subs.retain(|s| s.session.id != session);
        if subs.len() == before {
            return None;
        }
        let deleted = subs.is_empty();
        if deleted {
            drop(subs);
            index.remove(&sub);
        }
        Some(Unsubscribed { subscription: id, deleted })
    }

    /// The ids of every subscription, by match policy (exact, prefix, wildcard).
    pub fn subscription_ids(&self) -> [Vec<u64>; 3] {
        super::patterns::ids_by_policy(read(&self.index).by_id.values().map(|s| (s.policy, s.id.0)))
    }

    /// The subscription of exactly (uri, policy), if any.
    pub fn lookup(&self, uri: &str, policy: MatchPolicy) -> Option<SubscriptionId> {
        read(&self.index).find(uri, policy).map(|s| s.id)
    }

    /// Every subscription an event on `topic` would go to.
    pub fn matching(&self, topic: &str) -> Vec<Arc<Subscription>> {
        let mut out = Vec::new();
        read(&self.index).matching(topic, &mut out);
        out
    }

    /// Publishes one of the router's own events (the meta API) to everyone subscribed,
    /// building its arguments only if someone is: a realm nobody watches pays one
    /// lookup per join or subscription. Never stored (`wamp.*` topics never are).
    pub fn publish_meta(&self, topic: &str, args: impl FnOnce() -> Vec<Value>) {
        if self.matching(topic).is_empty() {
            return;
        }
        let payload = Args { args: Some(crate::wamp::Payload::from_value(Serializer::Json, &Value::List(args()))), kwargs: None };
        let p = Publication { publisher: None, topic, recipients: Recipients::default(), disclose: false, payload, retain: false, ppt: None, slot: None };
        self.publish(p);
    }

    pub fn subscription(&self, id: SubscriptionId) -> Option<Arc<Subscription>> {
        read(&self.index).by_id.get(&id).cloned()
    }

    /// The history of `session`'s subscription `id` (`wamp.subscription.get_events`).
    pub fn history(&self, session: SessionId, id: SubscriptionId, q: &HistoryQuery) -> Result<History, super::error::WampError> {
        let sub = self.subscription(id).ok_or(super::error::WampError::NoSuchSubscription(id.0))?;
        let subscriber = sub.subscriber(session).ok_or(super::error::WampError::NoSuchSubscription(id.0))?;
        history::query(&self.store, &sub, &subscriber, q)
    }

    /// Number of live subscriptions (for tests of index pruning).
    pub fn subscription_count(&self) -> usize {
        read(&self.index).by_id.len()
    }

    /// Delivers a publication and returns its id and, for a stored topic, the stored
    /// event and (durable topic) its commit.
    pub fn publish(&self, mut p: Publication<'_>) -> Published {
        let publication = global_id();
        self.metrics.events_published.inc();
        // The details every subscription's EVENT starts from (and a stored event keeps).
        let publisher = match (p.publisher.filter(|_| p.disclose), p.ppt.take()) {
            (None, None) => self.undisclosed.clone(),
            (publisher, ppt) => {
                let mut d = ppt.unwrap_or_default();
                if let Some(publisher) = publisher {
                    d.insert("publisher".into(), Value::UInt(publisher.id.0));
                    d.insert("publisher_authid".into(), publisher.authid.as_str().into());
                    d.insert("publisher_authrole".into(), publisher.authrole.as_str().into());
                }
                Arc::new(d)
            }
        };
        let slot = p.slot.take();
        let mut stripe = self.store.lock(p.topic);
        let (stored, commit) = match self.store_event(&mut stripe, &p, publication, &publisher, slot) {
            Some((ev, commit)) => (Some(ev), commit),
            None => (None, None),
        };
        let mut matching = Vec::new();
        read(&self.index).matching(p.topic, &mut matching);
        for sub in &matching {
            let details = sub.event_details(&publisher, p.topic, stored.as_ref().map(|ev| ev.pos));
            let event = Message::Event { subscription: sub.id.0, publication, details, payload: p.payload.clone() };
            self.fan_out(sub, &event, &p, stored.as_ref());
        }
        drop(stripe);
        Published { publication, stored, commit }
    }

    /// Appends the publication to its topic's log if the topic is stored and the
    /// publication is for everyone (spec: a listed publication is not stored).
    fn store_event(
        &self,
        stripe: &mut StripeGuard<'_>,
        p: &Publication<'_>,
        publication: u64,
        publisher: &Arc<Dict>,
        slot: Option<Slot>,
    ) -> Option<(Arc<StoredEvent>, Option<Commit>)> {
        if self.store.retention().is_empty() || p.recipients.is_listed() {
            return None;
        }
        let (pos, topic) = stripe.next_position(p.topic)?;
        let ev = Arc::new(StoredEvent {
            topic,
            pos,
            seq: stripe.next_seq(),
            publication: PublicationId(publication),
            published_at: crate::replay::time::now_micros(),
            publisher: publisher.clone(),
            payload: p.payload.detached(),
            retain: p.retain,
            excluded: p.recipients.excluded_publisher(),
        });
        let commit = stripe.append(ev.clone(), slot);
        Some((ev, commit))
    }

    fn fan_out(&self, sub: &Arc<Subscription>, event: &Message, p: &Publication<'_>, stored: Option<&Arc<StoredEvent>>) {
        let mut frames: [Option<Option<Bytes>>; 3] = [None, None, None];
        for subscriber in read(&sub.subscribers).iter() {
            let session = &subscriber.session;
            if !p.recipients.admits(session) {
                continue;
            }
            if subscriber.state.load(Ordering::Acquire) == LAGGING {
                // Catch-up delivers it from the store; an event the store does not
                // keep is lost to this subscriber, and told.
                match stored {
                    Some(ev) => subscriber.lag().note(&ev.topic, ev.pos),
                    None => {
                        self.metrics.events_dropped_full.inc();
                        self.dropped(subscriber, "subscriber lagging on a topic without a store");
                    }
                }
                continue;
            }
            if let Some(guard) = &subscriber.guard {
                match guard.admits(p.topic) {
                    Admit::Yes => {}
                    Admit::No => {
                        self.metrics.events_filtered.inc();
                        continue;
                    }
                    Admit::Hold => {
                        // Undecidable now: on a stored topic it is caught up once the
                        // permission can be decided again; otherwise it is lost.
                        self.metrics.events_held.inc();
                        if let Some(ev) = stored {
                            self.begin_lag(sub, subscriber, ev);
                        }
                        continue;
                    }
                }
            }
            let ser = session.serializer;
            let frame = frames[ser.index()].get_or_insert_with(|| self.encode(event, ser));
            let Some(frame) = frame else {
                // Payloads are validated at the door, so this should not happen; if it
                // does, it is counted and the subscriber told, never silent.
                self.metrics.events_dropped_untranscodable.inc();
                self.dropped(subscriber, "event payload cannot be transcoded for this subscriber");
                continue;
            };
            if frame.len() > session.max_outgoing {
                self.metrics.events_dropped_too_large.inc();
                self.dropped(subscriber, "event larger than the subscriber's maximum message size");
                continue;
            }
            let missed = subscriber.dropped.swap(0, Ordering::Relaxed);
            let frame = if missed == 0 { frame.clone() } else { self.with_gap(event, ser, missed).unwrap_or_else(|| frame.clone()) };
            match session.outbox.push_event(frame) {
                Ok(()) => {
                    self.metrics.events_delivered.inc();
                }
                Err(PushError::Full | PushError::Budget) if stored.is_some() => {
                    subscriber.dropped.fetch_add(missed, Ordering::Relaxed);
                    if let Some(ev) = stored {
                        self.begin_lag(sub, subscriber, ev);
                    }
                }
                Err(e @ (PushError::Full | PushError::Budget)) => {
                    let (counter, reason) = match e {
                        PushError::Full => (&self.metrics.events_dropped_full, "subscriber too slow: outbox full"),
                        _ => (&self.metrics.events_dropped_budget, "the router's memory budget is spent"),
                    };
                    subscriber.dropped.fetch_add(missed, Ordering::Relaxed);
                    counter.inc();
                    self.dropped(subscriber, reason);
                }
                Err(_) => {}
            }
        }
    }

    /// The subscriber's outbox is full: from `ev` on it is caught up from the store.
    fn begin_lag(&self, sub: &Arc<Subscription>, subscriber: &Arc<Subscriber>, ev: &StoredEvent) {
        {
            let mut lag = subscriber.lag();
            lag.next.clear();
            lag.next.push((ev.topic.clone(), ev.pos));
            lag.history_until = Seq(0);
        }
        subscriber.state.store(LAGGING, Ordering::SeqCst);
        self.metrics.subscribers_lagged.inc();
        catchup::register(&self.store, &self.metrics, sub, subscriber);
    }

    /// Queues the topic's retained event (spec: `get_retained`), marked `retained`,
    /// right after SUBSCRIBED. Exact subscriptions only: a pattern has no one topic.
    fn send_retained(&self, sub: &Subscription, subscriber: &Subscriber, stripes: &[StripeGuard<'_>]) {
        if sub.policy != MatchPolicy::Exact {
            return;
        }
        let Some(ev) = stripes.first().and_then(|g| g.log(&sub.uri)).and_then(|l| l.retained()).cloned() else { return };
        if subscriber.may_see(&ev) != Admit::Yes {
            return;
        }
        let mut details = sub.event_details(&ev.publisher, &ev.topic, Some(ev.pos));
        details.insert("retained".into(), Value::Bool(true));
        let msg = Message::Event { subscription: sub.id.0, publication: ev.publication.0, details, payload: ev.payload.clone() };
        if let Some(frame) = self.encode(&msg, subscriber.session.serializer) {
            if subscriber.session.outbox.push_event(frame).is_err() {
                self.metrics.events_dropped_full.inc();
            }
        }
    }

    fn encode(&self, event: &Message, ser: Serializer) -> Option<Bytes> {
        self.metrics.event_encodes.inc();
        match event.encode(ser) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(serializer = ser.name(), error = %e, "event payload cannot be transcoded; not delivered");
                None
            }
        }
    }

    /// The first event after a gap carries `Details._dropped`: how many events this
    /// subscriber missed just before it. Rare, so encoded per subscriber.
    fn with_gap(&self, event: &Message, ser: Serializer, missed: u64) -> Option<Bytes> {
        let Message::Event { subscription, publication, details, payload } = event else { return None };
        let mut details = details.clone();
        details.insert("_dropped".into(), Value::UInt(missed));
        let marked = Message::Event { subscription: *subscription, publication: *publication, details, payload: payload.clone() };
        self.encode(&marked, ser)
    }

    /// Counts an event not delivered. Logged when the session's total reaches a power of
    /// two, so a stuck subscriber cannot flood the log.
    fn dropped(&self, subscriber: &Subscriber, reason: &'static str) {
        subscriber.dropped.fetch_add(1, Ordering::Relaxed);
        let total = subscriber.session.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            tracing::warn!(session = %subscriber.session.id, dropped_total = total, "event dropped: {reason}");
        }
    }
}

#[cfg(test)]
mod tests;
