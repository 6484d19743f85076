//! WAMP ids and their three scopes (spec: "Identifiers"). Global-scope ids (sessions,
//! publications) are random, router-scope ids (subscriptions, registrations) come from a
//! router-wide counter, and session-scope ids (requests) are sequential per session.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

/// Ids are integers in [1, 2^53] so that they survive a round trip through a JavaScript
/// number.
pub const MAX_ID: u64 = 1 << 53;

pub fn global_id() -> u64 {
    rand::rng().random_range(1..=MAX_ID)
}

/// A counter for router- or session-scope ids. Wraps back to 1 after 2^53.
#[derive(Debug)]
pub struct IdSequence(AtomicU64);

impl IdSequence {
    pub const fn new() -> IdSequence {
        IdSequence(AtomicU64::new(0))
    }

    pub fn next(&self) -> u64 {
        let mut n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        if n > MAX_ID {
            // Extremely long-lived sessions only: restart the sequence.
            self.0.store(1, Ordering::Relaxed);
            n = 1;
        }
        n
    }
}

impl Default for IdSequence {
    fn default() -> Self {
        IdSequence::new()
    }
}

macro_rules! id_newtype {
    ($name:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_newtype!(SessionId);
id_newtype!(SubscriptionId);
id_newtype!(RegistrationId);
id_newtype!(PublicationId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_start_at_one_and_count_up() {
        let s = IdSequence::new();
        assert_eq!((s.next(), s.next(), s.next()), (1, 2, 3));
    }

    #[test]
    fn global_ids_are_in_range() {
        for _ in 0..1000 {
            let id = global_id();
            assert!((1..=MAX_ID).contains(&id));
        }
    }
}
