//! The process-wide memory budget: one count of the bytes held in partially received
//! messages and in queued outgoing messages, across every connection, so that no mix of
//! peers (large frames sent slowly, results never read) can take the process past
//! `memory_budget_bytes`.
//!
//! Who charges what, and what happens when the budget is spent:
//! - an inbound message larger than `INBOUND_FREE` charges its whole size before its
//!   payload is buffered; it waits for budget (bounded by the frame deadline);
//! - an outbox charges whole `CHUNK`s as its queue grows (events that cannot be charged
//!   are dropped and marked `_dropped`; large RPC messages are refused and the caller
//!   told; small control messages are charged even past the limit, since they are the
//!   answers that say what happened).
//!
//! Queues may fill only three quarters of the budget: the last quarter is kept for
//! messages being received, so that subscribers who do not read can never make a
//! publisher's large message wait (a slow browser never slows a publisher).
//!
//! Charging in chunks keeps the shared counter off the hot path: a subscriber that keeps
//! up touches it about once per written batch, not once per event.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Inbound messages up to this size are read without charging the budget: every
/// connection's read buffer grows this far anyway.
pub const INBOUND_FREE: usize = 64 * 1024;
/// Outboxes charge the budget in units of this size.
pub const CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// What queues may use: the limit less the quarter kept for inbound messages.
    queue_limit: usize,
    used: AtomicUsize,
    /// Inbound readers waiting for budget; releases wake them only when there are some.
    waiters: AtomicUsize,
    released: Notify,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            queue_limit: limit - limit / 4,
            used: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            released: Notify::new(),
        }
    }


    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `n` bytes for an inbound message if they fit under the limit.
    pub fn try_charge(&self, n: usize) -> bool {
        self.charge_under(n, self.limit)
    }

    /// Charges `n` bytes for a queue if they fit under the queues' share.
    pub fn try_charge_queue(&self, n: usize) -> bool {
        self.charge_under(n, self.queue_limit)
    }

    fn charge_under(&self, n: usize, limit: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(n).filter(|&after| after <= limit))
            .is_ok()
    }

    /// Charges `n` bytes even past the limit (small control messages).
    pub fn force_charge(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    pub fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, Ordering::AcqRel);
        if self.waiters.load(Ordering::Acquire) > 0 {
            self.released.notify_waiters();
        }
    }

    /// Charges `n` bytes, waiting for other holders to release them. Cancel-safe: a
    /// cancelled wait has charged nothing.
    pub async fn charge(&self, n: usize) {
        loop {
            // Registered before the check, so that a release between the check and the
            // wait is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.try_charge(n) {
                return;
            }
            self.waiters.fetch_add(1, Ordering::AcqRel);
            let _gone = Waiting(&self.waiters);
            released.await;
        }
    }
}

/// Counts a waiting reader for as long as it waits (its future may be dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn queues_leave_a_quarter_for_inbound_messages() {
        let b = MemoryBudget::new(100);
        assert!(b.try_charge_queue(75));
        assert!(!b.try_charge_queue(1));
        assert!(b.try_charge(25), "the last quarter is there for inbound messages");
        assert_eq!(b.used(), 100);
    }

    #[test]
    fn charges_fit_under_the_limit_or_are_refused() {
        let b = MemoryBudget::new(100);
        assert!(b.try_charge(60));
        assert!(!b.try_charge(41));
        assert!(b.try_charge(40));
        assert_eq!(b.used(), 100);
        b.force_charge(10);
        assert_eq!(b.used(), 110);
        assert!(!b.try_charge(1));
        b.release(30);
        assert!(b.try_charge(20));
        assert_eq!(b.used(), 100);
    }

    #[tokio::test]
    async fn a_waiting_charge_proceeds_once_enough_is_released() {
        let b = Arc::new(MemoryBudget::new(100));
        assert!(b.try_charge(80));
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.charge(50).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        b.release(20);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "60 + 50 still does not fit");
        b.release(30);
        tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        assert_eq!(b.used(), 80);
        assert_eq!(b.waiters.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_charges_nothing() {
        let b = MemoryBudget::new(10);
        assert!(b.try_charge(10));
        assert!(tokio::time::timeout(Duration::from_millis(10), b.charge(5)).await.is_err());
        assert_eq!((b.used(), b.waiters.load(Ordering::Relaxed)), (10, 0));
    }
}
