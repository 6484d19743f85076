//! The bounded outbox between the router and one session's writer task: the only
//! hand-off between a publisher's socket and a subscriber's socket.
//!
//! Frames are already encoded (`Bytes`, shared between subscribers). Bytes count from
//! the moment a frame is queued until the writer has written it; beyond a queue's first
//! `FREE` bytes they are charged to the process's memory budget in whole chunks
//! (`budget.rs`). Three push paths:
//! - events are dropped when the outbox holds `max_messages` frames or `max_bytes` bytes,
//!   or when the budget cannot cover them, so a slow subscriber never slows a publisher
//!   (the caller counts and marks the gap). An empty queue always takes one event, so an
//!   event larger than `max_bytes` still reaches a subscriber that keeps up;
//! - RPC and session control are never dropped; past the hard `rpc_bytes` cap the
//!   session is beyond saving and the caller closes it. A large RPC message the budget
//!   cannot cover is refused (the caller fails the call instead); a small one is
//!   charged even past the budget, since it is the answer that says what happened;
//! - a RawSocket PONG is dropped like an event: a peer that does not read its PONGs
//!   must not make the router hold copies of its PINGs.
//!
//! A subscription that could not be given an event of a stored topic is not dropped
//! from: it is marked lagging and registers a [`Refill`] here. The writer calls the
//! refills each time it has written a batch, and they queue the missed events from the
//! replay store while there is room, until their subscription is live again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use super::budget::{MemoryBudget, CHUNK};

/// RPC and control messages up to this size are charged to the budget even past it.
const SMALL: usize = 4 * 1024;
/// The first bytes of every queue are not charged to the budget, like a read buffer:
/// a subscriber that keeps up never touches the shared counter (charging every short
/// queue cost 15 % of fan-out throughput in contention on it).
pub const FREE: usize = 16 * 1024;

/// What the writer task sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// One encoded WAMP message.
    Frame(Bytes),
    /// A RawSocket PONG echoing a peer's PING payload.
    Pong(Bytes),
}

impl Outgoing {
    pub fn len(&self) -> usize {
        match self {
            Outgoing::Frame(b) | Outgoing::Pong(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
    pub rpc_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The event bound is reached; the event was not queued.
    Full,
    /// The process's memory budget cannot cover the message; it was not queued.
    Budget,
    /// The hard cap is reached even for RPC: the session must be closed.
    Overflow,
    /// The session is closing; nothing more is sent.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    /// Bytes in `queue`.
    queued: usize,
    /// Bytes the writer took in its last batch and has not finished writing.
    in_flight: usize,
    /// Bytes charged to the budget: whole chunks covering `queued + in_flight` beyond
    /// `FREE`.
    leased: usize,
    closed: bool,
}

impl State {
    fn held(&self) -> usize {
        self.queued + self.in_flight
    }
}

/// Work that puts missed events back into an outbox as it drains (a lagging
/// subscription catching up from the replay store).
pub trait Refill: Send + Sync + std::fmt::Debug {
    /// Queues what fits; true while more remains (the refill stays registered).
    fn refill(&self) -> bool;
}

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    limits: OutboxLimits,
    budget: Arc<MemoryBudget>,
    /// Drivers of this session's lagging subscriptions (one per lagging subscription;
    /// a stale duplicate ends itself at its next run).
    refills: Mutex<Vec<Arc<dyn Refill>>>,
    lagging: AtomicBool,
}

/// The lease that covers `held` bytes: whole chunks for what is beyond `FREE`.
fn chunks(held: usize) -> usize {
    held.saturating_sub(FREE).div_ceil(CHUNK) * CHUNK
}

impl Outbox {
    pub fn new(limits: OutboxLimits, budget: Arc<MemoryBudget>) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            limits,
            budget,
            refills: Mutex::default(),
            lagging: AtomicBool::new(false),
        }
    }

    /// How many more events the outbox takes now (by its message and byte bounds).
    pub fn room(&self) -> usize {
        let s = self.lock();
        if s.closed || s.held() >= self.limits.max_bytes {
            return usize::from(!s.closed && s.queue.is_empty());
        }
        self.limits.max_messages.saturating_sub(s.queue.len())
    }

    /// Registers a lagging subscription's refill, run after every written batch.
    pub fn lag(&self, r: Arc<dyn Refill>) {
        self.refills.lock().unwrap_or_else(|p| p.into_inner()).push(r);
        self.lagging.store(true, Ordering::Release);
    }

    pub fn is_lagging(&self) -> bool {
        self.lagging.load(Ordering::Acquire)
    }

