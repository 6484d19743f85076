//! `wamp.subscription.*` procedures served by the router.

use std::time::SystemTime;

use super::events::subscription_details;
use super::{by_policy, MetaCall, MetaResult};
use crate::replay::time;
use crate::router::broker::HistoryQuery;
use crate::router::error::WampError;
use crate::wamp::ids::{PublicationId, SubscriptionId};
use crate::wamp::{Dict, Value};

/// `wamp.subscription.get_events(subscription, limit?)` with the keyword filters
/// `limit`, `reverse`, `after_time`, `before_time`, `after_publication`,
/// `before_publication`: the caller's own subscription's history, up to the point it
/// subscribed (its live events are exactly those after), oldest first unless `reverse`,
/// the most recent `limit` when limited. One positional result: a list of events, each
/// `{subscription, publication, topic, timestamp, _pos, args, kwargs}` plus the
/// publisher's identity when it was disclosed. When the start asked for
/// (`after_publication`) is no longer retained, the first event says how many events
/// may be missing (`_gap`).
pub fn get_events(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let bad = |what: &str| WampError::InvalidArgument(format!("wamp.subscription.get_events: {what}"));
    let id = call.arg(0, "subscription").and_then(Value::as_u64).ok_or_else(|| bad("the first argument must be a subscription id"))?;
    let int = |v: Option<&Value>, name: &str| -> Result<Option<u64>, WampError> {
        v.map(|v| v.as_u64().ok_or_else(|| bad(&format!("{name} must be a non-negative integer")))).transpose()
    };
    let when = |name: &str| -> Result<Option<SystemTime>, WampError> {
        call.kwargs
            .get(name)
            .map(|v| v.as_str().and_then(time::parse).ok_or_else(|| bad(&format!("{name} must be an RFC 3339 time"))))
            .transpose()
    };
    let q = HistoryQuery {
        limit: int(call.arg(1, "limit"), "limit")?,
        reverse: match call.kwargs.get("reverse") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| bad("reverse must be a bool"))?,
        },
        after_time: when("after_time")?,
        before_time: when("before_time")?,
        after_publication: int(call.kwargs.get("after_publication"), "after_publication")?.map(PublicationId),
        before_publication: int(call.kwargs.get("before_publication"), "before_publication")?.map(PublicationId),
    };
    let history = call.realm.broker.history(call.caller.id, SubscriptionId(id), &q)?;
    let mut events: Vec<Value> = Vec::with_capacity(history.events.len());
    for ev in &history.events {
        let mut e: Dict = (*ev.publisher).clone();
        e.insert("subscription".into(), Value::UInt(id));
        e.insert("publication".into(), Value::UInt(ev.publication.0));
        e.insert("topic".into(), Value::Str(ev.topic.to_string()));
        e.insert("timestamp".into(), Value::Str(time::format(ev.published_at)));
        e.insert("_pos".into(), Value::UInt(ev.pos.0));
        let decode = |p: Option<&crate::wamp::Payload>| p.map(|p| p.to_value()).transpose();
        let args = decode(ev.payload.args.as_ref()).map_err(|e| WampError::Unavailable(format!("stored event cannot be decoded: {e}")))?;
        let kwargs = decode(ev.payload.kwargs.as_ref()).map_err(|e| WampError::Unavailable(format!("stored event cannot be decoded: {e}")))?;
        e.insert("args".into(), args.unwrap_or(Value::List(Vec::new())));
        e.insert("kwargs".into(), kwargs.unwrap_or(Value::Dict(Dict::new())));
        events.push(Value::Dict(e));
    }
    if history.gap > 0 {
        if let Some(Value::Dict(first)) = events.first_mut() {
            first.insert("_gap".into(), Value::UInt(history.gap));
        }
    }
    Ok(MetaResult { args: vec![Value::List(events)], kwargs: Dict::new() })
}

/// `wamp.subscription.list()`: `{exact, prefix, wildcard}` lists of ids.
pub fn list(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(by_policy(call.realm.broker.subscription_ids())))
}

/// `wamp.subscription.lookup(topic, options?)`: the subscription of exactly that
/// topic and match policy, or null.
pub fn lookup(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let policy = call.match_policy(1)?;
    let id = call.realm.broker.lookup(call.string(0, "topic")?, policy);
    Ok(MetaResult::one(id.map_or(Value::Null, |id| Value::UInt(id.0))))
}

/// `wamp.subscription.match(topic)`: every subscription an event on the topic would
/// reach, or null when none.
pub fn matching(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let subs = call.realm.broker.matching(call.string(0, "topic")?);
    let ids = (!subs.is_empty()).then(|| Value::List(subs.iter().map(|s| Value::UInt(s.id.0)).collect()));
    Ok(MetaResult::one(ids.unwrap_or(Value::Null)))
}

fn subscription(call: &MetaCall<'_>) -> Result<std::sync::Arc<crate::router::broker::Subscription>, WampError> {
    let id = call.id(0, "subscription")?;
    call.realm.broker.subscription(SubscriptionId(id)).ok_or(WampError::NoSuchSubscription(id))
}

/// `wamp.subscription.get(id)`: `SubscriptionDetails`.
pub fn get(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(subscription_details(&*subscription(call)?)))
}

pub fn list_subscribers(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let ids = subscription(call)?.subscriber_ids();
    Ok(MetaResult::one(Value::List(ids.into_iter().map(|s| Value::UInt(s.0)).collect())))
}

pub fn count_subscribers(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(Value::UInt(subscription(call)?.subscriber_ids().len() as u64)))
}
