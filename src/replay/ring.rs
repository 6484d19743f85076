//! One topic's log: its position counter and its retained events, oldest first.
//!
//! The log keeps a suffix of the topic's history: position `first()` up to `head()`,
//! with nothing missing in between, so finding position P is an index computation,
//! and what a client can no longer get is `first() - P`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use super::event::{Position, StoredEvent};
use super::retention::Limits;
use crate::wamp::ids::PublicationId;

#[derive(Debug)]
pub struct TopicLog {
    /// The topic, shared by its events (one allocation per topic, not per event).
    topic: Arc<str>,
    limits: Limits,
    head: Position,
    events: VecDeque<Arc<StoredEvent>>,
    bytes: usize,
    /// The last event published with `retain: true` (spec: event retention). Kept
    /// apart from the ring: it outlives eviction until a newer one replaces it.
    retained: Option<Arc<StoredEvent>>,
    /// When the newest event evicted so far was published: a `since` older than this
    /// asks for events the log no longer has.
    last_evicted: Option<SystemTime>,
}

/// What a push or an expiry took out, for the budgets and the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub events: u64,
    pub bytes: usize,
}

impl Evicted {
    fn add(&mut self, ev: &StoredEvent) {
        self.events += 1;
        self.bytes += ev.cost();
    }
}

impl TopicLog {
    /// A log whose next event gets position `head + 1` (0 for a new topic; the last
    /// written position for a durable topic after a restart).
    pub fn new(topic: Arc<str>, limits: Limits, head: Position) -> TopicLog {
        TopicLog { topic, limits, head, events: VecDeque::new(), bytes: 0, retained: None, last_evicted: None }
    }

    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The last position assigned (0: none yet).
    pub fn head(&self) -> Position {
        self.head
    }

