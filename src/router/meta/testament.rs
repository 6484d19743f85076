//! Testaments (spec: `wamp.session.add_testament`, `wamp.session.flush_testaments`):
//! events a session leaves with the router, published when it leaves or its
//! connection is lost, so a dispatcher can announce its own death.
//!
//! They belong to the session and live on its task, like its holdings. Bounded: at
//! most `MAX_COUNT` testaments and `MAX_BYTES` of arguments per session; beyond, adding
//! is refused with `wamp.error.limit_reached`. The topic must be one the session may
//! publish to when it adds the testament (asked like a PUBLISH) and still when it is
//! published (its cached permission; a permission that cannot be confirmed then
//! withholds it: fail closed).

use crate::auth::{Action, Check, Request};
use crate::router::broker::{Broker, Publication, Recipients};
use crate::router::error::WampError;
use crate::router::handle::SessionHandle;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Args, Dict, Value};

pub const MAX_COUNT: usize = 16;
pub const MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The session detached (the spec's session resumption; here: any leaving).
    Detached,
    /// The session is gone (the default).
    Destroyed,
}

impl Scope {
    pub fn parse(v: Option<&Value>) -> Result<Scope, WampError> {
        match v {
            None => Ok(Scope::Destroyed),
            Some(Value::Str(s)) if s == "destroyed" => Ok(Scope::Destroyed),
            Some(Value::Str(s)) if s == "detached" => Ok(Scope::Detached),
            Some(other) => Err(WampError::InvalidArgument(format!("scope must be 'detached' or 'destroyed', not {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Testament {
    pub topic: String,
    pub args: Args,
    pub options: Dict,
    pub scope: Scope,
    bytes: usize,
}

impl Testament {
    pub fn new(topic: String, args: Args, options: Dict, scope: Scope) -> Testament {
        let bytes = topic.len() + args.args.as_ref().map_or(0, |p| p.bytes().len()) + args.kwargs.as_ref().map_or(0, |p| p.bytes().len());
        Testament { topic, args, options, scope, bytes }
    }
}

/// A session's testaments in the order they were added.
#[derive(Debug, Default)]
pub struct Testaments {
    list: Vec<Testament>,
    bytes: usize,
}

impl Testaments {
    pub fn add(&mut self, t: Testament) -> Result<(), WampError> {
        if self.list.len() >= MAX_COUNT || self.bytes + t.bytes > MAX_BYTES {
            return Err(WampError::LimitReached(format!("a session may leave at most {MAX_COUNT} testaments of {MAX_BYTES} bytes in all")));
        }
        self.bytes += t.bytes;
        self.list.push(t);
        Ok(())
    }

    /// Removes the testaments of `scope`; returns how many.
    pub fn flush(&mut self, scope: Scope) -> usize {
        let before = self.list.len();
        self.list.retain(|t| t.scope != scope);
        self.bytes = self.list.iter().map(|t| t.bytes).sum();
        before - self.list.len()
    }

    /// Publishes them as the leaving session: `detached` ones first, then `destroyed`
    /// (spec, for a router without session resumption), each in the order added.
    pub fn publish(&mut self, broker: &Broker, me: &SessionHandle) {
        let list = std::mem::take(&mut self.list);
        self.bytes = 0;
        for scope in [Scope::Detached, Scope::Destroyed] {
            for t in list.iter().filter(|t| t.scope == scope) {
                publish(broker, me, t);
            }
        }
    }
}

fn publish(broker: &Broker, me: &SessionHandle, t: &Testament) {
    let req = Request { action: Action::Publish, uri: &t.topic, policy: MatchPolicy::Exact };
    let disclose = match me.permissions.check(req) {
        Check::Decided(d) if d.allowed => d.disclose,
        _ => {
            tracing::info!(session = %me.id, topic = %t.topic, "testament withheld: the session may not publish to its topic now");
            return;
        }
    };
    let opt = |k: &str| t.options.get(k).and_then(Value::as_bool).unwrap_or(false);
    // The session is gone, so excluding it is moot; the lists still apply.
    let recipients = match Recipients::from_options(me.id, &t.options) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(session = %me.id, error = %e, "testament withheld: invalid publish options");
            return;
        }
    };
    let p = Publication {
        publisher: Some(me),
        topic: &t.topic,
        recipients,
        disclose: disclose || opt("disclose_me"),
        payload: t.args.clone(),
        retain: opt("retain"),
        ppt: None,
        slot: None,
    };
    broker.publish(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(topic: &str, scope: Scope, bytes: usize) -> Testament {
        let payload = crate::wamp::Payload::from_value(crate::wamp::Serializer::Json, &Value::Str("x".repeat(bytes)));
        Testament::new(topic.into(), Args { args: Some(payload), kwargs: None }, Dict::new(), scope)
    }

    #[test]
    fn bounded_in_count_and_bytes_and_flushed_by_scope() {
        let mut ts = Testaments::default();
        for i in 0..MAX_COUNT {
            ts.add(t(&format!("t{i}"), if i % 2 == 0 { Scope::Detached } else { Scope::Destroyed }, 10)).unwrap();
        }
        assert_eq!(ts.add(t("one.more", Scope::Destroyed, 1)).unwrap_err().uri(), "wamp.error.limit_reached");
        assert_eq!(ts.flush(Scope::Detached), MAX_COUNT / 2);
        assert_eq!(ts.flush(Scope::Detached), 0);
        assert_eq!(ts.add(t("big", Scope::Destroyed, MAX_BYTES)).unwrap_err().uri(), "wamp.error.limit_reached");
        ts.add(t("fits", Scope::Destroyed, MAX_BYTES / 2)).unwrap();
        assert_eq!(ts.list.len(), MAX_COUNT / 2 + 1);
        assert_eq!(Scope::parse(None), Ok(Scope::Destroyed));
        assert_eq!(Scope::parse(Some(&"detached".into())), Ok(Scope::Detached));
        assert_eq!(Scope::parse(Some(&"later".into())).unwrap_err().uri(), "wamp.error.invalid_argument");
    }
}
