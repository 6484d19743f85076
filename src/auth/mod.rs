//! Authentication (who is this peer) and authorization (may it do this).
//!
//! The realm asks an [`Authorizer`] for every publish, subscribe, call and register.
//! Today the authorizer is [`static_roles::StaticRoles`] from the realm config; the
//! PostgreSQL permission graph will be a second implementation of the same trait.

pub mod authenticator;
pub mod graph;
pub mod static_roles;
pub mod throttle;

pub use authenticator::{Authenticator, HelloOutcome, Principal};
pub use static_roles::StaticRoles;

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

/// The answer to "may this principal do this action on this URI".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    pub allowed: bool,
    /// The role asks the router to disclose the caller/publisher even when the peer did
    /// not ask (`disclose` in the role's permission).
    pub disclose: bool,
}

pub trait Authorizer: Send + Sync + std::fmt::Debug {
    fn authorize(&self, authrole: &str, action: Action, uri: &str) -> Decision;
}
