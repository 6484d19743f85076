//! Authentication (who is this peer) and authorization (may it do this).
//!
//! Every publish, subscribe, call and register is authorized through the session's
//! [`Permissions`], a view its realm's [`Authorizer`] made when the session joined. It
//! answers from what it knows at once ([`Permissions::check`]: a static rule or a
//! cached decision, synchronous and cheap) or says it must find out ([`Check::Ask`]),
//! and then [`Permissions::decide`] may take its time (a database query) without
//! blocking anyone but the asking session. Answers that can change
//! later come with a [`Guard`] the broker consults per event, and changes are announced
//! on a [`ChangeFeed`] that the router follows to re-check what sessions hold. Nothing
//! here knows the router: it only learns of it through these types.

pub mod authenticator;
pub mod changes;
pub mod cra;
mod credentials;
pub mod cryptosign;
pub mod error;
pub mod graph;
pub mod static_roles;
pub mod throttle;

use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use authenticator::{Authenticator, HelloOutcome, KeyHolder, Pending, Principal, TokenCheck, TokenHolder, Verdict};
pub use changes::{ChangeBatch, ChangeFeed, CredentialKind, Ending};
pub use error::{AuthError, Undecided};
pub use static_roles::{Role, StaticRoles};

use crate::wamp::uri::MatchPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Publish,
    Subscribe,
    Call,
    Register,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
            Action::Call => "call",
            Action::Register => "register",
        }
    }
}

/// Who asks: the identity the session was welcomed with.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub authid: &'a str,
    pub authrole: &'a str,
}

/// What is asked: an action on a URI. For SUBSCRIBE and REGISTER the URI may be a
/// pattern (`policy`), which an authorizer may treat differently from the same string
/// as an exact URI.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: Action,
    pub uri: &'a str,
    pub policy: MatchPolicy,
}

/// The answer to "may this subject do this".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    pub allowed: bool,
    /// The role asks the router to disclose the caller/publisher even when the peer did
    /// not ask (`disclose` in the role's permission).
    pub disclose: bool,
    /// The answer depends on data that can change (the permission graph): a
    /// subscription or registration made on it is re-checked when the authorizer's
    /// [`ChangeFeed`] names its subject.
    pub revocable: bool,
}

impl Decision {
    pub const DENIED: Decision = Decision { allowed: false, disclose: false, revocable: false };
}

/// An immediate answer, or the admission that finding out needs [`Authorizer::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Decided(Decision),
    Ask,
}

/// Whether one event may be delivered to one subscriber, decided per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Not to this subscriber (it may not read the event's object).
    No,
    /// Not now: the authorizer cannot tell (its database is unreachable, or the answer
    /// is being re-computed after a change). Counted; delivery resumes once it can tell.
    Hold,
}

/// A per-event check attached to a subscriber (or a registration) whose permission can
/// change while it lives. `admits` runs in the broker's fan-out, inside the topic's
/// critical section: it must answer from memory, without blocking, querying or
/// allocating.
pub trait Guard: Send + Sync + std::fmt::Debug {
    fn admits(&self, topic: &str) -> Admit;
}

/// A realm's authorizer. It answers through a view per session ([`Permissions`]), made
/// when the session joins, so that a check touches only that session's (or its
/// principal's) state: no lock shared across sessions on the publish path.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// The view through which the session of `who` is authorized.
    fn permissions(&self, who: Subject<'_>) -> Arc<dyn Permissions>;

    /// Where this authorizer announces changes to its earlier answers; None if they
    /// never change.
    fn changes(&self) -> Option<Arc<ChangeFeed>> {
        None
    }

    /// Whether it can decide now (its database reachable and caught up); None for an
    /// authorizer that depends on nothing that can be lost.
    fn online(&self) -> Option<bool> {
        None
    }

    /// How far it has applied its database's changes (the change log's seq), if it
    /// follows one: operators compare it with the log to see the lag.
    fn applied(&self) -> Option<i64> {
        None
    }
}

/// What one session may do.
pub trait Permissions: Send + Sync + std::fmt::Debug {
    /// Answers from what is known now. Must not block, query or allocate: it runs for
    /// every publish and call.
    fn check(&self, req: Request<'_>) -> Check;

    /// Finds out (may query a database) and remembers the answer, so that the next
    /// `check` of the same question is decided. Called only after `check` said
    /// [`Check::Ask`]; the asking session waits for it, no other session does.
    fn decide(&self, req: Request<'_>) -> BoxFuture<'static, Result<Decision, Undecided>>;

    /// A per-event guard for a new subscription or registration whose events (or
    /// calls) are decided one by one: one allowed by a revocable decision (the guard
    /// stops delivery the moment the permission is gone, before the router has even
    /// told the session), or a pattern whose topics fall under different rules.
    fn guard(&self, _req: Request<'_>) -> Option<Arc<dyn Guard>> {
        None
    }
}
