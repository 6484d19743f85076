//! API tokens the router has found valid, by hash, so that presenting one again (each
//! HTTP bridge request carries its token; a service may join many times) costs no
//! query. Only valid answers are kept: an unknown, revoked or expired token is asked
//! again each time (failures are throttled by the authenticator).
//!
//! An answer depends on the token's row and on its user's row (kind, disabled,
//! is_admin), so a change-log row of `tokens` naming the hash, or of `principals`
//! touching the user, forgets it, as does any TRUNCATE. Changes are applied by the
//! follower a few milliseconds after their commit, as for every cached decision; while
//! the realm is offline no token is accepted at all (the check asks `is_online`
//! first). A lookup that raced with an invalidation is not kept (the epoch moved).
//! Expiry is checked on every hit. At most `max` entries: a full map forgets an
//! arbitrary one.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Change, TokenInfo};

#[derive(Debug)]
pub struct KnownTokens {
    state: Mutex<State>,
    max: usize,
}

#[derive(Debug, Default)]
struct State {
    by_hash: HashMap<String, TokenInfo>,
    /// Bumped by every invalidation, under the same lock as the map.
    epoch: u64,
}

impl KnownTokens {
    pub fn new(max: usize) -> KnownTokens {
        KnownTokens { state: Mutex::default(), max: max.max(1) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The map is consistent after any panic (single inserts and removals).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The valid answer kept for `hash`, unless it has expired since.
    pub fn get(&self, hash: &str) -> Option<TokenInfo> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let state = self.state();
        let info = state.by_hash.get(hash)?;
        info.expires_at_ms.is_none_or(|at| at > now_ms).then(|| info.clone())
    }

    /// Taken before a lookup, for `insert`.
    pub fn epoch(&self) -> u64 {
        self.state().epoch
    }

    /// Keeps a valid answer, unless something was invalidated since `epoch`.
    pub fn insert(&self, hash: String, info: TokenInfo, epoch: u64) {
        let mut state = self.state();
        if state.epoch != epoch {
            return;
        }
        if state.by_hash.len() >= self.max && !state.by_hash.contains_key(&hash) {
            if let Some(any) = state.by_hash.keys().next().cloned() {
                state.by_hash.remove(&any);
            }
        }
        state.by_hash.insert(hash, info);
    }

    /// Forgets every answer `changes` may have changed.
    pub fn invalidate(&self, changes: &[Change]) {
        // One pass over the map, however many changes the batch holds.
        let hashes: HashSet<&str> = changes.iter().flat_map(|c| c.tokens.iter().map(String::as_str)).collect();
        let users: HashSet<&str> = changes
            .iter()
            .filter(|c| c.table == "principals" || c.table == "tokens")
            .flat_map(|c| c.touched.iter().map(String::as_str))
            .collect();
        let mut state = self.state();
        state.epoch += 1;
        if changes.iter().any(|c| c.everything) {
            state.by_hash.clear();
        } else if !hashes.is_empty() || !users.is_empty() {
            state.by_hash.retain(|hash, info| !hashes.contains(hash.as_str()) && !users.contains(info.user_id.as_str()));
        }
    }

    /// Forgets everything (the follower lost track of the change log).
    pub fn clear(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.by_hash.clear();
    }

    pub fn len(&self) -> usize {
        self.state().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(user: &str, expires_at_ms: Option<i64>) -> TokenInfo {
        TokenInfo { user_id: user.into(), is_admin: false, expires_at_ms }
    }

    fn change(table: &str, touched: &[&str], tokens: &[&str], everything: bool) -> Change {
        Change {
            seq: 1,
            table: table.into(),
            touched: touched.iter().map(|s| s.to_string()).collect(),
            tokens: tokens.iter().map(|s| s.to_string()).collect(),
            everything,
        }
    }

    #[test]
    fn a_change_forgets_exactly_the_answers_it_may_change() {
        let known = KnownTokens::new(10);
        let e = known.epoch();
        known.insert("h1".into(), info("alice", None), e);
        known.insert("h2".into(), info("alice", None), e);
        known.insert("h3".into(), info("bob", None), e);
        // A grant naming alice changes no token's answer.
        known.invalidate(&[change("grants", &["alice", "p1"], &[], false)]);
        assert_eq!(known.len(), 3);
        known.invalidate(&[change("tokens", &["alice"], &["h1"], false)]);
        assert_eq!((known.get("h1"), known.get("h2").is_some(), known.len()), (None, false, 1));
        known.invalidate(&[change("principals", &["bob"], &[], false)]);
        assert!(known.is_empty());
        let e = known.epoch();
        known.insert("h3".into(), info("bob", None), e);
        known.invalidate(&[change("read_via", &[], &[], true)]);
        assert!(known.is_empty());
    }

    #[test]
    fn a_lookup_that_raced_with_a_change_is_not_kept() {
        let known = KnownTokens::new(10);
        let before = known.epoch();
        known.invalidate(&[change("tokens", &["alice"], &["h1"], false)]);
        known.insert("h1".into(), info("alice", None), before);
        assert_eq!(known.get("h1"), None);
        known.insert("h1".into(), info("alice", None), known.epoch());
        assert_eq!(known.get("h1"), Some(info("alice", None)));
    }

    #[test]
    fn an_expired_answer_is_not_given_and_the_map_is_bounded() {
        let known = KnownTokens::new(2);
        let e = known.epoch();
        known.insert("old".into(), info("alice", Some(1)), e);
        assert_eq!(known.get("old"), None);
        known.insert("a".into(), info("alice", Some(i64::MAX)), e);
        known.insert("b".into(), info("bob", None), e);
        assert_eq!(known.len(), 2);
        known.clear();
        assert!(known.is_empty());
    }
}
