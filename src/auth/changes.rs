//! The authorizer's announcements to the router: whose answers changed (re-check what
//! their sessions hold) and whose sessions must end (a revoked token, a disabled
//! user). The router follows the feed; the authorizer never reaches into it.
//!
//! Announcements coalesce instead of queueing: a subject named twice before the router
//! drained the feed is re-checked once, so the feed is bounded by the number of
//! distinct subjects, however many changes arrive, and nothing is ever dropped.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Sessions to close: every session of `authid`, or only those opened with `token`
/// (a token's identity as the authenticator knows it, e.g. its hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ending {
    pub authid: String,
    pub token: Option<String>,
    /// Said in GOODBYE.Details.message.
    pub message: String,
}

/// What the router must act on, drained at once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Every revocable holding of every session must be re-checked (the authorizer lost
    /// track: a reconnect, a full invalidation).
    pub recheck_all: bool,
    /// Subjects (authids) whose revocable holdings must be re-checked.
    pub recheck: HashSet<String>,
    pub end: HashSet<Ending>,
}

impl ChangeBatch {
    pub fn is_empty(&self) -> bool {
        !self.recheck_all && self.recheck.is_empty() && self.end.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct ChangeFeed {
    pending: Mutex<ChangeBatch>,
    ready: Notify,
}

impl ChangeFeed {
    pub fn new() -> ChangeFeed {
        ChangeFeed::default()
    }

    fn with(&self, f: impl FnOnce(&mut ChangeBatch)) {
        f(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        self.ready.notify_one();
    }

    pub fn recheck(&self, authid: &str) {
        self.with(|b| {
            b.recheck.insert(authid.to_owned());
        });
    }

    pub fn recheck_all(&self) {
        self.with(|b| b.recheck_all = true);
    }

    pub fn end(&self, ending: Ending) {
        self.with(|b| {
            b.end.insert(ending);
        });
    }

    /// Waits for announcements and takes all of them. One consumer (the realm).
    pub async fn next(&self) -> ChangeBatch {
        loop {
            // `notify_one` stores a permit when nobody waits, so an announcement made
            // between the check and the wait is not missed.
            let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            if !batch.is_empty() {
                return batch;
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn announcements_coalesce_and_are_taken_at_once() {
        let feed = ChangeFeed::new();
        feed.recheck("alice");
        feed.recheck("alice");
        feed.recheck("bob");
        let end = Ending { authid: "carol".into(), token: Some("h1".into()), message: "token revoked".into() };
        feed.end(end.clone());
        feed.end(end.clone());
        let batch = feed.next().await;
        assert_eq!(batch.recheck, HashSet::from(["alice".to_owned(), "bob".to_owned()]));
        assert_eq!(batch.end, HashSet::from([end]));
        assert!(!batch.recheck_all);
        // Drained: the next call waits until something new is announced.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), feed.next()).await.is_err());
        feed.recheck_all();
        assert!(feed.next().await.recheck_all);
    }
}
