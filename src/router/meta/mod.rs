//! Procedures served by the router itself: a CALL to one of these URIs is answered
//! here, not routed to a callee. The meta API (`wamp.session.*`,
//! `wamp.subscription.*`, `wamp.registration.*`) is built on this.
//!
//! A procedure is a plain function of the realm, the calling session and the call's
//! decoded arguments; it answers synchronously (the router's indexes are in memory).
//! Arguments are decoded here, once, because the router reads them; replies are
//! encoded in the caller's serializer.

mod subscription;

use std::sync::Arc;

use super::error::WampError;
use super::handle::SessionHandle;
use super::realm::Realm;
use crate::wamp::{Args, Dict, Message, Payload, Value};

/// The decoded CALL, as a procedure sees it.
pub struct MetaCall<'a> {
    pub realm: &'a Realm,
    pub caller: &'a Arc<SessionHandle>,
    pub args: Vec<Value>,
    pub kwargs: Dict,
}

impl MetaCall<'_> {
    /// Positional argument `i`, else keyword `name`.
    pub fn arg(&self, i: usize, name: &str) -> Option<&Value> {
        self.args.get(i).or_else(|| self.kwargs.get(name))
    }
}

/// What a procedure answers: RESULT.Arguments and ArgumentsKw.
#[derive(Debug, Default, PartialEq)]
pub struct MetaResult {
    pub args: Vec<Value>,
    pub kwargs: Dict,
}

type Run = fn(&MetaCall<'_>) -> Result<MetaResult, WampError>;

/// A procedure of the router.
pub struct Procedure {
    pub uri: &'static str,
    /// Callable by every session without asking the authorizer: it only ever shows the
    /// caller what is its own, already authorized (its subscription's history).
    pub open: bool,
    run: Run,
}

const PROCEDURES: &[Procedure] = &[Procedure { uri: "wamp.subscription.get_events", open: true, run: subscription::get_events }];

/// The router's procedure for `uri`, if it serves one.
pub fn procedure(uri: &str) -> Option<&'static Procedure> {
    if !uri.starts_with("wamp.") {
        return None;
    }
    PROCEDURES.iter().find(|p| p.uri == uri)
}

/// The URIs the router serves, for the features it announces.
pub fn uris() -> impl Iterator<Item = &'static str> {
    PROCEDURES.iter().map(|p| p.uri)
}

impl Procedure {
    /// Runs the procedure for a CALL and returns the RESULT for the caller.
    pub fn call(&self, realm: &Realm, caller: &Arc<SessionHandle>, request: u64, payload: &Args) -> Result<Message, WampError> {
        let bad = |what: &str| WampError::InvalidArgument(format!("{}: {what}", self.uri));
        let args = match payload.args.as_ref().map(Payload::to_value).transpose() {
            Ok(None) => Vec::new(),
            Ok(Some(Value::List(l))) => l,
            _ => return Err(bad("Arguments must be a list")),
        };
        let kwargs = match payload.kwargs.as_ref().map(Payload::to_value).transpose() {
            Ok(None) => Dict::new(),
            Ok(Some(Value::Dict(d))) => d,
            _ => return Err(bad("ArgumentsKw must be a dict")),
        };
        let result = (self.run)(&MetaCall { realm, caller, args, kwargs })?;
        let ser = caller.serializer;
        let payload = Args {
            args: (!result.args.is_empty() || !result.kwargs.is_empty()).then(|| Payload::from_value(ser, &Value::List(result.args))),
            kwargs: (!result.kwargs.is_empty()).then(|| Payload::from_value(ser, &Value::Dict(result.kwargs))),
        };
        Ok(Message::Result { request, details: Dict::new(), payload })
    }
}
