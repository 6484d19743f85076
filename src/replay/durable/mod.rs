//! The durable replay store: a realm's events of durable topics, written to PostgreSQL
//! by one writer task with group commit, and read back after a restart (DESIGN.md §5,
//! "durable (PostgreSQL, batched writes) that survives a restart").
//!
//! The broker's side is synchronous: under a topic's lock it hands the event over with
//! [`Durable::write`], which never blocks, having taken a [`Slot`] in the bounded queue
//! beforehand ([`Durable::reserve`] waits for one: that is the publishers'
//! backpressure). The writer takes everything queued (at most `batch` events), inserts
//! it with one statement, and then resolves the [`Commit`] of every event of the batch
//! at once, running the callbacks its events left (`done.rs`): no task per event.
//!
//! A batch that fails (the database is down, a constraint is violated) fails the
//! `Commit` of each of its events with the same [`ReplayError`], and those events are
//! not written later: retrying them behind newer batches would commit a topic's
//! events out of order, and holding newer batches back until the database returns
//! would turn an outage into unbounded waiting. The events stay in the memory store;
//! in the database their positions are a hole, which `load` reports as missing
//! history. The writer reconnects for its next batch.
//!
//! - `writer`: the writer task, the batch's columns and its one statement.
//! - `done`: a batch's outcome and the callbacks waiting for it.
//! - `read`: `load` and `prune`, and turning rows back into events.
//!
//! The schema is `replay/migrations/`, applied by [`MIGRATOR`] on [`Durable::open`].
//! `StoredEvent::excluded` is not stored (a session id means nothing after a restart):
//! loaded events have `None`.

mod done;
mod read;
mod writer;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::{Position, ReplayError, Seq, StoredEvent};
pub use done::Commit;
use done::Finisher;

/// The schema of `replay/migrations/`, embedded in the binary. It shares sqlx's
/// migrations table with the permission graph's migrator, so each ignores the other's
/// rows (`ignore_missing`); the versions are apart (see the migration's header).
pub static MIGRATOR: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("./replay/migrations") };

/// A batch takes no more events once its events' `cost` (payload, topic and a fixed
/// overhead) reaches this: the statement's size stays bounded (PostgreSQL refuses a
/// parameter of 1 GiB or more) whatever the payloads.
pub const BATCH_BYTES: usize = 16 << 20;

/// How long opening a connection may take before the batch (or `open`) fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableOptions {
    /// Events written and not yet committed (or failed), at most. `reserve` waits and
    /// `try_reserve` refuses beyond it.
    pub queue: usize,
    /// Events per statement, at most. A batch also closes once its payloads pass
    /// [`BATCH_BYTES`], so that large payloads cannot make one statement huge.
    pub batch: usize,
}

impl Default for DurableOptions {
    fn default() -> DurableOptions {
        DurableOptions { queue: 65_536, batch: 4096 }
    }
}

/// What a restarted router needs (see [`Durable::load`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Retained events of durable topics, in seq order.
    pub events: Vec<StoredEvent>,
    /// The last position ever written to each durable topic, pruned or not, ordered
    /// by the topic's bytes. Topics' `Arc<str>` are shared with `events`.
    pub heads: Vec<(Arc<str>, Position)>,
    /// Above every seq ever written in the realm (1 when none was).
    pub next_seq: Seq,
}

/// Counters for `/metrics`, read without locking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableStats {
    pub rows_committed: u64,
    pub batches_committed: u64,
    /// Batches whose statement failed.
    pub commit_failures: u64,
    /// Events of those batches (not in the database).
    pub rows_failed: u64,
    /// Events written and not yet committed or failed.
    pub queue_len: usize,
}

/// A place in the writer's queue, taken before the topic's lock so that `write` need
/// not wait. Dropping an unused slot gives the place back.
#[derive(Debug)]
pub struct Slot(OwnedSemaphorePermit);

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection options (with a password, perhaps) stay out of logs.
        f.debug_struct("Durable").field("realm", &self.realm()).field("stats", &self.stats()).finish()
    }
}

/// A realm's durable store. Clones share one writer; it stops once the last clone is
/// dropped, after committing what was queued.
#[derive(Clone)]
pub struct Durable {
    handle: Arc<Handle>,
}

/// Tells the writer to finish when the last `Durable` goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.queue().closing = true;
        self.shared.wake.notify_one();
    }
}

/// What the handles and the writer task share.
struct Shared {
    realm: Arc<str>,
    /// For `load` and `prune`; the writer has a connection of its own.
    pool: PgPool,
    /// One permit per place in the queue. `write` forgets its slot's permit; the writer
    /// adds the permits back once the batch is over, so the bound covers events in
    /// flight too.
    room: Arc<Semaphore>,
    queue: Mutex<Queue>,
    /// Wakes the writer when a batch appears in an empty queue, or on closing.
    wake: Notify,
    batch: usize,
    rows_committed: AtomicU64,
    batches_committed: AtomicU64,
    commit_failures: AtomicU64,
    rows_failed: AtomicU64,
    queued: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    /// Oldest first; each at most `batch` events. The writer takes the front one whole.
    batches: VecDeque<Batch>,
    /// No `Durable` is left: the writer finishes the queue and stops.
    closing: bool,
    /// The writer is gone: `write` fails at once instead of queueing for nobody.
    stopped: bool,
}

