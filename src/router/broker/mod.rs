//! The broker: subscriptions and the fan-out of publications.
//!
//! One subscription per (topic, match policy), shared by all its subscribers, so an
//! EVENT is encoded once per subscription and serializer and the same `Bytes` is queued
//! to every subscriber. Lookups: exact topics in a hash map, prefixes in a patricia
//! tree, wildcards in a component trie. Publications on one topic are ordered by a
//! striped lock held while the event is queued (never across an await).
//!
//! A new subscriber is not live until its SUBSCRIBED is queued (`subscribe` takes the
//! announcement as a callback), so no EVENT of a subscription can overtake the reply
//! that names it. A subscriber whose permission can change carries a guard
//! (`auth::Guard`) asked per event: it stops delivery the moment the permission is gone.

mod filter;
mod wildcard;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use patricia_tree::PatriciaMap;

pub use filter::Recipients;
use wildcard::WildcardTrie;

use super::handle::SessionHandle;
use crate::auth::{Admit, Guard};
use super::metrics::Metrics;
use super::outbox::PushError;
use crate::wamp::ids::{global_id, IdSequence, SessionId};
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Args, Dict, Message, Serializer, Value};

/// Number of lock stripes that order publications per topic.
const TOPIC_STRIPES: usize = 64;

#[derive(Debug)]
pub struct Subscriber {
    pub session: Arc<SessionHandle>,
    /// Events dropped since the last one delivered; reported in the next EVENT.
    dropped: AtomicU64,
    /// Set once SUBSCRIBED is queued; events before that are not this subscriber's.
    live: AtomicBool,
    guard: Option<Arc<dyn Guard>>,
}

#[derive(Debug)]
pub struct Subscription {
    pub id: u64,
    pub uri: String,
    pub policy: MatchPolicy,
    pub created: SystemTime,
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
}

impl Subscription {
    pub fn subscriber_ids(&self) -> Vec<SessionId> {
        read(&self.subscribers).iter().map(|s| s.session.id).collect()
    }
}

#[derive(Debug, Default)]
struct Index {
    exact: std::collections::HashMap<String, Arc<Subscription>>,
    prefix: PatriciaMap<Arc<Subscription>>,
    wildcard: WildcardTrie<Arc<Subscription>>,
    by_id: std::collections::HashMap<u64, Arc<Subscription>>,
}

impl Index {
    fn find(&self, uri: &str, policy: MatchPolicy) -> Option<&Arc<Subscription>> {
        match policy {
            MatchPolicy::Exact => self.exact.get(uri),
            MatchPolicy::Prefix => self.prefix.get(uri),
            MatchPolicy::Wildcard => self.wildcard.get(uri),
        }
    }

    fn insert(&mut self, sub: Arc<Subscription>) {
        match sub.policy {
            MatchPolicy::Exact => drop(self.exact.insert(sub.uri.clone(), sub.clone())),
            MatchPolicy::Prefix => drop(self.prefix.insert(sub.uri.as_str(), sub.clone())),
            MatchPolicy::Wildcard => self.wildcard.insert(&sub.uri, sub.clone()),
        }
        self.by_id.insert(sub.id, sub);
    }

    fn remove(&mut self, sub: &Subscription) {
        match sub.policy {
            MatchPolicy::Exact => drop(self.exact.remove(&sub.uri)),
            MatchPolicy::Prefix => drop(self.prefix.remove(sub.uri.as_str())),
            MatchPolicy::Wildcard => drop(self.wildcard.remove(&sub.uri)),
        }
        self.by_id.remove(&sub.id);
    }

    fn matching(&self, topic: &str, out: &mut Vec<Arc<Subscription>>) {
        if let Some(s) = self.exact.get(topic) {
            out.push(s.clone());
        }
        out.extend(self.prefix.common_prefixes(topic).map(|(_, s)| s.clone()));
        self.wildcard.matches(topic, out);
    }
}

#[derive(Debug)]
pub struct Broker {
    index: RwLock<Index>,
    stripes: Vec<Mutex<()>>,
    metrics: Arc<Metrics>,
}

