//! Catching a lagging subscriber up from the replay store.
//!
//! A lagging subscriber is skipped by publishers, who only note, per topic, the first
//! position it missed. A driver registered with its session's outbox (`outbox::Refill`)
//! runs a round each time the writer has written a batch: it queues the next events
//! from the store, merged across topics in store order, as many as the outbox takes.
//! When nothing is left it takes the subscription's stripes (all, for a pattern) and,
//! if still nothing is left, turns the subscriber live: from then on publishers queue
//! to it directly. Under those locks no publication can slip between the last event
//! caught up and the first delivered live, so there is no gap and no duplicate.
//!
//! Events the store evicted before the subscriber got them are counted and told in the
//! next EVENT (`Details._gap`). An event whose permission cannot be decided now (a
//! guard answering `Hold`) stops the round where it is; the writer tries again on its
//! lag tick, so events held during a permission-database outage are delivered once it
//! is back (or skipped, if the permission is gone by then). History asked for at subscribe (`_replay`) is delivered
//! the same way, its events marked `_replayed`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::history::stripe_for;
use super::subscription::{Subscriber, Subscription, LAGGING, LIVE};
use crate::auth::Admit;
use crate::replay::{Position, Store, StoredEvent};
use crate::router::metrics::Metrics;
use crate::router::outbox::{PushError, Refill};
use crate::wamp::{Message, Value};

/// The driver of one lagging subscriber.
#[derive(Debug)]
struct Lagging {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    sub: Weak<Subscription>,
    subscriber: Weak<Subscriber>,
}

/// Registers a driver for a subscriber that just turned lagging (unless one is).
pub(super) fn register(store: &Arc<Store>, metrics: &Arc<Metrics>, sub: &Arc<Subscription>, subscriber: &Arc<Subscriber>) -> Option<Arc<dyn Refill>> {
    if subscriber.registered.swap(true, Ordering::SeqCst) {
        return None;
    }
    let driver: Arc<dyn Refill> = Arc::new(Lagging {
        store: store.clone(),
        metrics: metrics.clone(),
        sub: Arc::downgrade(sub),
        subscriber: Arc::downgrade(subscriber),
    });
    subscriber.session.outbox.lag(driver.clone());
    Some(driver)
}

/// Registers the driver of a subscriber that starts with history, and runs its first
/// round now (the writer runs the next ones as the outbox drains).
pub(super) fn start(store: &Arc<Store>, metrics: &Arc<Metrics>, sub: &Arc<Subscription>, subscriber: &Arc<Subscriber>) {
    if let Some(driver) = register(store, metrics, sub, subscriber) {
        driver.refill();
    }
}

impl Refill for Lagging {
    fn refill(&self) -> bool {
        let (Some(sub), Some(subscriber)) = (self.sub.upgrade(), self.subscriber.upgrade()) else { return false };
        let Ok(_busy) = subscriber.busy.try_lock() else { return true };
        loop {
            if subscriber.state.load(Ordering::SeqCst) == LAGGING && self.round(&sub, &subscriber) {
                return true;
            }
            // Live. A publisher that made it lag again meanwhile saw a driver still
            // registered and did not register another: this one goes on then.
            subscriber.registered.store(false, Ordering::SeqCst);
            if subscriber.state.load(Ordering::SeqCst) == LAGGING && !subscriber.registered.swap(true, Ordering::SeqCst) {
                continue;
            }
            return false;
        }
    }
}

impl Lagging {
    /// Queues what fits; false once the subscriber is live again. A topic whose next
    /// event cannot be decided now is held where it is for this round; the others go on.
    fn round(&self, sub: &Subscription, subscriber: &Subscriber) -> bool {
        let outbox = &subscriber.session.outbox;
        let mut held: Vec<Arc<str>> = Vec::new();
        loop {
            let room = outbox.room();
            if room == 0 {
                return true;
            }
            let batch = self.next_events(subscriber, room, &held);
            if batch.is_empty() {
                if !held.is_empty() {
                    // Retried on the writer's lag tick.
                    return true;
                }
                if self.go_live(sub, subscriber) {
                    return false;
                }
                continue;
            }
            for ev in batch {
                if held.contains(&ev.topic) {
                    continue;
                }
                match subscriber.may_see(&ev) {
                    Admit::Yes => {}
                    Admit::No => {
                        advance(subscriber, &ev);
                        continue;
                    }
                    Admit::Hold => {
                        held.push(ev.topic.clone());
                        continue;
                    }
                }
                match self.push(sub, subscriber, &ev) {
                    Ok(()) => advance(subscriber, &ev),
                    Err(PushError::Closed) => return false,
                    Err(_) => return true,
                }
            }
        }
    }

