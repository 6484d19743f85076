//! `wamp.subscription.*` procedures served by the router.

use std::time::SystemTime;

use bytes::Bytes;

use super::events::subscription_details;
use super::{by_policy, MetaCall, MetaResult};
use crate::replay::time;
use crate::router::broker::{History, HistoryQuery};
use crate::router::error::WampError;
use crate::wamp::ids::{PublicationId, SubscriptionId};
use crate::wamp::writer::Writer;
use crate::wamp::{DecodeError, Dict, Payload, Serializer, Value};

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
    let args = history_list(call.caller.serializer, id, &history)
        .map_err(|e| WampError::Unavailable(format!("stored event cannot be decoded: {e}")))?;
    Ok(MetaResult { encoded_args: Some(args), ..MetaResult::default() })
}

/// RESULT.Arguments of `get_events`, `[[event, ...]]`, written straight in the caller's
/// serializer: stored payloads in that serializer are copied as they are (ten thousand
/// events would otherwise be ten thousand maps built, and as many payloads decoded and
/// encoded again).
fn history_list(ser: Serializer, subscription: u64, history: &History) -> Result<Payload, DecodeError> {
    let size: usize = history.events.iter().map(|e| 160 + e.topic.len() + e.payload.len()).sum();
    let mut w = Writer::new(ser, size + 16);
    w.list(1);
    w.list(history.events.len());
    for (i, ev) in history.events.iter().enumerate() {
        let gap = (i == 0 && history.gap > 0).then_some(history.gap);
        w.dict(ev.publisher.len() + 7 + usize::from(gap.is_some()));
        for (k, v) in ev.publisher.iter() {
            w.key(k);
            w.value(v);
        }
        w.key("subscription");
        w.uint(subscription);
        w.key("publication");
        w.uint(ev.publication.0);
        w.key("topic");
        w.str(&ev.topic);
        w.key("timestamp");
        w.str(&time::format(ev.published_at));
        w.key("_pos");
        w.uint(ev.pos.0);
        w.key("args");
        match &ev.payload.args {
            Some(p) => w.payload(p)?,
            None => w.value(&Value::List(Vec::new())),
        }
        w.key("kwargs");
        match &ev.payload.kwargs {
            Some(p) => w.payload(p)?,
            None => w.value(&Value::Dict(Dict::new())),
        }
        if let Some(gap) = gap {
            w.key("_gap");
            w.uint(gap);
        }
        w.end();
    }
    w.end();
    w.end();
    Ok(Payload::from_encoded(ser, Bytes::from(w.finish())))
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
