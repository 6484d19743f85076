//! Admission of connections, before any of them is a session.
//!
//! A process can hold only as many connections as it has file descriptors, and a
//! stranger can open connections for free. So the gate admits at most `limit`
//! connections (the lower of `max_sessions` and what the descriptor limit leaves after
//! a reserve), and when it is full, a new connection takes the place of the oldest one
//! that has not yet established a WAMP session: idle or slow handshakes cannot lock
//! clients out, because a client that completes its handshake in milliseconds always
//! outlives a flood of connections that never do. Only when every place is held by an
//! established session is a connection refused, with the transport's documented answer
//! (HTTP 503, RawSocket error 4); a few refusals at a time are answered (the reserve
//! pays for their descriptors), beyond that a connection is simply closed.
//!
//! An evicted connection takes a moment to close, so before accepting the next one the
//! listener waits for the evictions in flight (`wait_for_room`): a burst of connections
//! waits in the kernel's backlog, costing no descriptor, instead of being refused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

#[derive(Debug)]
pub struct Gate {
    limit: usize,
    /// Connections admitted past `limit` while the ones they evicted close.
    slack: usize,
    open: AtomicUsize,
    /// Connections without an established session, oldest first, with the token that
    /// closes each.
    pending: Mutex<BTreeMap<u64, CancellationToken>>,
    next_id: AtomicU64,
    refusing: AtomicUsize,
    max_refusing: usize,
    /// Evicted connections that have not closed yet.
    evicting: AtomicUsize,
    /// Signalled whenever a connection closes.
    released: Notify,
    /// Connections closed since start.
    closed: AtomicU64,
    metrics: Arc<Metrics>,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub enum Admit {
    Admitted(Admission),
    /// Answer with the transport's refusal, then close.
    Refused(Refusal),
    /// Close at once: too many refusals are being answered already.
    Dropped,
}

impl Gate {
    /// `limit` connections, plus `reserve` descriptors kept for refusals and evictions
    /// in progress.
    pub fn new(limit: usize, reserve: usize, metrics: Arc<Metrics>) -> Gate {
        Gate {
            limit,
            slack: reserve / 2,
            open: AtomicUsize::new(0),
            pending: Mutex::default(),
            next_id: AtomicU64::new(0),
            refusing: AtomicUsize::new(0),
            max_refusing: (reserve / 4).max(1),
            evicting: AtomicUsize::new(0),
            released: Notify::new(),
            closed: AtomicU64::new(0),
            metrics,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn closed_total(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CancellationToken>> {
        // Every critical section is one insert or removal; a poisoned map is consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns once the gate is below its limit or no eviction is in flight, so the
    /// next connection will not be refused for want of a place an evicted connection is
    /// about to free. Cancel-safe.
    pub async fn wait_for_room(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.open() < self.limit || self.evicting.load(Ordering::Acquire) == 0 {
                return;
            }
            released.await;
        }
    }

    /// Decides about a connection just accepted. `closing`: the router is shutting down.
    pub fn admit(self: &Arc<Self>, closing: bool) -> Admit {
        if !closing {
            let n = self.open.fetch_add(1, Ordering::AcqRel);
            if n < self.limit || (n < self.limit + self.slack && self.evict_oldest()) {
                return Admit::Admitted(self.register());
            }
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        self.metrics.sessions_refused.inc();
        if self.refusing.fetch_add(1, Ordering::AcqRel) < self.max_refusing {
            Admit::Refused(Refusal(self.clone()))
        } else {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            Admit::Dropped
        }
    }

    fn register(self: &Arc<Self>) -> Admission {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        self.pending().insert(id, evicted.clone());
        Admission { gate: self.clone(), id, evicted, established: Arc::new(AtomicBool::new(false)) }
    }

    /// Closes the oldest connection without a session; false when there is none.
    fn evict_oldest(&self) -> bool {
        let Some((_, token)) = self.pending().pop_first() else { return false };
        self.evicting.fetch_add(1, Ordering::AcqRel);
        token.cancel();
        self.metrics.connections_evicted.inc();
        true
    }
}

/// One admitted connection's place. Dropping it frees the place.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<Gate>,
    id: u64,
    evicted: CancellationToken,
    established: Arc<AtomicBool>,
}

impl Admission {
    /// Cancelled when a newer connection takes this one's place (only before its
    /// session is established).
    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }

    /// The session is established: the connection can no longer be evicted, and its
    /// transport may accept full-size messages.
    pub fn establish(&self) {
        if !self.established.swap(true, Ordering::AcqRel) {
            self.gate.pending().remove(&self.id);
        }
    }

    /// Shared with the transport's reader, which applies the pre-session size limit
    /// until it is set.
    pub fn established_flag(&self) -> Arc<AtomicBool> {
        self.established.clone()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if !self.established.load(Ordering::Acquire) {
            self.gate.pending().remove(&self.id);
        }
        if self.evicted.is_cancelled() {
            self.gate.evicting.fetch_sub(1, Ordering::AcqRel);
        }
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        self.gate.closed.fetch_add(1, Ordering::Relaxed);
        self.gate.released.notify_waiters();
    }
}

/// A refusal being answered; dropping it frees its place among the refusals.
#[derive(Debug)]
pub struct Refusal(Arc<Gate>);

impl Drop for Refusal {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limit: usize, reserve: usize) -> Arc<Gate> {
        Arc::new(Gate::new(limit, reserve, Arc::new(Metrics::new())))
    }

    fn admitted(a: Admit) -> Admission {
        match a {
            Admit::Admitted(a) => a,
            other => panic!("expected admission, got {other:?}"),
        }
    }

    #[test]
    fn a_full_gate_evicts_the_oldest_pending_connection() {
        let g = gate(2, 8);
        let first = admitted(g.admit(false));
        let second = admitted(g.admit(false));
        let third = admitted(g.admit(false));
        assert!(first.evicted().is_cancelled());
        assert!(!second.evicted().is_cancelled());
        assert_eq!(g.open(), 3, "until the evicted one closes");
        drop(first);
        assert_eq!(g.open(), 2);
        drop((second, third));
        assert_eq!((g.open(), g.pending().len()), (0, 0));
    }

    #[test]
    fn established_sessions_are_never_evicted_and_refusals_are_bounded() {
        let g = gate(2, 8);
        let a = admitted(g.admit(false));
        let b = admitted(g.admit(false));
        a.establish();
        b.establish();
        let refusals: Vec<Admit> = (0..3).map(|_| g.admit(false)).collect();
        assert!(matches!(refusals[0], Admit::Refused(_)));
        assert!(matches!(refusals[1], Admit::Refused(_)));
        assert!(matches!(refusals[2], Admit::Dropped), "at most reserve/4 refusals answered at once");
        assert!(!a.evicted().is_cancelled());
        assert_eq!(g.metrics.sessions_refused.get(), 3);
        drop(refusals);
        assert!(matches!(g.admit(false), Admit::Refused(_)));
        drop(a);
        let c = admitted(g.admit(false));
        assert!(!b.evicted().is_cancelled());
        drop((b, c));
        assert_eq!(g.open(), 0);
    }

    #[test]
    fn evictions_stop_at_the_slack() {
        let g = gate(1, 4);
        let mut held = vec![admitted(g.admit(false))];
        // limit 1, slack 2: two more can evict while the evicted have not closed yet.
        held.push(admitted(g.admit(false)));
        held.push(admitted(g.admit(false)));
        assert!(matches!(g.admit(false), Admit::Refused(_)));
        assert_eq!(g.metrics.connections_evicted.get(), 2);
        drop(held);
        assert_eq!(g.open(), 0);
    }

    #[tokio::test]
    async fn the_listener_waits_for_evicted_connections_to_close() {
        let g = gate(1, 8);
        let first = admitted(g.admit(false));
        tokio::time::timeout(std::time::Duration::from_millis(10), g.wait_for_room()).await.expect("no eviction in flight");
        let second = admitted(g.admit(false));
        assert!(first.evicted().is_cancelled());
        let waiting = tokio::spawn({
            let g = g.clone();
            async move { g.wait_for_room().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the evicted connection is still open");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.unwrap().unwrap();
        assert_eq!(g.evicting.load(Ordering::Relaxed), 0);
        drop(second);
    }

    #[test]
    fn a_closing_router_admits_nothing() {
        let g = gate(10, 8);
        assert!(matches!(g.admit(true), Admit::Refused(_)));
        assert_eq!(g.open(), 0);
    }
}
