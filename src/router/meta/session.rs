//! `wamp.session.*` procedures served by the router: counting, listing and killing
//! the realm's sessions, and the caller's testaments.
//!
//! Killing goes through each session's control inbox: the session says GOODBYE with
//! the reason on its own task, like any close the router asks for. A caller never
//! kills itself (spec).

use std::sync::Arc;

use super::events::session_details;
use super::testament::{Scope, Testament};
use super::{MetaCall, MetaResult};
use crate::router::control::{Closing, Control};
use crate::router::error::WampError;
use crate::router::handle::SessionHandle;
use crate::wamp::ids::SessionId;
use crate::wamp::uri::{self, MatchPolicy};
use crate::wamp::{Args, Dict, Payload, Serializer, Value};

/// The optional `filter_authroles` list argument.
fn authroles(call: &MetaCall<'_>) -> Result<Option<Vec<String>>, WampError> {
    match call.arg(0, "filter_authroles") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::List(l)) => l
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| call.bad("filter_authroles must be a list of strings")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(call.bad("filter_authroles must be a list of strings")),
    }
}

fn filtered(call: &MetaCall<'_>) -> Result<Vec<Arc<SessionHandle>>, WampError> {
    let roles = authroles(call)?;
    let mut sessions = call.realm.sessions();
    if let Some(roles) = roles {
        sessions.retain(|s| roles.contains(&s.authrole));
    }
    Ok(sessions)
}

/// `wamp.session.count(filter_authroles?)`.
pub fn count(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(Value::UInt(filtered(call)?.len() as u64)))
}

/// `wamp.session.list(filter_authroles?)`: session ids, in no particular order.
pub fn list(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(Value::List(filtered(call)?.iter().map(|s| Value::UInt(s.id.0)).collect())))
}

/// `wamp.session.get(session)`: its details, or `wamp.error.no_such_session`.
pub fn get(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let id = call.id(0, "session")?;
    let s = call.realm.session(SessionId(id)).ok_or(WampError::NoSuchSession(id))?;
    Ok(MetaResult::one(session_details(&s)))
}

/// The GOODBYE of a kill: `reason` (default `wamp.close.normal`, must be a valid
/// URI) and an optional `message`.
fn closing(call: &MetaCall<'_>) -> Result<Closing, WampError> {
    let reason = match call.kwargs.get("reason") {
        None => "wamp.close.normal",
        Some(Value::Str(r)) if !r.is_empty() && uri::is_valid(r, MatchPolicy::Exact, false) => r,
        Some(other) => return Err(WampError::InvalidUri(format!("{other:?}"))),
    };
    let message = match call.kwargs.get("message") {
        None => String::new(),
        Some(Value::Str(m)) => m.clone(),
        Some(_) => return Err(call.bad("message must be a string")),
    };
    Ok(Closing { reason: reason.to_owned(), message })
}

/// Tells every session `pick` chooses, except the caller, to close; returns how many.
fn kill_where(call: &MetaCall<'_>, pick: impl Fn(&SessionHandle) -> bool) -> Result<MetaResult, WampError> {
    let closing = closing(call)?;
    let mut n = 0;
    for s in call.realm.sessions() {
        if s.id != call.caller.id && pick(&s) {
            call.realm.control(&s, Control::Close(Box::new(closing.clone())));
            n += 1;
        }
    }
    Ok(MetaResult::one(Value::UInt(n)))
}

/// `wamp.session.kill(session, reason=, message=)`.
pub fn kill(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let id = SessionId(call.id(0, "session")?);
    let closing = closing(call)?;
    let s = call.realm.session(id).filter(|s| s.id != call.caller.id).ok_or(WampError::NoSuchSession(id.0))?;
    call.realm.control(&s, Control::Close(Box::new(closing)));
    Ok(MetaResult::none())
}

pub fn kill_by_authid(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let authid = call.string(0, "authid")?.to_owned();
    kill_where(call, |s| s.authid == authid)
}

pub fn kill_by_authrole(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let authrole = call.string(0, "authrole")?.to_owned();
    kill_where(call, |s| s.authrole == authrole)
}

pub fn kill_all(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    kill_where(call, |_| true)
}

/// `wamp.session.add_testament(topic, args, kwargs, publish_options=, scope=)`. The
/// permission to publish to `topic` was confirmed before this runs
/// (`session/requests.rs`).
pub fn add_testament(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let topic = call.string(0, "topic")?.to_owned();
    let payload = |v: Option<&Value>, want_list: bool| -> Result<Option<Payload>, WampError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::List(l)) if want_list => Ok((!l.is_empty()).then(|| Payload::from_value(Serializer::Json, v))),
            Some(v @ Value::Dict(d)) if !want_list => Ok((!d.is_empty()).then(|| Payload::from_value(Serializer::Json, v))),
            Some(_) => Err(call.bad(if want_list { "args must be a list" } else { "kwargs must be a dict" })),
        }
    };
    let mut args = Args { args: payload(call.args.get(1), true)?, kwargs: payload(call.args.get(2), false)? };
    if args.kwargs.is_some() && args.args.is_none() {
        args.args = Some(Payload::from_value(Serializer::Json, &Value::List(Vec::new())));
    }
    let options = match call.kwargs.get("publish_options") {
        None | Some(Value::Null) => Dict::new(),
        Some(Value::Dict(d)) => d.clone(),
        Some(_) => return Err(call.bad("publish_options must be a dict")),
    };
    let scope = Scope::parse(call.kwargs.get("scope"))?;
    call.testaments.add(Testament::new(topic, args, options, scope))?;
    Ok(MetaResult::none())
}

/// The topic `wamp.session.add_testament` publishes to, to be authorized first.
pub fn testament_topic(args: &[Value]) -> Option<&str> {
    args.first().and_then(Value::as_str)
}

/// `wamp.session.flush_testaments(scope=)`.
pub fn flush_testaments(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let scope = Scope::parse(call.kwargs.get("scope"))?;
    call.testaments.flush(scope);
    Ok(MetaResult::none())
}