    /// The next `room` events due, in store order; moves cursors past what the store
    /// evicted (counting it) and forgets topics the store forgot.
    fn next_events(&self, subscriber: &Subscriber, room: usize, held: &[Arc<str>]) -> Vec<Arc<StoredEvent>> {
        let cursors: Vec<(Arc<str>, Position)> = subscriber.lag().next.iter().filter(|(t, _)| !held.contains(t)).cloned().collect();
        let mut batch = Vec::new();
        let mut moved = Vec::new();
        for (topic, next) in &cursors {
            let g = self.store.lock(topic);
            let Some(log) = g.log(topic) else {
                moved.push((topic.clone(), None, 0));
                continue;
            };
            if *next < log.first() {
                moved.push((topic.clone(), Some(log.first()), log.first().0 - next.0));
            }
            batch.extend(log.since(*next).take(room).cloned());
        }
        if !moved.is_empty() {
            let mut lag = subscriber.lag();
            for (topic, to, lost) in moved {
                match to {
                    None => lag.next.retain(|(t, _)| *t != topic),
                    Some(to) => {
                        if let Some((_, p)) = lag.next.iter_mut().find(|(t, _)| *t == topic) {
                            if *p < to {
                                *p = to;
                                lag.gap += lost;
                                self.metrics.events_gap.inc_by(lost);
                            }
                        }
                    }
                }
            }
        }
        batch.sort_unstable_by_key(|e| e.seq);
        batch.truncate(room);
        batch
    }

    fn push(&self, sub: &Subscription, subscriber: &Subscriber, ev: &StoredEvent) -> Result<(), PushError> {
        let (replayed, gap) = {
            let mut lag = subscriber.lag();
            (ev.seq <= lag.history_until, std::mem::take(&mut lag.gap))
        };
        let mut d = sub.event_details(&ev.publisher, &ev.topic, Some(ev.pos));
        if replayed {
            d.insert("_replayed".into(), Value::Bool(true));
        }
        if gap > 0 {
            d.insert("_gap".into(), Value::UInt(gap));
        }
        let dropped = subscriber.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            d.insert("_dropped".into(), Value::UInt(dropped));
        }
        let restore = |subscriber: &Subscriber| {
            subscriber.lag().gap += gap;
            subscriber.dropped.fetch_add(dropped, Ordering::Relaxed);
        };
        let msg = Message::Event { subscription: sub.id.0, publication: ev.publication.0, details: d, payload: ev.payload.clone() };
        self.metrics.event_encodes.inc();
        let frame = match msg.encode(subscriber.session.serializer) {
            Ok(f) if f.len() <= subscriber.session.max_outgoing => f,
            _ => {
                // Counted like live delivery would count it; the next event says so.
                self.metrics.events_dropped_too_large.inc();
                restore(subscriber);
                subscriber.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        };
        match subscriber.session.outbox.push_event(frame) {
            Ok(()) => {
                if replayed {
                    self.metrics.events_replayed.inc();
                } else {
                    self.metrics.events_caught_up.inc();
                }
                Ok(())
            }
            Err(e) => {
                restore(subscriber);
                Err(e)
            }
        }
    }

    /// Turns the subscriber live if, with publishers held off, nothing is left to
    /// catch up. False if something came in meanwhile.
    fn go_live(&self, sub: &Subscription, subscriber: &Subscriber) -> bool {
        let guards = self.store.lock_covering(&sub.uri, sub.policy);
        let mut lag = subscriber.lag();
        let behind = lag.next.iter().any(|(t, p)| stripe_for(&guards, t).log(t).is_some_and(|l| *p <= l.head()));
        if behind {
            return false;
        }
        if lag.gap > 0 {
            // Lost events and nothing to carry the news: the next live event says so.
            subscriber.dropped.fetch_add(std::mem::take(&mut lag.gap), Ordering::Relaxed);
        }
        lag.next.clear();
        lag.history_until = crate::replay::Seq(0);
        subscriber.state.store(LIVE, Ordering::SeqCst);
        true
    }
}

/// Moves the topic's cursor past `ev`.
fn advance(subscriber: &Subscriber, ev: &StoredEvent) {
    let mut lag = subscriber.lag();
    if let Some((_, p)) = lag.next.iter_mut().find(|(t, _)| **t == *ev.topic) {
        *p = (*p).max(ev.pos.next());
    }
}
