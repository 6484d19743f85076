//! The authorizer's announcements to the router: whose answers changed (re-check what
//! their sessions hold) and whose sessions must end (a revoked token, a disabled
//! user). The router follows the feed; the authorizer never reaches into it.
//!
//! Announcements coalesce instead of queueing: a subject named twice before the router
//! drained the feed is re-checked once, so the feed is bounded by the number of
//! distinct subjects, however many changes arrive, and nothing is ever dropped.

use std::collections::{HashMap, HashSet};
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

/// How the change log and a session name a key as the credential it was opened with
/// (`Ending::token`, `SessionHandle::token`), beside API token hashes, which never
/// start with `key:`.
pub const KEY_CREDENTIAL: &str = "key:";

/// The kinds of credential a session can have been opened with, for ending every
/// session of one kind at once: a TRUNCATE of the credential's table names no row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// An API token (the session's credential is the token's hash).
    ApiToken,
    /// A WAMP-Cryptosign key of the permission graph (`key:<pubkey>`).
    Key,
}

impl CredentialKind {
    pub fn of(credential: &str) -> CredentialKind {
        if credential.starts_with(KEY_CREDENTIAL) {
            CredentialKind::Key
        } else {
            CredentialKind::ApiToken
        }
    }
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
    /// Every session opened with a credential of this kind ends, with this message.
    pub end_opened_with: HashMap<CredentialKind, String>,
}

impl ChangeBatch {
    pub fn is_empty(&self) -> bool {
        !self.recheck_all && self.recheck.is_empty() && self.end.is_empty() && self.end_opened_with.is_empty()
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

    /// Every session opened with a credential of `kind` ends.
    pub fn end_opened_with(&self, kind: CredentialKind, message: &str) {
        self.with(|b| {
            b.end_opened_with.insert(kind, message.to_owned());
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
        feed.end_opened_with(CredentialKind::Key, "every key was deleted");
        feed.end_opened_with(CredentialKind::Key, "every key was deleted");
        let batch = feed.next().await;
        assert_eq!(batch.end_opened_with, HashMap::from([(CredentialKind::Key, "every key was deleted".to_owned())]));
    }

    #[test]
    fn a_credential_is_a_key_by_its_prefix_and_otherwise_a_token_hash() {
        assert_eq!(CredentialKind::of("key:0a1b"), CredentialKind::Key);
        assert_eq!(CredentialKind::of(&"ab".repeat(32)), CredentialKind::ApiToken);
    }
}
