//! A realm's stored topics, behind 64 striped locks.
//!
//! The stripes are the broker's ordering points: a publication takes its topic's stripe,
//! gets the next position, is appended here and handed to subscribers before the lock
//! is released, so every subscriber sees a topic's events in store order. A subscriber
//! attaching to one topic takes that topic's stripe; one attaching to a pattern takes
//! all of them, in index order (publishers hold one at a time, so this cannot deadlock).
//!
//! Memory is bounded twice: each topic by its retention limits, and the realm by its
//! byte budget. When the budget is passed, the stripe that is appending evicts its own
//! oldest events (a queue per stripe, in append order), so the realm holds at most its
//! budget plus one event per stripe.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use super::durable::{Commit, Durable, Loaded, Slot};
use super::event::{Position, Seq, StoredEvent};
use super::retention::Retention;
use crate::wamp::uri::MatchPolicy;
use super::ring::{Evicted, TopicLog};

/// Number of lock stripes that order publications per topic.
pub const STRIPES: usize = 64;

fn ev_is_durable(g: &StripeGuard<'_>, ev: &StoredEvent) -> bool {
    g.stripe.logs.get(&*ev.topic).is_some_and(|l| l.limits().durable)
}

/// A durable topic while its database is not connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the durable event store is not connected")]
pub struct Offline;

impl Offline {
    pub const URI: &'static str = "wamp.error.unavailable";
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub stored: AtomicU64,
    pub evicted_retention: AtomicU64,
    pub evicted_age: AtomicU64,
    pub evicted_budget: AtomicU64,
    pub topics: AtomicUsize,
}

#[derive(Debug, Default)]
pub struct Stripe {
    logs: HashMap<Arc<str>, TopicLog>,
    /// (topic, position) in append order, for the budget's oldest-first eviction.
    /// Entries whose event already left by retention are skipped, and compacted away
    /// when they outnumber the live ones.
    order: VecDeque<(Arc<str>, Position)>,
    events: usize,
}

#[derive(Debug)]
pub struct Store {
    retention: Retention,
    /// Where durable topics' events are also written (PostgreSQL); set once the
    /// database is reached and what it kept is restored. Until then, durable topics
    /// are offline: publications to them are refused (fail closed).
    durable: OnceLock<Durable>,
    stripes: Vec<Mutex<Stripe>>,
    seq: AtomicU64,
    used: AtomicUsize,
    pub stats: Stats,
}

/// A held stripe: what a publisher or an attaching subscriber works under.
pub struct StripeGuard<'a> {
    stripe: MutexGuard<'a, Stripe>,
    store: &'a Store,
}

impl Store {
    pub fn new(retention: Retention) -> Store {
        Store {
            retention,
            durable: OnceLock::new(),
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            seq: AtomicU64::new(0),
            used: AtomicUsize::new(0),
            stats: Stats::default(),
        }
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    pub fn durable(&self) -> Option<&Durable> {
        self.durable.get()
    }

    /// Connects the durable store: puts back what the database kept, then durable
    /// topics take publications. Once only; false if already connected.
    pub fn connect_durable(&self, durable: Durable, loaded: Loaded) -> bool {
        if self.durable.get().is_some() {
            return false;
        }
        self.resume_after(Seq(loaded.next_seq.0.saturating_sub(1)));
        self.restore(&loaded.heads, loaded.events);
        self.durable.set(durable).is_ok()
    }

    /// For a publication to `topic`: `Ok(Some)` the durable store if the topic is
    /// durable (the publication needs a place in its writer's queue first), `Ok(None)`
    /// if it is not, `Err(Offline)` if it is and the database is not connected.
    pub fn durable_for(&self, topic: &str) -> Result<Option<&Durable>, Offline> {
        if !self.retention.any_durable() || !self.retention.limits(topic).is_some_and(|l| l.durable) {
            return Ok(None);
        }
        self.durable.get().map(Some).ok_or(Offline)
    }

    /// Whether `topic` would be stored.
    pub fn stores(&self, topic: &str) -> bool {
        !self.retention.is_empty() && self.retention.limits(topic).is_some()
    }

    /// Bytes charged to the realm budget now.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> Seq {
        Seq(self.seq.load(Ordering::Acquire))
    }

