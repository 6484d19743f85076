//! URIs with a match policy, indexed for lookup by a concrete URI: exact URIs in a hash
//! map, prefixes in a patricia tree, wildcards in a component trie (`wildcard.rs`).
//! The broker asks for every match (all subscriptions receive the event); the dealer
//! asks for the best one (a call goes to one registration, chosen in the spec's order:
//! exact, then the longest prefix, then the wildcard with the longest literal runs).

mod wildcard;

use std::collections::HashMap;

use patricia_tree::PatriciaMap;

use crate::wamp::uri::MatchPolicy;
use wildcard::WildcardTrie;

#[derive(Debug)]
pub struct Patterns<T> {
    exact: HashMap<String, T>,
    prefix: PatriciaMap<T>,
    wildcard: WildcardTrie<T>,
}

impl<T> Default for Patterns<T> {
    fn default() -> Self {
        Patterns { exact: HashMap::new(), prefix: PatriciaMap::new(), wildcard: WildcardTrie::default() }
    }
}

impl<T: Clone> Patterns<T> {
    /// The value stored for exactly this pattern.
    pub fn get(&self, uri: &str, policy: MatchPolicy) -> Option<&T> {
        match policy {
            MatchPolicy::Exact => self.exact.get(uri),
            MatchPolicy::Prefix => self.prefix.get(uri),
            MatchPolicy::Wildcard => self.wildcard.get(uri),
        }
    }

    pub fn insert(&mut self, uri: &str, policy: MatchPolicy, value: T) {
        match policy {
            MatchPolicy::Exact => drop(self.exact.insert(uri.to_owned(), value)),
            MatchPolicy::Prefix => drop(self.prefix.insert(uri, value)),
            MatchPolicy::Wildcard => self.wildcard.insert(uri, value),
        }
    }

    pub fn remove(&mut self, uri: &str, policy: MatchPolicy) -> Option<T> {
        match policy {
            MatchPolicy::Exact => self.exact.remove(uri),
            MatchPolicy::Prefix => self.prefix.remove(uri),
            MatchPolicy::Wildcard => self.wildcard.remove(uri),
        }
    }

    /// Appends every value whose pattern matches the concrete `uri`.
    pub fn matching(&self, uri: &str, out: &mut Vec<T>) {
        if let Some(v) = self.exact.get(uri) {
            out.push(v.clone());
        }
        out.extend(self.prefix.common_prefixes(uri).map(|(_, v)| v.clone()));
        self.wildcard.matches(uri, out);
    }

    /// The value of the best pattern matching the concrete `uri`, and its policy.
    pub fn best(&self, uri: &str) -> Option<(&T, MatchPolicy)> {
        if let Some(v) = self.exact.get(uri) {
            return Some((v, MatchPolicy::Exact));
        }
        // Prefixes nest, so the longest matching one has the most components.
        if let Some((_, v)) = self.prefix.get_longest_common_prefix(uri) {
            return Some((v, MatchPolicy::Prefix));
        }
        self.wildcard.best(uri).map(|v| (v, MatchPolicy::Wildcard))
    }
}

/// Ids grouped by match policy (exact, prefix, wildcard), as the meta API lists them.
pub fn ids_by_policy(items: impl IntoIterator<Item = (MatchPolicy, u64)>) -> [Vec<u64>; 3] {
    let mut out: [Vec<u64>; 3] = Default::default();
    for (policy, id) in items {
        out[policy as usize].push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's example of a call matching several registrations.
    #[test]
    fn best_follows_the_spec_order() {
        let mut p = Patterns::default();
        p.insert("a1.b2.c3.d4.e55", MatchPolicy::Exact, 1);
        p.insert("a1.b2.c3", MatchPolicy::Prefix, 2);
        p.insert("a1.b2.c3.d4", MatchPolicy::Prefix, 3);
        p.insert("a1.b2..d4.e5", MatchPolicy::Wildcard, 4);
        p.insert("a1.b2.c3..e5", MatchPolicy::Wildcard, 5);
        p.insert("a1.b2..d4.e5..g7", MatchPolicy::Wildcard, 6);
        p.insert("a1.b2..d4..f6.g7", MatchPolicy::Wildcard, 7);
        let best = |uri: &str| p.best(uri).map(|(v, policy)| (*v, policy));
        assert_eq!(best("a1.b2.c3.d4.e55"), Some((1, MatchPolicy::Exact)));
        assert_eq!(best("a1.b2.c3.d98.e74"), Some((2, MatchPolicy::Prefix)));
        assert_eq!(best("a1.b2.c3.d4.e325"), Some((3, MatchPolicy::Prefix)));
        assert_eq!(best("a1.b2.c55.d4.e5"), Some((4, MatchPolicy::Wildcard)));
        assert_eq!(best("a1.b2.c3.d4.e5"), Some((3, MatchPolicy::Prefix)), "a prefix match outranks any wildcard");
        assert_eq!(best("a1.b2.c88.d4.e5.f6.g7"), Some((6, MatchPolicy::Wildcard)));
        assert_eq!(best("a2.b2.c2.d2.e2"), None);
        let mut all = Vec::new();
        p.matching("a1.b2.c3.d4.e5", &mut all);
        all.sort();
        assert_eq!(all, vec![2, 3, 4, 5]);
        assert_eq!(p.remove("a1.b2.c3", MatchPolicy::Prefix), Some(2));
        assert_eq!(p.get("a1.b2.c3", MatchPolicy::Prefix), None);
    }
}
