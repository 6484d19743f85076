//! The control inbox of one session: how the router reaches a live session from
//! outside its connection (a permission withdrawn, an operator's kill, a token that
//! expired). The session's own task serves it, beside the frames from its peer, so
//! everything a session holds changes on one task only and leaving, unsubscribing and
//! revoking can never disagree (`session/holdings.rs`).
//!
//! Bounded: at most `CAPACITY` messages wait. A re-check request is a flag rather than
//! a message, so a storm of permission changes coalesces into one re-check and never
//! fills the inbox. When the inbox is full anyway, the sender is told and closes the
//! session (fail closed: a session that cannot be told of a revocation must not keep
//! what was revoked). Nothing is allocated until a message is sent, so idle sessions
//! pay a few words for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

/// Messages waiting at most; beyond, `send` fails.
pub const CAPACITY: usize = 32;

/// What the router can ask of a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Re-check every revocable subscription and registration against the authorizer.
    Recheck,
    /// End subscription `id`, telling the client why when it announced
    /// `subscription_revocation`.
    RevokeSubscription { id: u64, reason: &'static str },
    /// End registration `id` and the calls in flight to it.
    RevokeRegistration { id: u64, reason: &'static str },
    /// Say GOODBYE with `reason` (a URI such as `wamp.close.revoked`) and leave.
    Close(Box<Closing>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's control inbox is full")]
pub struct InboxFull;

#[derive(Debug, Default)]
pub struct ControlInbox {
    queue: Mutex<VecDeque<Control>>,
    recheck: AtomicBool,
    ready: Notify,
}

impl ControlInbox {
    pub fn new() -> ControlInbox {
        ControlInbox::default()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Control>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn send(&self, c: Control) -> Result<(), InboxFull> {
        if c == Control::Recheck {
            self.request_recheck();
            return Ok(());
        }
        let mut q = self.queue();
        if q.len() >= CAPACITY {
            return Err(InboxFull);
        }
        q.push_back(c);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Asks for a re-check; any number of requests before the session gets to it make one.
    pub fn request_recheck(&self) {
        if !self.recheck.swap(true, Ordering::AcqRel) {
            self.ready.notify_one();
        }
    }

    /// The next message: queued messages first, in order, then a pending re-check (so a
    /// revocation already decided is carried out before anything is re-evaluated).
    /// Cancel-safe: nothing is taken until it is returned.
    pub async fn recv(&self) -> Control {
        loop {
            if let Some(c) = self.queue().pop_front() {
                return c;
            }
            // Cleared before the re-check runs: a change announced during it asks again.
            if self.recheck.swap(false, Ordering::AcqRel) {
                return Control::Recheck;
            }
            self.ready.notified().await;
        }
    }

    pub fn len(&self) -> usize {
        self.queue().len() + usize::from(self.recheck.load(Ordering::Acquire))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn revoke(id: u64) -> Control {
        Control::RevokeSubscription { id, reason: "wamp.error.not_authorized" }
    }

    #[tokio::test]
    async fn messages_come_in_order_then_one_recheck() {
        let inbox = ControlInbox::new();
        inbox.request_recheck();
        inbox.send(revoke(1)).unwrap();
        inbox.send(Control::Recheck).unwrap();
        inbox.send(revoke(2)).unwrap();
        inbox.request_recheck();
        assert_eq!(inbox.len(), 3);
        assert_eq!(inbox.recv().await, revoke(1));
        assert_eq!(inbox.recv().await, revoke(2));
        assert_eq!(inbox.recv().await, Control::Recheck);
        assert!(inbox.is_empty());
        assert!(tokio::time::timeout(Duration::from_millis(20), inbox.recv()).await.is_err());
    }

    #[tokio::test]
    async fn a_full_inbox_refuses_and_rechecks_still_coalesce() {
        let inbox = ControlInbox::new();
        for id in 0..CAPACITY as u64 {
            inbox.send(revoke(id)).unwrap();
        }
        assert_eq!(inbox.send(revoke(99)), Err(InboxFull));
        // A re-check needs no room.
        for _ in 0..1000 {
            inbox.send(Control::Recheck).unwrap();
        }
        assert_eq!(inbox.len(), CAPACITY + 1);
        for id in 0..CAPACITY as u64 {
            assert_eq!(inbox.recv().await, revoke(id));
        }
        assert_eq!(inbox.recv().await, Control::Recheck);
        assert!(inbox.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send() {
        let inbox = std::sync::Arc::new(ControlInbox::new());
        let rx = inbox.clone();
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        inbox.send(Control::Close(Box::new(Closing { reason: "wamp.close.revoked".into(), message: "m".into() }))).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        assert_eq!(got, Control::Close(Box::new(Closing { reason: "wamp.close.revoked".into(), message: "m".into() })));
    }
}
