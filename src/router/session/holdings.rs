//! What one session holds: its subscriptions and registrations. The session's task is
//! the only writer (`Session`), whether the change comes from the peer (UNSUBSCRIBE),
//! from the router (a revocation through the control inbox) or from leaving, so these
//! sets and the broker's and dealer's indexes cannot disagree.
//!
//! Holdings allowed by a revocable decision also keep what to re-check (URI and match
//! policy); the others cost one id each.

use std::collections::{HashMap, HashSet};

use crate::auth::Action;
use crate::wamp::uri::MatchPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holding {
    Subscription(u64),
    Registration(u64),
}

impl Holding {
    /// The action whose permission keeps this holding alive.
    pub fn action(self) -> Action {
        match self {
            Holding::Subscription(_) => Action::Subscribe,
            Holding::Registration(_) => Action::Register,
        }
    }
}

/// What a revocable holding was allowed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grounds {
    pub uri: String,
    pub policy: MatchPolicy,
}

#[derive(Debug, Default)]
pub struct Holdings {
    subscriptions: HashSet<u64>,
    registrations: HashSet<u64>,
    revocable: HashMap<Holding, Grounds>,
}

impl Holdings {
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.len()
    }

    pub fn registrations(&self) -> usize {
        self.registrations.len()
    }

    /// Records a holding; `grounds` when its permission can be withdrawn.
    pub fn add(&mut self, h: Holding, grounds: Option<Grounds>) {
        match h {
            Holding::Subscription(id) => self.subscriptions.insert(id),
            Holding::Registration(id) => self.registrations.insert(id),
        };
        if let Some(g) = grounds {
            self.revocable.insert(h, g);
        }
    }

    /// Forgets a holding; false if it was not held.
    pub fn remove(&mut self, h: Holding) -> bool {
        let held = match h {
            Holding::Subscription(id) => self.subscriptions.remove(&id),
            Holding::Registration(id) => self.registrations.remove(&id),
        };
        self.revocable.remove(&h);
        held
    }

    /// The revocable holdings and their grounds, copied: re-checking one may end it.
    pub fn revocable(&self) -> Vec<(Holding, Grounds)> {
        self.revocable.iter().map(|(h, g)| (*h, g.clone())).collect()
    }

    /// Takes everything (the session leaves): subscription ids, registration ids.
    pub fn take(&mut self) -> (Vec<u64>, Vec<u64>) {
        self.revocable.clear();
        (self.subscriptions.drain().collect(), self.registrations.drain().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_forgets_the_grounds_and_taking_empties() {
        let mut h = Holdings::default();
        let g = Grounds { uri: "containers.".into(), policy: MatchPolicy::Prefix };
        h.add(Holding::Subscription(1), Some(g.clone()));
        h.add(Holding::Subscription(2), None);
        h.add(Holding::Registration(1), Some(Grounds { uri: "p".into(), policy: MatchPolicy::Exact }));
        assert_eq!((h.subscriptions(), h.registrations()), (2, 1));
        assert!(h.remove(Holding::Registration(1)));
        assert!(!h.remove(Holding::Registration(1)));
        assert_eq!(h.revocable(), vec![(Holding::Subscription(1), g)]);
        let (mut subs, regs) = h.take();
        subs.sort();
        assert_eq!((subs, regs), (vec![1, 2], vec![]));
        assert!(h.revocable().is_empty());
        assert_eq!(h.subscriptions(), 0);
    }
}
