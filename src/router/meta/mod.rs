//! Procedures served by the router itself, and the events it publishes: the meta API
//! (`wamp.session.*`, `wamp.subscription.*`, `wamp.registration.*`, testaments). A CALL
//! to one of these URIs is answered here, not routed to a callee.
//!
//! A procedure is a plain function of the realm, the calling session and the call's
//! decoded arguments; it answers synchronously (the router's indexes are in memory).
//! Arguments are decoded here, once, because the router reads them; replies are
//! encoded in the caller's serializer. Every procedure but `get_events` (which shows
//! the caller only its own, already authorized history) is authorized like any CALL.

pub mod events;
mod registration;
mod session;
mod subscription;
pub mod testament;

use std::sync::Arc;

use super::error::WampError;
use super::handle::SessionHandle;
use super::realm::Realm;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Args, Dict, Message, Payload, Value};
pub use session::testament_topic;
pub use testament::Testaments;

/// The decoded CALL, as a procedure sees it.
pub struct MetaCall<'a> {
    pub realm: &'a Realm,
    pub caller: &'a Arc<SessionHandle>,
    /// The caller's testaments (kept by its session).
    pub testaments: &'a mut Testaments,
    pub args: Vec<Value>,
    pub kwargs: Dict,
    pub uri: &'static str,
}

impl MetaCall<'_> {
    /// Positional argument `i`, else keyword `name`.
    pub fn arg(&self, i: usize, name: &str) -> Option<&Value> {
        self.args.get(i).or_else(|| self.kwargs.get(name))
    }

    /// An `invalid_argument` error naming the procedure.
    pub fn bad(&self, what: &str) -> WampError {
        WampError::InvalidArgument(format!("{}: {what}", self.uri))
    }

    /// A required id argument.
    pub fn id(&self, i: usize, name: &str) -> Result<u64, WampError> {
        self.arg(i, name).and_then(Value::as_u64).ok_or_else(|| self.bad(&format!("argument {} ({name}) must be an id", i + 1)))
    }

    /// A required string argument.
    pub fn string(&self, i: usize, name: &str) -> Result<&str, WampError> {
        self.arg(i, name).and_then(Value::as_str).ok_or_else(|| self.bad(&format!("argument {} ({name}) must be a string", i + 1)))
    }

    /// The `match` of an options dict argument, as in SUBSCRIBE/REGISTER (exact if absent).
    pub fn match_policy(&self, i: usize) -> Result<MatchPolicy, WampError> {
        let options = match self.arg(i, "options") {
            None | Some(Value::Null) => return Ok(MatchPolicy::Exact),
            Some(Value::Dict(d)) => d,
            Some(_) => return Err(self.bad("options must be a dict")),
        };
        MatchPolicy::from_options(options).map_err(|e| self.bad(&e))
    }
}

/// Ids by match policy, as `wamp.subscription.list` and `wamp.registration.list` answer.
fn by_policy(ids: [Vec<u64>; 3]) -> Value {
    let [exact, prefix, wildcard] = ids.map(|v| Value::List(v.into_iter().map(Value::UInt).collect()));
    Value::Dict(crate::wamp::dict([("exact", exact), ("prefix", prefix), ("wildcard", wildcard)]))
}

/// What a procedure answers: RESULT.Arguments and ArgumentsKw.
#[derive(Debug, Default, PartialEq)]
pub struct MetaResult {
    pub args: Vec<Value>,
    pub kwargs: Dict,
    /// RESULT.Arguments already written in the caller's serializer (`args` is then
    /// empty): for long results, which a `Value` tree would make slow.
    pub encoded_args: Option<Payload>,
}

impl MetaResult {
    /// One positional result.
    pub fn one(v: Value) -> MetaResult {
        MetaResult { args: vec![v], ..MetaResult::default() }
    }

    /// No result.
    pub fn none() -> MetaResult {
        MetaResult::default()
    }
}