    /// Runs the registered refills, keeping those not yet done. Called by the writer
    /// task (and once by the session when a subscription starts with history).
    pub fn refill(&self) {
        if !self.is_lagging() {
            return;
        }
        let pending: Vec<Arc<dyn Refill>> = std::mem::take(&mut *self.refills.lock().unwrap_or_else(|p| p.into_inner()));
        let still: Vec<_> = pending.into_iter().filter(|r| r.refill()).collect();
        let mut refills = self.refills.lock().unwrap_or_else(|p| p.into_inner());
        refills.extend(still);
        self.lagging.store(!refills.is_empty(), Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // critical section is a push or a drain), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Extends the lease to cover `held` bytes; false when the budget cannot.
    fn lease(&self, s: &mut State, held: usize, force: bool) -> bool {
        let needed = chunks(held);
        if needed <= s.leased {
            return true;
        }
        let more = needed - s.leased;
        if !self.budget.try_charge_queue(more) {
            if !force {
                return false;
            }
            self.budget.force_charge(more);
        }
        s.leased += more;
        true
    }

    fn enqueue(&self, mut s: std::sync::MutexGuard<'_, State>, item: Outgoing) {
        s.queued += item.len();
        s.queue.push_back(item);
        drop(s);
        self.ready.notify_one();
    }

    /// Queues an event unless the outbox is at its event bound or the budget is spent.
    pub fn push_event(&self, frame: Bytes) -> Result<(), PushError> {
        self.push_droppable(Outgoing::Frame(frame))
    }

    fn push_droppable(&self, item: Outgoing) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        let held = s.held() + item.len();
        let full = s.queue.len() >= self.limits.max_messages || held > self.limits.max_bytes;
        if full && !s.queue.is_empty() {
            return Err(PushError::Full);
        }
        if !self.lease(&mut s, held, false) {
            return Err(PushError::Budget);
        }
        self.enqueue(s, item);
        Ok(())
    }

    /// Queues a frame that must not be dropped (RPC, session control).
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        let held = s.held() + frame.len();
        if held > self.limits.rpc_bytes {
            return Err(PushError::Overflow);
        }
        if !self.lease(&mut s, held, frame.len() <= SMALL) {
            return Err(PushError::Budget);
        }
        self.enqueue(s, Outgoing::Frame(frame));
        Ok(())
    }

    /// Queues a RawSocket PONG, or drops it when the outbox could not take an event.
    pub fn push_pong(&self, payload: Bytes) -> Result<(), PushError> {
        self.push_droppable(Outgoing::Pong(payload))
    }

