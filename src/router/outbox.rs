//! The bounded outbox between the router and one session's writer task: the only
//! hand-off between a publisher's socket and a subscriber's socket.
//!
//! Frames are already encoded (`Bytes`, shared between subscribers). Two push paths:
//! - events are dropped when the outbox holds `max_messages` frames or `max_bytes` bytes,
//!   so a slow subscriber never slows a publisher (the caller counts and marks the gap);
//! - RPC and session control are never dropped; past the hard `rpc_bytes` cap the
//!   session is beyond saving and the caller closes it.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// What the writer task sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// One encoded WAMP message.
    Frame(Bytes),
    /// A RawSocket PONG echoing a peer's PING payload.
    Pong(Bytes),
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Outgoing::Frame(b) | Outgoing::Pong(b) => b.len(),
        }
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
    /// The hard cap is reached even for RPC: the session must be closed.
    Overflow,
    /// The session is closing; nothing more is sent.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    bytes: usize,
    closed: bool,
}

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    limits: OutboxLimits,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Outbox {
        Outbox { state: Mutex::new(State::default()), ready: Notify::new(), limits }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // critical section is a push or a drain), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an event unless the outbox is at its event bound. An empty outbox takes
    /// any event, so an event larger than `max_bytes` (but within the message size
    /// limit) still reaches a subscriber that keeps up.
    pub fn push_event(&self, frame: Bytes) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        let full = s.queue.len() >= self.limits.max_messages || s.bytes + frame.len() > self.limits.max_bytes;
        if full && !s.queue.is_empty() {
            return Err(PushError::Full);
        }
        s.bytes += frame.len();
        s.queue.push_back(Outgoing::Frame(frame));
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a frame that must not be dropped (RPC, session control).
    pub fn push(&self, item: Outgoing) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        if s.bytes + item.len() > self.limits.rpc_bytes {
            return Err(PushError::Overflow);
        }
        s.bytes += item.len();
        s.queue.push_back(item);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// Stops accepting frames. What is queued is still delivered, then the writer ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Stops accepting frames and discards what is queued (the peer is gone).
    pub fn abandon(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.queue.clear();
        s.bytes = 0;
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

    /// Waits for frames and moves up to `max` of them into `batch`. Returns false once
    /// the outbox is closed and empty. Cancel-safe: nothing is taken before the wait ends.
    pub async fn next_batch(&self, batch: &mut Vec<Outgoing>, max: usize) -> bool {
        loop {
            {
                let mut s = self.lock();
                if !s.queue.is_empty() {
                    let n = s.queue.len().min(max);
                    let state = &mut *s;
                    for item in state.queue.drain(..n) {
                        state.bytes -= item.len();
                        batch.push(item);
                    }
                    return true;
                }
                if s.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(OutboxLimits { max_messages: 2, max_bytes: 10, rpc_bytes: 20 })
    }

    #[tokio::test]
    async fn events_are_dropped_at_the_bound_rpc_is_not() {
        let o = outbox();
        assert_eq!(o.push_event(Bytes::from_static(b"aaaa")), Ok(()));
        assert_eq!(o.push_event(Bytes::from_static(b"bbbb")), Ok(()));
        assert_eq!(o.push_event(Bytes::from_static(b"c")), Err(PushError::Full));
        assert_eq!(o.push(Outgoing::Frame(Bytes::from_static(b"rpc-frame"))), Ok(()));
        assert_eq!(o.push(Outgoing::Frame(Bytes::from_static(b"too-much"))), Err(PushError::Overflow));
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 10).await);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[2], Outgoing::Frame(Bytes::from_static(b"rpc-frame")));
        assert_eq!(o.push_event(Bytes::from_static(b"dddd")), Ok(()));
    }

    #[tokio::test]
    async fn byte_bound_applies_to_events_but_an_empty_outbox_takes_one() {
        let o = outbox();
        assert_eq!(o.push_event(Bytes::from_static(b"0123456789x")), Ok(()));
        assert_eq!(o.push_event(Bytes::from_static(b"y")), Err(PushError::Full));
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 10).await);
        assert_eq!(batch, vec![Outgoing::Frame(Bytes::from_static(b"0123456789x"))]);
        assert_eq!(o.push_event(Bytes::from_static(b"0123456")), Ok(()));
        assert_eq!(o.push_event(Bytes::from_static(b"0123")), Err(PushError::Full));
    }

    #[tokio::test]
    async fn close_delivers_what_is_queued_then_ends() {
        let o = outbox();
        o.push(Outgoing::Frame(Bytes::from_static(b"abort"))).unwrap();
        o.close();
        assert_eq!(o.push_event(Bytes::from_static(b"x")), Err(PushError::Closed));
        let mut batch = Vec::new();
        assert!(o.next_batch(&mut batch, 10).await);
        assert_eq!(batch.len(), 1);
        assert!(!o.next_batch(&mut batch, 10).await);
    }
}