    /// Continues sequence numbers after `seq` (a durable store's restart).
    pub fn resume_after(&self, seq: Seq) {
        self.seq.fetch_max(seq.0, Ordering::AcqRel);
    }

    fn index(topic: &str) -> usize {
        let mut h = DefaultHasher::new();
        topic.hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    fn guard(&self, i: usize) -> StripeGuard<'_> {
        // Critical sections leave a stripe consistent at every step, so a poisoned
        // lock is still usable.
        StripeGuard { stripe: self.stripes[i].lock().unwrap_or_else(|p| p.into_inner()), store: self }
    }

    /// Takes `topic`'s stripe.
    pub fn lock(&self, topic: &str) -> StripeGuard<'_> {
        self.guard(Store::index(topic))
    }

    /// Takes every stripe, in index order (pattern subscriptions span all topics).
    pub fn lock_all(&self) -> Vec<StripeGuard<'_>> {
        (0..STRIPES).map(|i| self.guard(i)).collect()
    }

    /// The stripes a subscription to `uri` under `policy` spans: its topic's for an
    /// exact subscription, every one (in index order) for a pattern.
    pub fn lock_covering(&self, uri: &str, policy: MatchPolicy) -> Vec<StripeGuard<'_>> {
        match policy {
            MatchPolicy::Exact => vec![self.lock(uri)],
            _ => self.lock_all(),
        }
    }

    /// Which of `lock_all`'s guards holds `topic`.
    pub fn stripe_of(topic: &str) -> usize {
        Store::index(topic)
    }

    /// Evicts events past their age limit and forgets memory topics left empty (a
    /// topic that comes back starts again at position 1; a client resuming after a
    /// position the topic no longer has is told so, see the broker); run periodically.
    /// Durable topics keep their (empty) log so their positions go on.
    pub fn sweep(&self, now: SystemTime) {
        let mut topics = 0;
        for i in 0..STRIPES {
            let mut g = self.guard(i);
            let mut evicted = Evicted::default();
            g.stripe.logs.retain(|_, log| {
                let e = log.expire(now);
                evicted.events += e.events;
                evicted.bytes += e.bytes;
                !(log.is_empty() && log.retained().is_none() && !log.limits().durable)
            });
            g.release(evicted);
            topics += g.stripe.logs.len();
            self.stats.evicted_age.fetch_add(evicted.events, Ordering::Relaxed);
        }
        self.stats.topics.store(topics, Ordering::Relaxed);
    }

    fn count_topics(&self) {
        let n = (0..STRIPES).map(|i| self.guard(i).stripe.logs.len()).sum();
        self.stats.topics.store(n, Ordering::Relaxed);
    }

    /// Puts events loaded from a durable store back (in seq order), then makes sure
    /// each topic's next position is past its `heads` entry (the last position ever
    /// written); used once at start before any session joins. A log must be dense, so
    /// a hole in the loaded rows (a batch that failed) restarts the topic's log after
    /// it: what came before the hole is reported as missing, never reordered.
    pub fn restore(&self, heads: &[(Arc<str>, Position)], events: Vec<StoredEvent>) {
        for ev in events {
            self.resume_after(ev.seq);
            let Some(limits) = self.retention.limits(&ev.topic) else { continue };
            let mut g = self.lock(&ev.topic);
            let start = Position(ev.pos.0.saturating_sub(1));
            let fits = g.stripe.logs.get(&*ev.topic).map(|l| l.next_position() == ev.pos);
            if fits != Some(true) {
                g.reset(&ev.topic, TopicLog::new(ev.topic.clone(), limits, start));
            }
            g.insert(Arc::new(ev));
        }
        for (topic, head) in heads {
            let Some(limits) = self.retention.limits(topic) else { continue };
            let mut g = self.lock(topic);
            if g.stripe.logs.get(&**topic).is_none_or(|l| l.head() < *head) {
                g.reset(topic, TopicLog::new(topic.clone(), limits, *head));
            }
        }
        self.count_topics();
    }
}

impl<'a> StripeGuard<'a> {
    /// The log of `topic`, if it is stored and has been written.
    pub fn log(&self, topic: &str) -> Option<&TopicLog> {
        self.stripe.logs.get(topic)
    }