    /// The oldest position still retained; `head + 1` when nothing is.
    pub fn first(&self) -> Position {
        self.events.front().map_or(self.head.next(), |e| e.pos)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Bytes charged for the retained events (see `StoredEvent::cost`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn retained(&self) -> Option<&Arc<StoredEvent>> {
        self.retained.as_ref()
    }

    /// The position the next event gets.
    pub fn next_position(&self) -> Position {
        self.head.next()
    }

    /// Appends the event (its position must be `next_position()`), then evicts the
    /// oldest events past the topic's count and byte limits. The new event itself is
    /// always kept, even when it alone passes the byte limit.
    pub fn push(&mut self, ev: Arc<StoredEvent>) -> Evicted {
        debug_assert_eq!(ev.pos, self.head.next());
        self.head = ev.pos;
        self.bytes += ev.cost();
        if ev.retain {
            self.retained = Some(ev.clone());
        }
        self.events.push_back(ev);
        let mut out = Evicted::default();
        while self.events.len() > self.limits.max_events.max(1)
            || (self.events.len() > 1 && self.limits.max_bytes.is_some_and(|max| self.bytes > max))
        {
            let Some(old) = self.pop_front() else { break };
            out.add(&old);
        }
        out
    }

    /// Removes the oldest event.
    pub fn pop_front(&mut self) -> Option<Arc<StoredEvent>> {
        let ev = self.events.pop_front()?;
        self.bytes -= ev.cost();
        self.last_evicted = Some(ev.published_at);
        Some(ev)
    }

    /// Events published at or after `t` that the log no longer has, at most: none if
    /// nothing that recent was evicted, else every event evicted (their times are not
    /// kept one by one).
    pub fn lost_since(&self, t: SystemTime) -> u64 {
        match self.last_evicted {
            Some(at) if at >= t => self.first().0 - 1,
            _ => 0,
        }
    }

    /// Removes events older than the topic's age limit.
    pub fn expire(&mut self, now: SystemTime) -> Evicted {
        let mut out = Evicted::default();
        let Some(max_age) = self.limits.max_age else { return out };
        let Some(cutoff) = now.checked_sub(max_age) else { return out };
        while self.events.front().is_some_and(|e| e.published_at < cutoff) {
            if let Some(old) = self.pop_front() {
                out.add(&old);
            }
        }
        out
    }

    /// The retained events from position `from` on (from the oldest retained one if
    /// `from` is older), oldest first.
    pub fn since(&self, from: Position) -> impl DoubleEndedIterator<Item = &Arc<StoredEvent>> + '_ {
        let skip = from.0.saturating_sub(self.first().0) as usize;
        self.events.range(skip.min(self.events.len())..)
    }

    /// The retained event at `pos`.
    pub fn get(&self, pos: Position) -> Option<&Arc<StoredEvent>> {
        let i = pos.0.checked_sub(self.first().0)?;
        self.events.get(i as usize)
    }

    /// The position of a retained publication (a scan: used when a client resumes or
    /// asks for history, never per event).
    pub fn position_of(&self, publication: PublicationId) -> Option<Position> {
        self.events.iter().rev().find(|e| e.publication == publication).map(|e| e.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::event::{Seq, OVERHEAD};
    use crate::wamp::{Args, Dict};
    use std::time::Duration;

    fn limits(max_events: usize, max_bytes: Option<usize>, max_age: Option<Duration>) -> Limits {
        Limits { max_events, max_age, max_bytes, durable: false }
    }

    fn event(pos: u64, at: SystemTime) -> Arc<StoredEvent> {
        Arc::new(StoredEvent {
            topic: "t".into(),
            pos: Position(pos),
            seq: Seq(pos * 10),
            publication: PublicationId(1000 + pos),
            published_at: at,
            publisher: Arc::new(Dict::new()),
            payload: Args::default(),
            retain: pos == 2,
            excluded: None,
        })
    }

    #[test]
    fn keeps_the_last_max_events_and_finds_positions_by_subtraction() {
        let now = SystemTime::now();
        let mut log = TopicLog::new("t".into(), limits(3, None, None), Position(0));
        for p in 1..=5 {
            let out = log.push(event(p, now));
            assert_eq!(out.events, u64::from(p > 3));
        }
        assert_eq!((log.first(), log.head(), log.len()), (Position(3), Position(5), 3));
        assert_eq!(log.since(Position(1)).map(|e| e.pos.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(log.since(Position(5)).map(|e| e.pos.0).collect::<Vec<_>>(), vec![5]);
        assert_eq!(log.since(Position(6)).count(), 0);
        assert_eq!(log.get(Position(4)).map(|e| e.pos), Some(Position(4)));
        assert_eq!(log.get(Position(2)), None);
        assert_eq!(log.position_of(PublicationId(1004)), Some(Position(4)));
        assert_eq!(log.position_of(PublicationId(1001)), None);
        // The retained event outlives its eviction from the ring.
        assert_eq!(log.retained().map(|e| e.pos), Some(Position(2)));
        assert_eq!(log.bytes(), 3 * (1 + OVERHEAD));
    }

    #[test]
    fn byte_and_age_limits_evict_oldest_first_but_keep_the_newest() {
        let now = SystemTime::now();
        let mut log = TopicLog::new("t".into(), limits(100, Some(2 * (1 + OVERHEAD)), Some(Duration::from_secs(60))), Position(7));
        assert_eq!(log.first(), Position(8));
        log.push(event(8, now - Duration::from_secs(120)));
        log.push(event(9, now - Duration::from_secs(30)));
        let out = log.push(event(10, now));
        assert_eq!(out, Evicted { events: 1, bytes: 1 + OVERHEAD });
        assert_eq!(log.expire(now), Evicted::default());
        assert_eq!(log.expire(now + Duration::from_secs(45)).events, 1);
        assert_eq!((log.first(), log.len()), (Position(10), 1));
        let tiny = limits(100, Some(1), None);
        let mut log = TopicLog::new("t".into(), tiny, Position(0));
        log.push(event(1, now));
        assert_eq!(log.push(event(2, now)).events, 1);
        assert_eq!(log.len(), 1, "the newest event stays even alone over the byte limit");
    }
}
