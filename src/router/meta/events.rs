//! The meta events the router publishes in a realm (spec: session, subscription and
//! registration meta API), each after the action it reports: a subscriber to
//! `wamp.subscription.on_subscribe` learns of a subscription that exists.
//!
//! Their arguments are built only when someone subscribes to the topic
//! (`Broker::publish_meta`), so an unwatched realm pays one lookup per event.

use std::time::SystemTime;

use crate::replay::time;
use crate::router::broker::{Broker, Subscription, Unsubscribed};
use crate::router::dealer::{Attached, Detached, RegistrationInfo};
use crate::router::handle::SessionHandle;
use crate::wamp::ids::SessionId;
use crate::wamp::{dict, Dict, Value};

/// `wamp.session.get`'s details of a session, also `wamp.session.on_join`'s argument.
pub fn session_details(s: &SessionHandle) -> Value {
    Value::Dict(dict([
        ("session", Value::UInt(s.id.0)),
        ("authid", s.authid.as_str().into()),
        ("authrole", s.authrole.as_str().into()),
        ("authmethod", s.authmethod.as_str().into()),
        ("authprovider", s.authprovider.into()),
        (
            "transport",
            Value::Dict(dict([("type", s.transport.into()), ("peer", s.peer.as_str().into()), ("is_secure", Value::Bool(s.secure))])),
        ),
    ]))
}

pub fn joined(broker: &Broker, s: &SessionHandle) {
    broker.publish_meta("wamp.session.on_join", || vec![session_details(s)]);
}

pub fn left(broker: &Broker, s: &SessionHandle) {
    broker.publish_meta("wamp.session.on_leave", || vec![Value::UInt(s.id.0), s.authid.as_str().into(), s.authrole.as_str().into()]);
}

fn created(at: SystemTime) -> Value {
    time::format(at).into()
}

/// `SubscriptionDetails` (spec: subscription meta API).
pub fn subscription_details(sub: &Subscription) -> Value {
    Value::Dict(dict([
        ("id", Value::UInt(sub.id.0)),
        ("created", created(sub.created)),
        ("uri", sub.uri.as_str().into()),
        ("match", sub.policy.as_str().into()),
    ]))
}

/// `RegistrationDetails` (spec: registration meta API).
pub fn registration_details(r: &RegistrationInfo) -> Value {
    let d: Dict = dict([
        ("id", Value::UInt(r.id.0)),
        ("created", created(r.created)),
        ("uri", r.uri.as_str().into()),
        ("match", r.policy.as_str().into()),
        ("invoke", r.invoke.as_str().into()),
    ]);
    Value::Dict(d)
}

/// `on_create` (for a new subscription) then `on_subscribe`.
pub fn subscribed(broker: &Broker, session: SessionId, sub: &Subscription, created: bool) {
    if created {
        broker.publish_meta("wamp.subscription.on_create", || vec![Value::UInt(session.0), subscription_details(sub)]);
    }
    broker.publish_meta("wamp.subscription.on_subscribe", || vec![Value::UInt(session.0), Value::UInt(sub.id.0)]);
}

/// `on_unsubscribe` then, for the last subscriber, `on_delete`.
pub fn unsubscribed(broker: &Broker, session: SessionId, u: Unsubscribed) {
    let args = || vec![Value::UInt(session.0), Value::UInt(u.subscription.0)];
    broker.publish_meta("wamp.subscription.on_unsubscribe", args);
    if u.deleted {
        broker.publish_meta("wamp.subscription.on_delete", args);
    }
}

/// `on_create` (for a new registration) then `on_register`.
pub fn registered(broker: &Broker, session: SessionId, a: &Attached) {
    if let Some(info) = &a.created {
        broker.publish_meta("wamp.registration.on_create", || vec![Value::UInt(session.0), registration_details(info)]);
    }
    broker.publish_meta("wamp.registration.on_register", || vec![Value::UInt(session.0), Value::UInt(a.registration.0)]);
}

/// `on_unregister` then, for the last callee, `on_delete`.
pub fn unregistered(broker: &Broker, session: SessionId, d: Detached) {
    let args = || vec![Value::UInt(session.0), Value::UInt(d.registration.0)];
    broker.publish_meta("wamp.registration.on_unregister", args);
    if d.deleted {
        broker.publish_meta("wamp.registration.on_delete", args);
    }
}
