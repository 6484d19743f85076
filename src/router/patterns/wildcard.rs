//! A component trie for wildcard patterns, shared by subscriptions (every match) and
//! registrations (the best match). WAMP wildcards match exactly one component
//! per empty pattern component and require the same number of components, a semantics
//! no general-purpose crate offers. A lookup walks at most two branches per component
//! (the literal one and the wildcard one), never the list of all patterns.

use std::collections::HashMap;

#[derive(Debug)]
struct Node<T> {
    literal: HashMap<String, Node<T>>,
    wildcard: Option<Box<Node<T>>>,
    /// The value of the pattern that ends at this node.
    value: Option<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node { literal: HashMap::new(), wildcard: None, value: None }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.value.is_none() && self.literal.is_empty() && self.wildcard.is_none()
    }
}

#[derive(Debug)]
pub struct WildcardTrie<T> {
    root: Node<T>,
    len: usize,
}

impl<T> Default for WildcardTrie<T> {
    fn default() -> Self {
        WildcardTrie { root: Node::default(), len: 0 }
    }
}

impl<T: Clone> WildcardTrie<T> {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, pattern: &str) -> Option<&T> {
        let mut node = &self.root;
        for c in pattern.split('.') {
            node = if c.is_empty() { node.wildcard.as_deref()? } else { node.literal.get(c)? };
        }
        node.value.as_ref()
    }

    pub fn insert(&mut self, pattern: &str, value: T) {
        let mut node = &mut self.root;
        for c in pattern.split('.') {
            node = if c.is_empty() {
                node.wildcard.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(c.to_owned()).or_default()
            };
        }
        if node.value.replace(value).is_none() {
            self.len += 1;
        }
    }

    /// Removes a pattern and prunes the branches it leaves empty, so the trie never keeps
    /// nodes for patterns nobody subscribes to any more.
    pub fn remove(&mut self, pattern: &str) -> Option<T> {
        let parts: Vec<&str> = pattern.split('.').collect();
        let out = remove_at(&mut self.root, &parts);
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    /// Appends the values of every pattern matching the concrete `uri`.
    pub fn matches(&self, uri: &str, out: &mut Vec<T>) {
        let parts: Vec<&str> = uri.split('.').collect();
        collect(&self.root, &parts, out);
    }

    /// The best pattern matching `uri` by the spec's order for pattern-based
    /// registrations: the longest run of literal components before the first wildcard,
    /// then before the next, and so on. Trying the literal branch before the wildcard at
    /// every component finds exactly that pattern first, so the walk stops at the first
    /// match instead of collecting them all.
    pub fn best(&self, uri: &str) -> Option<&T> {
        let parts: Vec<&str> = uri.split('.').collect();
        first(&self.root, &parts)
    }
}

fn first<'a, T>(node: &'a Node<T>, parts: &[&str]) -> Option<&'a T> {
    let Some((head, rest)) = parts.split_first() else {
        return node.value.as_ref();
    };
    node.literal.get(*head).and_then(|child| first(child, rest)).or_else(|| node.wildcard.as_deref().and_then(|child| first(child, rest)))
}

fn remove_at<T>(node: &mut Node<T>, parts: &[&str]) -> Option<T> {
    let Some((first, rest)) = parts.split_first() else {
        return node.value.take();
    };
    if first.is_empty() {
        let child = node.wildcard.as_deref_mut()?;
        let out = remove_at(child, rest);
        if child.is_empty() {
            node.wildcard = None;
        }
        out
    } else {
        let child = node.literal.get_mut(*first)?;
        let out = remove_at(child, rest);
        if child.is_empty() {
            node.literal.remove(*first);
        }
        out
    }
}