type Run = fn(&mut MetaCall<'_>) -> Result<MetaResult, WampError>;

/// A procedure of the router.
pub struct Procedure {
    pub uri: &'static str,
    /// Callable by every session without asking the authorizer: it only ever shows the
    /// caller what is its own, already authorized (its subscription's history).
    pub open: bool,
    run: Run,
}

const fn closed(uri: &'static str, run: Run) -> Procedure {
    Procedure { uri, open: false, run }
}

const PROCEDURES: &[Procedure] = &[
    Procedure { uri: "wamp.subscription.get_events", open: true, run: subscription::get_events },
    closed("wamp.session.count", session::count),
    closed("wamp.session.list", session::list),
    closed("wamp.session.get", session::get),
    closed("wamp.session.kill", session::kill),
    closed("wamp.session.kill_by_authid", session::kill_by_authid),
    closed("wamp.session.kill_by_authrole", session::kill_by_authrole),
    closed("wamp.session.kill_all", session::kill_all),
    closed(ADD_TESTAMENT, session::add_testament),
    closed("wamp.session.flush_testaments", session::flush_testaments),
    closed("wamp.subscription.list", subscription::list),
    closed("wamp.subscription.lookup", subscription::lookup),
    closed("wamp.subscription.match", subscription::matching),
    closed("wamp.subscription.get", subscription::get),
    closed("wamp.subscription.list_subscribers", subscription::list_subscribers),
    closed("wamp.subscription.count_subscribers", subscription::count_subscribers),
    closed("wamp.registration.list", registration::list),
    closed("wamp.registration.lookup", registration::lookup),
    closed("wamp.registration.match", registration::matching),
    closed("wamp.registration.get", registration::get),
    closed("wamp.registration.list_callees", registration::list_callees),
    closed("wamp.registration.count_callees", registration::count_callees),
];

/// Needs, besides the CALL's own permission, the permission to publish to its topic
/// (the session's requests ask for it before running the procedure).
pub const ADD_TESTAMENT: &str = "wamp.session.add_testament";

/// The router's procedure for `uri`, if it serves one.
pub fn procedure(uri: &str) -> Option<&'static Procedure> {
    if !uri.starts_with("wamp.") {
        return None;
    }
    PROCEDURES.iter().find(|p| p.uri == uri)
}

impl Procedure {
    /// Decodes a CALL's Arguments and ArgumentsKw for a procedure.
    pub fn decode(&self, payload: &Args) -> Result<(Vec<Value>, Dict), WampError> {
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
        Ok((args, kwargs))
    }

    /// Runs the procedure for a CALL and returns the RESULT for the caller.
    pub fn call(
        &self,
        realm: &Realm,
        caller: &Arc<SessionHandle>,
        testaments: &mut Testaments,
        request: u64,
        payload: &Args,
    ) -> Result<Message, WampError> {
        let decoded = self.decode(payload)?;
        self.answer(realm, caller, testaments, request, decoded)
    }

    /// Runs the procedure on arguments already decoded (`decode`).
    pub fn answer(
        &self,
        realm: &Realm,
        caller: &Arc<SessionHandle>,
        testaments: &mut Testaments,
        request: u64,
        (args, kwargs): (Vec<Value>, Dict),
    ) -> Result<Message, WampError> {
        let result = (self.run)(&mut MetaCall { realm, caller, testaments, args, kwargs, uri: self.uri })?;
        let ser = caller.serializer;
        let args = match result.encoded_args {
            Some(encoded) => Some(encoded),
            None => (!result.args.is_empty() || !result.kwargs.is_empty()).then(|| Payload::from_value(ser, &Value::List(result.args))),
        };
        let payload = Args {
            args,
            kwargs: (!result.kwargs.is_empty()).then(|| Payload::from_value(ser, &Value::Dict(result.kwargs))),
        };
        Ok(Message::Result { request, details: Dict::new(), payload })
    }
}
