//! The replay store: recent events per topic, so a subscriber can receive history
//! followed by live events with no gap and no duplicate, resume where it stopped, and
//! be caught up (rather than dropped) when it reads slowly (DESIGN.md §5).
//!
//! - [`Position`]: per topic, dense, starting at 1; what clients resume from.
//! - [`Seq`]: per realm, orders events across topics (merging pattern history).
//! - [`StoredEvent`]: one publication as kept by the store.
//! - [`Retention`]: which topics are stored and for how long (the realm's rules).
//! - [`Store`]: the striped per-topic logs. The broker appends under the topic's stripe
//!   lock, in the same critical section that hands the event to subscribers, so store
//!   order is delivery order.
//! - [`durable::Durable`]: the events of durable topics in PostgreSQL, written in
//!   batches by one writer task, read back after a restart.
//!
//! This module knows the protocol's values (`wamp`) and nothing of sessions.

pub mod durable;
mod error;
mod event;
mod retention;
mod ring;
mod store;
pub mod time;

pub use error::ReplayError;
pub use event::{Position, Seq, StoredEvent};
pub use retention::{Limits, Retention, Rule};
pub use ring::{Evicted, TopicLog};
pub use store::{Offline, Stats, Store, StripeGuard, STRIPES};