struct Batch {
    events: Vec<Arc<StoredEvent>>,
    /// The events' `cost`, summed.
    bytes: usize,
    done: Finisher,
}

impl Shared {
    /// The queue is only pushed to and popped from under this lock; a panic while it
    /// was held leaves it consistent, so poisoning is ignored.
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Durable {
    /// Connects (a pool of two for `load` and `prune`, and the writer's own
    /// connection), applies this store's migrations, and starts the writer task.
    /// `queue` and `batch` below 1 are taken as 1.
    pub async fn open(database_url: &str, realm: &str, opts: DurableOptions) -> Result<Durable, ReplayError> {
        let options: PgConnectOptions = database_url.parse()?;
        // The writer's connection first: a database that refuses connections is
        // reported at once (the pool would retry until its acquire timeout), and a
        // wrong URL or a database that is down is reported by `open`, not by the first
        // commit.
        let conn = writer::connect(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let queue = opts.queue.clamp(1, Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            realm: realm.into(),
            pool,
            room: Arc::new(Semaphore::new(queue)),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            batch: opts.batch.max(1),
            rows_committed: AtomicU64::new(0),
            batches_committed: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            rows_failed: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        });
        tokio::spawn(writer::run(shared.clone(), options, conn));
        Ok(Durable { handle: Arc::new(Handle { shared }) })
    }

    pub fn realm(&self) -> &str {
        &self.handle.shared.realm
    }

    /// What a restart needs: every retained row of the realm whose topic `retention`
    /// says is durable, within each topic's limits (the last `max_events` positions,
    /// none older than `max_age`), in seq order; each such topic's head (the last
    /// position ever written, even if its rows were pruned); and the next seq.
    pub async fn load(&self, retention: &super::Retention) -> Result<Loaded, ReplayError> {
        read::load(&self.handle.shared.pool, &self.handle.shared.realm, retention).await
    }

    /// Deletes the rows of each durable topic beyond its `max_events` and older than
    /// its `max_age`; returns how many. Heads stay. Rows of topics no rule makes
    /// durable any more are left alone.
    pub async fn prune(&self, retention: &super::Retention) -> Result<u64, ReplayError> {
        read::prune(&self.handle.shared.pool, &self.handle.shared.realm, retention).await
    }

    /// A place in the queue, now or never (`None` when the queue is full or the
    /// writer has stopped).
    pub fn try_reserve(&self) -> Option<Slot> {
        self.handle.shared.room.clone().try_acquire_owned().ok().map(Slot)
    }

    /// Waits for a place in the queue; fails when the writer has stopped.
    pub async fn reserve(&self) -> Result<Slot, ReplayError> {
        self.handle.shared.room.clone().acquire_owned().await.map(Slot).map_err(|_| ReplayError::WriterStopped)
    }

    /// Queues `event` for the writer. Never blocks or awaits (the caller holds a
    /// topic's lock): a short mutex push, and a wake-up when the writer may be idle.
    /// `slot` must come from this `Durable`.
    pub fn write(&self, slot: Slot, event: Arc<StoredEvent>) -> Commit {
        let shared = &self.handle.shared;
        debug_assert!(Arc::ptr_eq(slot.0.semaphore(), &shared.room), "a Slot of another Durable");
        // The place is now the event's; the writer gives it back once its batch is over.
        slot.0.forget();
        let mut queue = shared.queue();
        if queue.stopped {
            drop(queue);
            shared.room.add_permits(1);
            return Commit::ready(Err(ReplayError::WriterStopped));
        }
        let was_empty = queue.batches.is_empty();
        let commit = match queue.batches.back_mut() {
            Some(last) if last.events.len() < shared.batch && last.bytes < BATCH_BYTES => {
                last.bytes = last.bytes.saturating_add(event.cost());
                last.events.push(event);
                last.done.commit()
            }
            _ => {
                let done = Finisher::new();
                let commit = done.commit();
                queue.batches.push_back(Batch { bytes: event.cost(), events: vec![event], done });
                commit
            }
        };
        shared.queued.fetch_add(1, Ordering::Relaxed);
        drop(queue);
        // The writer sleeps only after seeing an empty queue, so a push into a batch
        // that was already there needs no wake-up.
        if was_empty {
            shared.wake.notify_one();
        }
        commit
    }

    pub fn stats(&self) -> DurableStats {
        let s = &self.handle.shared;
        DurableStats {
            rows_committed: s.rows_committed.load(Ordering::Relaxed),
            batches_committed: s.batches_committed.load(Ordering::Relaxed),
            commit_failures: s.commit_failures.load(Ordering::Relaxed),
            rows_failed: s.rows_failed.load(Ordering::Relaxed),
            queue_len: s.queued.load(Ordering::Relaxed),
        }
    }
}