    /// Stops accepting frames. What is queued is still delivered, then the writer ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Stops accepting frames and discards what is queued (the peer is gone).
    pub fn abandon(&self) {
        self.refills.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut s = self.lock();
        s.closed = true;
        s.queue.clear();
        s.queued = 0;
        self.shrink_lease(&mut s);
        drop(s);
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes queued or being written.
    pub fn held_bytes(&self) -> usize {
        self.lock().held()
    }

    /// Gives back the budget no longer needed: the lease covers what is held, in chunks.
    fn shrink_lease(&self, s: &mut State) {
        let keep = chunks(s.held());
        if s.leased > keep {
            self.budget.release(s.leased - keep);
            s.leased = keep;
        }
    }

    /// Waits for frames and moves them into `batch`: up to `max_frames`, and no more
    /// than `max_bytes` unless a single frame is larger. Returns false once the outbox is
    /// closed and empty. Cancel-safe: nothing is taken before the wait ends. The caller
    /// reports with `written` when the batch is out.
    pub async fn next_batch(&self, batch: &mut Vec<Outgoing>, max_frames: usize, max_bytes: usize) -> bool {
        loop {
            {
                let mut s = self.lock();
                if !s.queue.is_empty() {
                    let mut taken = 0;
                    while let Some(front) = s.queue.front() {
                        if batch.len() == max_frames || (taken > 0 && taken + front.len() > max_bytes) {
                            break;
                        }
                        let Some(item) = s.queue.pop_front() else { break };
                        taken += item.len();
                        batch.push(item);
                    }
                    s.queued -= taken;
                    s.in_flight += taken;
                    return true;
                }
                if s.closed {
                    return false;
                }
            }
            self.ready.notified().await;
            // Woken by the first frame: let the tasks already runnable (other
            // sessions' readers) queue theirs before taking the batch, so one write
            // carries them all.
            tokio::task::yield_now().await;
        }
    }

    /// The writer has written (or given up on) everything it took.
    pub fn written(&self) {
        let mut s = self.lock();
        s.in_flight = 0;
        self.shrink_lease(&mut s);
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let leased = self.lock().leased;
        self.budget.release(leased);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox_with(budget: usize) -> (Outbox, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(budget));
        (Outbox::new(OutboxLimits { max_messages: 2, max_bytes: 10, rpc_bytes: 20 }, budget.clone()), budget)
    }

    fn outbox() -> Outbox {
        outbox_with(1 << 30).0
    }

    fn frame(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    #[tokio::test]
    async fn events_are_dropped_at_the_bound_rpc_is_not() {
        let o = outbox();
        assert_eq!(o.push_event(frame(b"aaaa")), Ok(()));
        assert_eq!(o.push_event(frame(b"bbbb")), Ok(()));
        assert_eq!(o.push_event(frame(b"c")), Err(PushError::Full));
        assert_eq!(o.push(frame(b"rpc-frame")), Ok(()));
        assert_eq!(o.push(frame(b"too-much")), Err(PushError::Overflow));
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 10, 1 << 20).await);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[2], Outgoing::Frame(frame(b"rpc-frame")));
        // Taken but not yet written still counts against the bound.
        assert_eq!(o.push_event(frame(b"dddd")), Ok(()));
        assert_eq!(o.push_event(frame(b"eeeeeeeeeeeeeeeeeeeeeeeeee")), Err(PushError::Full));
        o.written();
        assert_eq!(o.held_bytes(), 4);
    }

    #[tokio::test]
    async fn byte_bound_applies_to_events_but_an_empty_outbox_takes_one() {
        let o = outbox();
        assert_eq!(o.push_event(frame(b"0123456789x")), Ok(()));
        assert_eq!(o.push_event(frame(b"y")), Err(PushError::Full));
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 10, 1 << 20).await);
        assert_eq!(batch, vec![Outgoing::Frame(frame(b"0123456789x"))]);
        o.written();
        assert_eq!(o.push_event(frame(b"0123456")), Ok(()));
        assert_eq!(o.push_event(frame(b"0123")), Err(PushError::Full));
    }

    #[tokio::test]
    async fn batches_are_bounded_in_frames_and_bytes() {
        let o = Outbox::new(OutboxLimits { max_messages: 100, max_bytes: 100, rpc_bytes: 100 }, Arc::new(MemoryBudget::new(1 << 20)));
        for f in [&b"aaaa"[..], b"bbbb", b"cccc", b"dddddddddddd"] {
            o.push_event(Bytes::copy_from_slice(f)).unwrap();
        }
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 2, 100).await);
        assert_eq!(batch.len(), 2);
        batch.clear();
        o.written();
        // 9 bytes allowed: "cccc" fits, the 12-byte frame does not join it...
        assert!(o.next_batch(&mut batch, 10, 9).await);
        assert_eq!(batch, vec![Outgoing::Frame(frame(b"cccc"))]);
        batch.clear();
        o.written();
        // ...but a frame larger than the byte bound goes alone.
        assert!(o.next_batch(&mut batch, 10, 9).await);
        assert_eq!(batch, vec![Outgoing::Frame(frame(b"dddddddddddd"))]);
    }

    #[tokio::test]
    async fn the_budget_is_charged_in_chunks_beyond_the_free_bytes_and_given_back_when_written() {
        // Queues may use three quarters: two chunks.
        let budget = Arc::new(MemoryBudget::new(2 * CHUNK * 4 / 3 + 1));
        let o = Outbox::new(OutboxLimits { max_messages: 100, max_bytes: 1 << 30, rpc_bytes: 1 << 30 }, budget.clone());
        assert_eq!(o.push_event(Bytes::from(vec![0u8; FREE])), Ok(()));
        assert_eq!(budget.used(), 0, "a queue's first bytes are free");
        assert_eq!(o.push_event(frame(b"x")), Ok(()));
        assert_eq!(budget.used(), CHUNK);
        let big = Bytes::from(vec![0u8; CHUNK]);
        assert_eq!(o.push_event(big.clone()), Ok(()));
        assert_eq!(budget.used(), 2 * CHUNK);
        // Neither an event nor a large RPC frame fits; a small RPC frame is charged anyway.
        assert_eq!(o.push_event(big.clone()), Err(PushError::Budget));
        assert_eq!(o.push(big), Err(PushError::Budget));
        for _ in 0..CHUNK / SMALL {
            assert_eq!(o.push(Bytes::from(vec![1u8; SMALL])), Ok(()));
        }
        assert_eq!(o.held_bytes(), FREE + 1 + 2 * CHUNK);
        assert_eq!(budget.used(), 3 * CHUNK);
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 100, 1 << 30).await);
        assert_eq!(budget.used(), 3 * CHUNK, "still held while being written");
        o.written();
        assert_eq!(budget.used(), 0);
        o.push(Bytes::from(vec![2u8; FREE + 1])).unwrap();
        assert_eq!(budget.used(), CHUNK);
        drop(o);
        assert_eq!(budget.used(), 0, "an outbox gives its lease back when it goes");
    }

    #[tokio::test]
    async fn pongs_are_dropped_like_events() {
        let o = outbox();
        assert_eq!(o.push_pong(frame(b"0123456789")), Ok(()));
        assert_eq!(o.push_pong(frame(b"p")), Err(PushError::Full));
    }

    #[tokio::test]
    async fn close_delivers_what_is_queued_then_ends() {
        let o = outbox();
        o.push(frame(b"abort")).unwrap();
        o.close();
        assert_eq!(o.push_event(frame(b"x")), Err(PushError::Closed));
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 10, 1 << 20).await);
        assert_eq!(batch.len(), 1);
        assert!(!o.next_batch(&mut batch, 10, 1 << 20).await);
    }
}