/// What a publication needs besides its topic and payload.
pub struct Publication<'a> {
    pub publisher: &'a SessionHandle,
    pub topic: &'a str,
    pub recipients: Recipients,
    pub disclose: bool,
    pub payload: Args,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Critical sections never leave the data half-updated, so poisoning is ignored.
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Broker {
    pub fn new(metrics: Arc<Metrics>) -> Broker {
        Broker { index: RwLock::default(), stripes: (0..TOPIC_STRIPES).map(|_| Mutex::new(())).collect(), metrics }
    }

    /// Adds `session` to the subscription for (uri, policy), creating it if needed, and
    /// calls `announce` with its id (to queue SUBSCRIBED) before events flow to it.
    /// Subscribing twice returns the same subscription. `ids` is the router-scope id
    /// sequence; `guard`, if any, is asked before every event to this subscriber.
    pub fn subscribe(
        &self,
        session: &Arc<SessionHandle>,
        (uri, policy): (&str, MatchPolicy),
        ids: &IdSequence,
        guard: Option<Arc<dyn Guard>>,
        announce: impl FnOnce(u64),
    ) -> Arc<Subscription> {
        let (sub, subscriber) = self.attach(session, uri, policy, ids, guard);
        announce(sub.id);
        // Release: an event pushed by a publisher that sees `live` is queued after the
        // SUBSCRIBED queued above (one outbox, in order).
        subscriber.live.store(true, Ordering::Release);
        sub
    }

    fn attach(
        &self,
        session: &Arc<SessionHandle>,
        uri: &str,
        policy: MatchPolicy,
        ids: &IdSequence,
        guard: Option<Arc<dyn Guard>>,
    ) -> (Arc<Subscription>, Arc<Subscriber>) {
        let mut index = write(&self.index);
        let sub = match index.find(uri, policy) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Subscription {
                    id: ids.next(),
                    uri: uri.to_owned(),
                    policy,
                    created: SystemTime::now(),
                    subscribers: RwLock::default(),
                });
                index.insert(s.clone());
                s
            }
        };
        let mut subs = write(&sub.subscribers);
        let subscriber = match subs.iter().find(|s| s.session.id == session.id) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Subscriber {
                    session: session.clone(),
                    dropped: AtomicU64::new(0),
                    live: AtomicBool::new(false),
                    guard,
                });
                subs.push(s.clone());
                s
            }
        };
        drop(subs);
        (sub, subscriber)
    }

    /// Removes `session` from subscription `id`; the subscription goes away with its last
    /// subscriber so the index never keeps topics nobody listens to. False if the session
    /// was not subscribed.
    pub fn unsubscribe(&self, session: SessionId, id: u64) -> bool {
        let mut index = write(&self.index);
        let Some(sub) = index.by_id.get(&id).cloned() else { return false };
        let mut subs = write(&sub.subscribers);
        let before = subs.len();
        subs.retain(|s| s.session.id != session);
        let removed = subs.len() != before;
        if subs.is_empty() {
            drop(subs);
            index.remove(&sub);
        }
        removed
    }

    pub fn subscription(&self, id: u64) -> Option<Arc<Subscription>> {
        read(&self.index).by_id.get(&id).cloned()
    }

    /// Number of live subscriptions (for tests of index pruning).
    pub fn subscription_count(&self) -> usize {
        read(&self.index).by_id.len()
    }

    /// Delivers a publication and returns its id.
    pub fn publish(&self, p: Publication<'_>) -> u64 {
        let publication = global_id();
        self.metrics.events_published.inc();
        let mut publisher_details = Dict::new();
        if p.disclose {
            publisher_details.insert("publisher".into(), Value::UInt(p.publisher.id.0));
            publisher_details.insert("publisher_authid".into(), p.publisher.authid.as_str().into());
            publisher_details.insert("publisher_authrole".into(), p.publisher.authrole.as_str().into());
        }
        let stripe = {
            let mut h = DefaultHasher::new();
            p.topic.hash(&mut h);
            (h.finish() as usize) % self.stripes.len()
        };
        let _order = self.stripes[stripe].lock().unwrap_or_else(|e| e.into_inner());
        let mut matching = Vec::new();
        read(&self.index).matching(p.topic, &mut matching);
        for sub in &matching {
            let mut details = publisher_details.clone();
            if sub.policy != MatchPolicy::Exact {
                details.insert("topic".into(), p.topic.into());
            }
            let event = Message::Event { subscription: sub.id, publication, details, payload: p.payload.clone() };
            self.fan_out(sub, &event, &p);
        }
        publication
    }

    fn fan_out(&self, sub: &Subscription, event: &Message, p: &Publication<'_>) {
        let mut frames: [Option<Option<Bytes>>; 3] = [None, None, None];
        for subscriber in read(&sub.subscribers).iter() {
            let session = &subscriber.session;
            if !subscriber.live.load(Ordering::Acquire) || !p.recipients.admits(session) {
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
                        self.metrics.events_held.inc();
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
mod tests {
    use super::*;
    use crate::router::handle::testing::{drain, handle};
    use crate::wamp::Args;

    fn publish(broker: &Broker, publisher: &SessionHandle, topic: &str) -> u64 {
        let recipients = Recipients::from_options(publisher.id, &Dict::new()).unwrap();
        broker.publish(Publication { publisher, topic, recipients, disclose: false, payload: Args::default() })
    }

    /// The worst moment for a concurrent publication: after the subscription exists and
    /// before SUBSCRIBED is queued. The new subscriber must not get that event, and
    /// SUBSCRIBED must come before the first event it does get.
    #[tokio::test]
    async fn no_event_overtakes_subscribed() {
        let broker = Broker::new(Arc::new(Metrics::new()));
        let ids = IdSequence::new();
        let (publisher, subscriber) = (handle(1), handle(2));
        for policy in [MatchPolicy::Exact, MatchPolicy::Prefix] {
            let uri = if policy == MatchPolicy::Exact { "a.b" } else { "a." };
            let sub = broker.subscribe(&subscriber, (uri, policy), &ids, None, |id| {
                publish(&broker, &publisher, "a.b");
                subscriber.outbox.push(Message::Subscribed { request: 7, subscription: id }.encode(Serializer::Json).unwrap()).unwrap();
            });
            publish(&broker, &publisher, "a.b");
            let got = drain(&subscriber).await;
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0], Message::Subscribed { request: 7, subscription: sub.id });
            assert!(matches!(got[1], Message::Event { subscription, .. } if subscription == sub.id));
            broker.unsubscribe(subscriber.id, sub.id);
        }
    }

    #[derive(Debug)]
    struct Only(&'static str, Admit);
    impl Guard for Only {
        fn admits(&self, topic: &str) -> Admit {
            if topic == self.0 { Admit::Yes } else { self.1 }
        }
    }

    #[tokio::test]
    async fn a_guard_filters_or_holds_each_event_and_counts_it() {
        let metrics = Arc::new(Metrics::new());
        let broker = Broker::new(metrics.clone());
        let ids = IdSequence::new();
        let (publisher, filtered, held) = (handle(1), handle(2), handle(3));
        broker.subscribe(&filtered, ("c.", MatchPolicy::Prefix), &ids, Some(Arc::new(Only("c.mine", Admit::No))), |_| {});
        broker.subscribe(&held, ("c.", MatchPolicy::Prefix), &ids, Some(Arc::new(Only("c.mine", Admit::Hold))), |_| {});
        for topic in ["c.mine", "c.other", "c.mine", "c.other"] {
            publish(&broker, &publisher, topic);
        }
        for s in [&filtered, &held] {
            let topics: Vec<Value> = drain(s)
                .await
                .into_iter()
                .map(|m| match m {
                    Message::Event { details, .. } => details["topic"].clone(),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(topics, vec![Value::from("c.mine"), Value::from("c.mine")]);
        }
        assert_eq!((metrics.events_filtered.get(), metrics.events_held.get(), metrics.events_delivered.get()), (2, 2, 4));
    }
}
