//! The calls in flight of one realm. Every call is keyed by (callee session,
//! INVOCATION request id), with a second key (caller session, CALL request id) for
//! cancellation, and, when it has a timeout, a place in the deadline queue that the
//! realm's timer task drains (`Dealer::expire`).
//!
//! Each call is also counted in its caller's `calls_in_flight`, changed only here
//! under the dealer's lock, for `max_calls_per_session`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::router::handle::SessionHandle;
use crate::wamp::ids::{RegistrationId, SessionId};

pub type Key = (SessionId, u64);

#[derive(Debug)]
pub struct PendingCall {
    pub registration: RegistrationId,
    pub caller: Arc<SessionHandle>,
    pub caller_request: u64,
    pub callee: Arc<SessionHandle>,
    pub receive_progress: bool,
    /// When the router ends the call with `wamp.error.timeout` (`CALL.Options.timeout`,
    /// bounded by the realm's maximum).
    pub deadline: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Calls {
    by_invocation: HashMap<Key, PendingCall>,
    by_call: HashMap<Key, Key>,
    deadlines: BTreeSet<(Instant, Key)>,
}

impl Calls {
    /// Adds a call; true if its deadline is now the earliest (the timer must be told).
    pub fn insert(&mut self, key: Key, call: PendingCall) -> bool {
        self.by_call.insert((call.caller.id, call.caller_request), key);
        call.caller.calls_in_flight.fetch_add(1, Ordering::Relaxed);
        let earliest = call.deadline.is_some_and(|d| {
            let earliest = self.deadlines.first().is_none_or(|(first, _)| d < *first);
            self.deadlines.insert((d, key));
            earliest
        });
        self.by_invocation.insert(key, call);
        earliest
    }

    pub fn get(&self, key: Key) -> Option<&PendingCall> {
        self.by_invocation.get(&key)
    }

    /// The INVOCATION key of a caller's CALL.
    pub fn of_caller(&self, caller: Key) -> Option<Key> {
        self.by_call.get(&caller).copied()
    }

    pub fn remove(&mut self, key: Key) -> Option<PendingCall> {
        let call = self.by_invocation.remove(&key)?;
        self.by_call.remove(&(call.caller.id, call.caller_request));
        if let Some(d) = call.deadline {
            self.deadlines.remove(&(d, key));
        }
        call.caller.calls_in_flight.fetch_sub(1, Ordering::Relaxed);
        Some(call)
    }

    /// Removes every call `pick` chooses: (INVOCATION request id, call).
    pub fn take_where(&mut self, pick: impl Fn(&PendingCall) -> bool) -> Vec<(u64, PendingCall)> {
        let keys: Vec<Key> = self.by_invocation.iter().filter(|(_, c)| pick(c)).map(|(k, _)| *k).collect();
        keys.into_iter().filter_map(|k| self.remove(k).map(|c| (k.1, c))).collect()
    }

    /// Removes the calls whose deadline has passed at `now`, and returns them with the
    /// next deadline still ahead.
    pub fn take_expired(&mut self, now: Instant) -> (Vec<(u64, PendingCall)>, Option<Instant>) {
        let mut expired = Vec::new();
        while let Some(&(d, key)) = self.deadlines.first() {
            if d > now {
                return (expired, Some(d));
            }
            if let Some(call) = self.remove(key) {
                expired.push((key.1, call));
            } else {
                self.deadlines.pop_first();
            }
        }
        (expired, None)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_invocation.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::handle::testing::handle;
    use std::time::Duration;

    fn call(caller: &Arc<SessionHandle>, request: u64, deadline: Option<Instant>) -> PendingCall {
        PendingCall { registration: RegistrationId(1), caller: caller.clone(), caller_request: request, callee: handle(9), receive_progress: false, deadline }
    }

    #[test]
    fn deadlines_expire_in_order_and_finished_calls_leave_no_deadline_behind() {
        let caller = handle(1);
        let t0 = Instant::now();
        let mut calls = Calls::default();
        assert!(calls.insert((SessionId(9), 1), call(&caller, 10, Some(t0 + Duration::from_millis(30)))));
        assert!(calls.insert((SessionId(9), 2), call(&caller, 11, Some(t0 + Duration::from_millis(10)))));
        assert!(!calls.insert((SessionId(9), 3), call(&caller, 12, Some(t0 + Duration::from_millis(20)))));
        assert!(!calls.insert((SessionId(9), 4), call(&caller, 13, None)));
        assert_eq!(caller.calls_in_flight.load(Ordering::Relaxed), 4);
        // The call with the 20 ms deadline is answered before it.
        assert!(calls.remove((SessionId(9), 3)).is_some());
        let (expired, next) = calls.take_expired(t0 + Duration::from_millis(25));
        assert_eq!(expired.iter().map(|(inv, c)| (*inv, c.caller_request)).collect::<Vec<_>>(), vec![(2, 11)]);
        assert_eq!(next, Some(t0 + Duration::from_millis(30)));
        let (expired, next) = calls.take_expired(t0 + Duration::from_millis(30));
        assert_eq!((expired.len(), next), (1, None));
        assert_eq!(calls.of_caller((SessionId(1), 13)), Some((SessionId(9), 4)));
        assert_eq!((calls.len(), caller.calls_in_flight.load(Ordering::Relaxed)), (1, 1));
    }
}