fn collect<T: Clone>(node: &Node<T>, parts: &[&str], out: &mut Vec<T>) {
    let Some((first, rest)) = parts.split_first() else {
        if let Some(v) = &node.value {
            out.push(v.clone());
        }
        return;
    };
    if let Some(child) = node.literal.get(*first) {
        collect(child, rest, out);
    }
    if let Some(child) = &node.wildcard {
        collect(child, rest, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_same_arity_with_empty_components() {
        let mut t = WildcardTrie::default();
        t.insert("com.myapp..update", 1);
        t.insert("com...update", 2);
        t.insert("com.myapp.user.", 3);
        let mut out = Vec::new();
        t.matches("com.myapp.user.update", &mut out);
        out.sort();
        assert_eq!(out, vec![1, 2, 3]);
        out.clear();
        t.matches("com.myapp.update", &mut out);
        assert!(out.is_empty());
        out.clear();
        t.matches("com.myapp.user.x.update", &mut out);
        assert!(out.is_empty());
    }

    /// The spec's examples for calls matching several wildcard registrations.
    #[test]
    fn best_prefers_the_longest_literal_runs_from_the_left() {
        let mut t = WildcardTrie::default();
        for (i, p) in ["a1.b2..d4.e5", "a1.b2.c3..e5", "a1.b2..d4.e5..g7", "a1.b2..d4..f6.g7"].iter().enumerate() {
            t.insert(p, i + 4);
        }
        assert_eq!(t.best("a1.b2.c55.d4.e5"), Some(&4));
        assert_eq!(t.best("a1.b2.c3.d4.e5"), Some(&5));
        assert_eq!(t.best("a1.b2.c88.d4.e5.f6.g7"), Some(&6));
        assert_eq!(t.best("a2.b2.c2.d2.e2"), None);
    }

    #[test]
    fn remove_prunes_empty_branches() {
        let mut t = WildcardTrie::default();
        t.insert("a..c", 1);
        t.insert("a.b.", 2);
        assert_eq!(t.remove("a..c"), Some(1));
        assert_eq!(t.remove("a..c"), None);
        assert_eq!(t.len(), 1);
        assert!(t.root.literal["a"].wildcard.is_none());
        assert_eq!(t.remove("a.b."), Some(2));
        assert!(t.root.is_empty());
        assert_eq!(t.get("a.b."), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::wamp::uri::wildcard_matches;
    use proptest::prelude::*;

    /// URIs over a tiny alphabet so that patterns and topics collide often.
    fn component() -> impl Strategy<Value = String> {
        prop_oneof![Just("a".to_owned()), Just("b".to_owned()), Just("c".to_owned())]
    }
    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(prop_oneof![component(), Just(String::new())], 1..4).prop_map(|c| c.join("."))
    }
    fn topic() -> impl Strategy<Value = String> {
        prop::collection::vec(component(), 1..4).prop_map(|c| c.join("."))
    }

    proptest! {
        /// The trie finds exactly the patterns a linear scan with the spec's rule finds,
        /// after any sequence of inserts and removals.
        #[test]
        fn trie_agrees_with_a_linear_scan(
            inserted in prop::collection::vec(pattern(), 0..12),
            removed in prop::collection::vec(pattern(), 0..6),
            topics in prop::collection::vec(topic(), 1..8),
        ) {
            let mut trie = WildcardTrie::default();
            let mut model: Vec<String> = Vec::new();
            for p in &inserted {
                trie.insert(p, p.clone());
                if !model.contains(p) { model.push(p.clone()); }
            }
            for p in &removed {
                prop_assert_eq!(trie.remove(p).is_some(), model.contains(p));
                model.retain(|m| m != p);
            }
            prop_assert_eq!(trie.len(), model.len());
            for t in &topics {
                let mut got = Vec::new();
                trie.matches(t, &mut got);
                got.sort();
                let mut want: Vec<String> = model.iter().filter(|p| wildcard_matches(p, t)).cloned().collect();
                want.sort();
                prop_assert_eq!(got, want);
            }
            for t in &topics {
                // The model's best: literal runs compared left to right, that is the
                // positions of the wildcards compared with the later one winning.
                let key = |p: &String| p.split('.').map(|c| !c.is_empty()).collect::<Vec<bool>>();
                let want = model.iter().filter(|p| wildcard_matches(p, t)).max_by_key(|p| key(p));
                prop_assert_eq!(trie.best(t), want);
            }
            for p in &model {
                trie.remove(p);
            }
            prop_assert!(trie.root.is_empty(), "removing every pattern leaves no node behind");
        }
    }
}
