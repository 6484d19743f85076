//! One registration: a procedure URI with its match policy, its invocation policy and
//! the callees attached to it in the order they registered (spec: shared
//! registration). Which callee takes a call is decided here.
//!
//! The list changes only under the dealer's procedures lock held for writing, and is
//! read under the same lock held for reading, so it needs no lock of its own; only the
//! round-robin cursor moves under the read lock, as an atomic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crate::auth::{Admit, Guard};
use crate::router::handle::SessionHandle;
use crate::wamp::ids::{RegistrationId, SessionId};
use crate::wamp::uri::MatchPolicy;

/// `REGISTER.Options.invoke`: how a call picks among the callees of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invoke {
    /// One callee only; a second REGISTER is refused.
    Single,
    /// Each call goes to the next callee, in order of registration, looping.
    RoundRobin,
    Random,
    /// The callee registered first (hot stand-by: the others wait their turn).
    First,
    /// The callee registered last.
    Last,
}

impl Invoke {
    pub fn parse(s: &str) -> Option<Invoke> {
        Some(match s {
            "single" => Invoke::Single,
            "roundrobin" => Invoke::RoundRobin,
            "random" => Invoke::Random,
            "first" => Invoke::First,
            "last" => Invoke::Last,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Invoke::Single => "single",
            Invoke::RoundRobin => "roundrobin",
            Invoke::Random => "random",
            Invoke::First => "first",
            Invoke::Last => "last",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Callee {
    pub session: Arc<SessionHandle>,
    /// Asked before each call when the callee's permission can change.
    pub guard: Option<Arc<dyn Guard>>,
}

impl Callee {
    fn admits(&self, uri: &str) -> Admit {
        self.guard.as_ref().map_or(Admit::Yes, |g| g.admits(uri))
    }
}

#[derive(Debug)]
pub struct Registration {
    pub id: RegistrationId,
    pub uri: String,
    pub policy: MatchPolicy,
    pub invoke: Invoke,
    pub created: SystemTime,
    callees: Vec<Callee>,
    /// Index of the next round-robin callee, always below `callees.len()` once set.
    next: AtomicUsize,
}

/// Why no callee of a registration can take a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCallee {
    /// Every callee's permission was withdrawn: the registration is on its way out.
    Withdrawn,
    /// Some callee's permission cannot be confirmed right now.
    Unconfirmed,
}

impl Registration {
    pub fn new(id: RegistrationId, uri: &str, policy: MatchPolicy, invoke: Invoke, first: Callee) -> Registration {
        Registration {
            id,
            uri: uri.to_owned(),
            policy,
            invoke,
            created: SystemTime::now(),
            callees: vec![first],
            next: AtomicUsize::new(0),
        }
    }

    pub fn callees(&self) -> impl ExactSizeIterator<Item = &Callee> {
        self.callees.iter()
    }

    pub fn has(&self, session: SessionId) -> bool {
        self.callees.iter().any(|c| c.session.id == session)
    }

    pub fn add(&mut self, callee: Callee) {
        self.callees.push(callee);
    }

    /// Detaches `session`; true if it was attached. The round-robin cursor keeps
    /// pointing at the same next callee, so a callee leaving mid-rotation neither skips
    /// nor repeats anyone.
    pub fn remove(&mut self, session: SessionId) -> bool {
        let Some(at) = self.callees.iter().position(|c| c.session.id == session) else { return false };
        self.callees.remove(at);
        let next = self.next.get_mut();
        if at < *next {
            *next -= 1;
        }
        if *next >= self.callees.len() {
            *next = 0;
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.callees.is_empty()
    }

    /// The callee for the next call under the invocation policy. A callee whose
    /// permission is not confirmed is passed over for the next one in order of
    /// registration, so a revocation in progress never routes a call to it.
    pub fn pick(&self) -> Result<&Callee, NoCallee> {
        let n = self.callees.len();
        let start = match self.invoke {
            Invoke::Single | Invoke::First => 0,
            Invoke::Last => n.saturating_sub(1),
            Invoke::RoundRobin => self.advance(n),
            Invoke::Random if n > 1 => rand::random_range(0..n),
            Invoke::Random => 0,
        };
        let mut unconfirmed = false;
        for i in 0..n {
            // Stand-by order: after the preferred callee, the next ones (`last`: the
            // ones registered before it).
            let at = if self.invoke == Invoke::Last { (start + n - i) % n } else { (start + i) % n };
            let callee = &self.callees[at];
            match callee.admits(&self.uri) {
                Admit::Yes => return Ok(callee),
                Admit::No => {}
                Admit::Hold => unconfirmed = true,
            }
        }
        Err(if unconfirmed { NoCallee::Unconfirmed } else { NoCallee::Withdrawn })
    }

    /// Takes the round-robin cursor and moves it on.
    fn advance(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let prev = self.next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| Some((i + 1) % n));
        prev.unwrap_or(0) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::handle::testing::handle;

    fn callee(id: u64) -> Callee {
        Callee { session: handle(id), guard: None }
    }

    fn picks(r: &Registration, n: usize) -> Vec<u64> {
        (0..n).map(|_| r.pick().unwrap().session.id.0).collect()
    }

    fn shared(invoke: Invoke, ids: &[u64]) -> Registration {
        let mut r = Registration::new(RegistrationId(1), "p", MatchPolicy::Exact, invoke, callee(ids[0]));
        for id in &ids[1..] {
            r.add(callee(*id));
        }
        r
    }

    #[test]
    fn roundrobin_goes_in_order_of_registration_and_loops() {
        let r = shared(Invoke::RoundRobin, &[1, 2, 3, 4]);
        assert_eq!(picks(&r, 6), vec![1, 2, 3, 4, 1, 2]);
    }

    #[test]
    fn a_callee_leaving_mid_rotation_is_skipped_and_nobody_else_is() {
        let mut r = shared(Invoke::RoundRobin, &[1, 2, 3, 4]);
        assert_eq!(picks(&r, 2), vec![1, 2]);
        // 3 is next; 2 (already called) leaves: 3 is still next.
        assert!(r.remove(SessionId(2)));
        assert_eq!(picks(&r, 3), vec![3, 4, 1]);
        // 3 is next and leaves: 4 takes its turn.
        assert!(r.remove(SessionId(3)));
        assert_eq!(picks(&r, 3), vec![4, 1, 4]);
        // The last one in the list leaves while it is next: back to the start.
        assert!(r.remove(SessionId(4)));
        assert_eq!(picks(&r, 2), vec![1, 1]);
        assert!(!r.remove(SessionId(4)));
    }

    #[test]
    fn first_and_last_are_hot_stand_by() {
        let mut first = shared(Invoke::First, &[1, 2, 3]);
        let mut last = shared(Invoke::Last, &[1, 2, 3]);
        assert_eq!((picks(&first, 2), picks(&last, 2)), (vec![1, 1], vec![3, 3]));
        first.remove(SessionId(1));
        last.remove(SessionId(3));
        assert_eq!((picks(&first, 1), picks(&last, 1)), (vec![2], vec![2]));
    }

    #[test]
    fn random_picks_only_attached_callees_and_all_of_them() {
        let r = shared(Invoke::Random, &[1, 2, 3]);
        let mut seen = picks(&r, 300);
        seen.sort();
        seen.dedup();
        assert_eq!(seen, vec![1, 2, 3]);
    }

    #[test]
    fn policies_parse_and_print_the_spec_names() {
        for name in ["single", "roundrobin", "random", "first", "last"] {
            assert_eq!(Invoke::parse(name).map(Invoke::as_str), Some(name));
        }
        assert_eq!(Invoke::parse("round-robin"), None);
    }
}