    /// Every log in this stripe.
    pub fn logs(&self) -> impl Iterator<Item = (&Arc<str>, &TopicLog)> + '_ {
        self.stripe.logs.iter()
    }

    /// Replaces `topic`'s log, releasing what the old one held.
    fn reset(&mut self, topic: &Arc<str>, log: TopicLog) {
        if let Some(old) = self.stripe.logs.insert(topic.clone(), log) {
            self.release(Evicted { events: old.len() as u64, bytes: old.bytes() });
        }
    }

    /// The next position of `topic` if it is stored (creating its log), else `None`,
    /// with the topic's shared name for the event. Costs one rule lookup for a topic
    /// not stored yet.
    pub fn next_position(&mut self, topic: &str) -> Option<(Position, Arc<str>)> {
        if let Some(log) = self.stripe.logs.get(topic) {
            return Some((log.next_position(), log.topic().clone()));
        }
        let limits = self.store.retention.limits(topic)?;
        let name: Arc<str> = topic.into();
        let log = TopicLog::new(name.clone(), limits, Position(0));
        let next = log.next_position();
        self.stripe.logs.insert(name.clone(), log);
        self.store.stats.topics.fetch_add(1, Ordering::Relaxed);
        Some((next, name))
    }

    /// The sequence number for the event being appended now.
    pub fn next_seq(&self) -> Seq {
        Seq(self.store.seq.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Appends `ev` (its position from `next_position`, its seq from `next_seq`) and
    /// evicts what the topic's limits and the realm's budget ask for. For a durable
    /// topic, `slot` (reserved before the lock was taken) hands the event to the
    /// writer; the returned commit resolves once it is in the database.
    pub fn append(&mut self, ev: Arc<StoredEvent>, slot: Option<Slot>) -> Option<Commit> {
        self.store.stats.stored.fetch_add(1, Ordering::Relaxed);
        let commit = match (slot, self.store.durable.get()) {
            (Some(slot), Some(d)) if ev_is_durable(self, &ev) => Some(d.write(slot, ev.clone())),
            _ => None,
        };
        self.insert(ev);
        commit
    }

    /// Appends to the topic's log (which `next_position` created): one lookup.
    fn insert(&mut self, ev: Arc<StoredEvent>) {
        let cost = ev.cost();
        let pos = ev.pos;
        let Some(log) = self.stripe.logs.get_mut(&*ev.topic) else { return };
        let key = log.topic().clone();
        let evicted = log.push(ev);
        self.stripe.events += 1;
        self.stripe.order.push_back((key, pos));
        self.store.used.fetch_add(cost, Ordering::AcqRel);
        if evicted.events > 0 {
            self.store.stats.evicted_retention.fetch_add(evicted.events, Ordering::Relaxed);
            self.release(evicted);
        }
        self.keep_budget();
        self.compact();
    }

    fn release(&mut self, evicted: Evicted) {
        self.stripe.events -= evicted.events as usize;
        self.store.used.fetch_sub(evicted.bytes, Ordering::AcqRel);
    }

    /// Evicts this stripe's oldest events while the realm is over its budget, never
    /// the event just appended.
    fn keep_budget(&mut self) {
        let budget = self.store.retention.budget_bytes;
        while self.store.used.load(Ordering::Acquire) > budget && self.stripe.order.len() > 1 {
            let Some((topic, pos)) = self.stripe.order.pop_front() else { break };
            let Some(log) = self.stripe.logs.get_mut(&*topic) else { continue };
            if log.first() != pos || log.is_empty() {
                continue;
            }
            if let Some(old) = log.pop_front() {
                self.store.stats.evicted_budget.fetch_add(1, Ordering::Relaxed);
                self.release(Evicted { events: 1, bytes: old.cost() });
            }
        }
    }

    /// Drops queue entries of events that already left, once they outnumber the live.
    fn compact(&mut self) {
        let s = &mut *self.stripe;
        if s.order.len() <= 2 * s.events + 64 {
            return;
        }
        let logs = &s.logs;
        s.order.retain(|(topic, pos)| logs.get(&**topic).is_some_and(|l| *pos >= l.first()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::event::OVERHEAD;
    use crate::replay::retention::{Limits, Rule};
    use crate::wamp::ids::PublicationId;
    use crate::wamp::uri::MatchPolicy;
    use crate::wamp::{Args, Dict};

    fn store(max_events: usize, budget: usize) -> Store {
        let limits = Limits { max_events, max_age: None, max_bytes: None, durable: false };
        Store::new(Retention::new(vec![Rule { uri: "s.".into(), policy: MatchPolicy::Prefix, limits }], budget))
    }

    fn publish(store: &Store, topic: &str) -> Option<(Position, Seq)> {
        let mut g = store.lock(topic);
        let (pos, topic) = g.next_position(topic)?;
        let seq = g.next_seq();
        g.append(Arc::new(StoredEvent {
            topic,
            pos,
            seq,
            publication: PublicationId(seq.0),
            published_at: SystemTime::now(),
            publisher: Arc::new(Dict::new()),
            payload: Args::default(),
            retain: false,
            excluded: None,
        }), None);
        Some((pos, seq))
    }

    #[test]
    fn positions_are_per_topic_and_seq_is_per_realm() {
        let s = store(10, 1 << 20);
        assert_eq!(publish(&s, "s.a"), Some((Position(1), Seq(1))));
        assert_eq!(publish(&s, "s.b"), Some((Position(1), Seq(2))));
        assert_eq!(publish(&s, "s.a"), Some((Position(2), Seq(3))));
        assert_eq!(publish(&s, "other"), None, "a topic no rule names is not stored");
        assert_eq!(s.stats.topics.load(Ordering::Relaxed), 2);
        assert_eq!(s.used_bytes(), 3 * (3 + OVERHEAD));
    }

    #[test]
    fn the_realm_budget_evicts_oldest_first_and_is_kept() {
        let one = 3 + OVERHEAD;
        let s = store(1000, 10 * one);
        // All on one topic: one stripe, so the budget is exact.
        for _ in 0..25 {
            publish(&s, "s.a");
        }
        let g = s.lock("s.a");
        let log = g.log("s.a").unwrap();
        assert_eq!((log.first(), log.head(), log.len()), (Position(16), Position(25), 10));
        drop(g);
        assert_eq!(s.used_bytes(), 10 * one);
        assert_eq!(s.stats.evicted_budget.load(Ordering::Relaxed), 15);
    }

    #[test]
    fn the_eviction_queue_stays_bounded_under_retention_churn() {
        let s = store(2, 1 << 30);
        for _ in 0..10_000 {
            publish(&s, "s.a");
        }
        let g = s.lock("s.a");
        assert!(g.stripe.order.len() <= 2 * 2 + 64 + 1, "{}", g.stripe.order.len());
        assert_eq!(g.stripe.events, 2);
    }

    #[test]
    fn restore_continues_positions_and_sequence() {
        let s = store(10, 1 << 20);
        let ev = |pos: u64, seq: u64| StoredEvent {
            topic: "s.a".into(),
            pos: Position(pos),
            seq: Seq(seq),
            publication: PublicationId(seq),
            published_at: SystemTime::now(),
            publisher: Arc::new(Dict::new()),
            payload: Args::default(),
            retain: false,
            excluded: None,
        };
        s.restore(&[("s.a".into(), Position(41)), ("s.b".into(), Position(7))], vec![ev(40, 90), ev(41, 95)]);
        assert_eq!(publish(&s, "s.a"), Some((Position(42), Seq(96))));
        assert_eq!(publish(&s, "s.b"), Some((Position(8), Seq(97))));
        let g = s.lock("s.a");
        assert_eq!(g.log("s.a").map(|l| (l.first(), l.len())), Some((Position(40), 3)));
        drop(g);
        // A hole (a batch that failed) and a head beyond the rows (later rows pruned
        // or failed): the log restarts after the hole, positions go on after the head.
        let s = store(10, 1 << 20);
        let mut c = ev(3, 3);
        c.topic = "s.c".into();
        let mut d = ev(6, 4);
        d.topic = "s.c".into();
        s.restore(&[("s.c".into(), Position(6)), ("s.d".into(), Position(9))], vec![c, d]);
        let g = s.lock("s.c");
        assert_eq!(g.log("s.c").map(|l| (l.first(), l.head(), l.len())), Some((Position(6), Position(6), 1)));
        drop(g);
        assert_eq!(publish(&s, "s.d").map(|(p, _)| p), Some(Position(10)));
        assert_eq!(s.used_bytes(), 2 * (3 + OVERHEAD));
    }
}
