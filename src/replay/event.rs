//! One stored publication and the numbers that order it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::wamp::ids::{PublicationId, SessionId};
use crate::wamp::{Args, Dict};

/// A topic's sequence number: the first event stored for a topic is 1, each next one
/// is one more, so a client that saw position P resumes with "after P" and the count of
/// events it can no longer get is a subtraction. 0 means "before the first event".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Position(pub u64);

impl Position {
    pub fn next(self) -> Position {
        Position(self.0 + 1)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A realm's sequence over all its stored events: increasing in store order within a
/// topic, and the order in which history from several topics is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Seq(pub u64);

/// A publication as the store keeps it: enough to build its EVENT for any subscriber
/// later (the subscription id and per-subscriber details are added then).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub topic: Arc<str>,
    pub pos: Position,
    pub seq: Seq,
    pub publication: PublicationId,
    pub published_at: SystemTime,
    /// `publisher`, `publisher_authid`, `publisher_authrole` when disclosed (empty
    /// otherwise); shared with the live EVENT's details.
    pub publisher: Arc<Dict>,
    pub payload: Args,
    /// Published with `retain: true` (spec: event retention).
    pub retain: bool,
    /// The publishing session when it asked not to receive its own event (`exclude_me`,
    /// the default): history and catch-up skip the event for that session as live
    /// delivery did. Not persisted: session ids do not outlive the router.
    pub excluded: Option<SessionId>,
}

/// What an event costs the store beyond its payload: the record, its topic name and
/// its place in the eviction queue. Charged so that budgets mean memory, not payload.
pub const OVERHEAD: usize = 160;

impl StoredEvent {
    /// Bytes charged against the topic's and the realm's budgets.
    pub fn cost(&self) -> usize {
        self.payload.len() + self.topic.len() + OVERHEAD
    }

    /// Microseconds since the Unix epoch (what `after_time`/`since` compare with).
    pub fn micros(&self) -> i64 {
        micros(self.published_at)
    }
}

pub fn micros(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_micros().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_micros().min(i64::MAX as u128) as i64),
    }
}
