//! What happens to a session from outside its peer's messages: the control inbox
//! (re-check, revoke, close), revocation itself, timeouts, shutdown, and leaving.
//!
//! Revocation runs on the session's own task, like UNSUBSCRIBE, so the session's
//! holdings and the broker's and dealer's indexes change together. Delivery has already
//! stopped by then: the subscriber's guard refuses events from the moment the
//! authorizer knows (`auth::Guard`); this only ends the subscription and tells the
//! client.

use super::holdings::Holding;
use super::{Flow, Resume, Session, State};
use crate::auth::{Check, Request};
use crate::router::control::Control;
use crate::router::meta::events;
use crate::router::error::WampError;
use crate::wamp::ids::SubscriptionId;
use crate::wamp::{dict, Message, Value};

/// The reason given for a permission withdrawn.
pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";

impl Session {
    /// Serves one message of the control inbox. `waiting`: the session is waiting for
    /// an earlier piece of work, so a re-check (which may itself wait) is deferred
    /// until that is done.
    pub fn control(&mut self, c: Control, waiting: bool) -> Flow {
        match c {
            Control::Recheck if waiting => {
                self.recheck_due = true;
                Flow::Continue
            }
            Control::Recheck => self.recheck(),
            Control::RevokeSubscription { id, reason } => {
                self.revoke(Holding::Subscription(id), reason);
                Flow::Continue
            }
            Control::RevokeRegistration { id, reason } => {
                self.revoke(Holding::Registration(id), reason);
                Flow::Continue
            }
            Control::Close(closing) => {
                self.router.metrics.sessions_closed_by_router.inc();
                tracing::info!(session = %self.id, reason = %closing.reason, "closing the session: {}", closing.message);
                self.goodbye(&closing.reason, &closing.message)
            }
        }
    }

    /// Re-checks every revocable holding: what the authorizer now refuses is revoked;
    /// what it must find out about is asked, and decided when the answers arrive. A
    /// holding the authorizer cannot decide on is kept (its guard holds its events
    /// back) until a later re-check can.
    pub(super) fn recheck(&mut self) -> Flow {
        let Some((_, me)) = self.established() else { return Flow::Continue };
        let mut asks = Vec::new();
        for (holding, grounds) in self.holdings.revocable() {
            let req = Request { action: holding.action(), uri: &grounds.uri, policy: grounds.policy };
            match me.permissions.check(req) {
                Check::Decided(d) if d.allowed => {}
                Check::Decided(_) => self.revoke(holding, NOT_AUTHORIZED),
                Check::Ask => asks.push((holding, me.permissions.decide(req))),
            }
        }
        if asks.is_empty() {
            return Flow::Continue;
        }
        Flow::Wait(Box::pin(async move {
            let (holdings, answers): (Vec<Holding>, Vec<_>) = asks.into_iter().unzip();
            let answers = futures_util::future::join_all(answers).await;
            let rest: Resume = Box::new(move |s: &mut Session| {
                for (holding, answer) in holdings.into_iter().zip(answers) {
                    match answer {
                        Ok(d) if !d.allowed => s.revoke(holding, NOT_AUTHORIZED),
                        Ok(_) => {}
                        Err(e) => tracing::debug!(session = %s.id, error = %e, "re-check undecided; events stay held"),
                    }
                }
                Flow::Continue
            });
            rest
        }))
    }

    /// Ends a holding the session no longer may keep, and tells the client when it
    /// announced that it understands (`[UNSUBSCRIBED, 0, {subscription, reason}]`,
    /// `[UNREGISTERED, 0, {registration, reason}]`); otherwise it is removed silently.
    fn revoke(&mut self, holding: Holding, reason: &'static str) {
        let Some((realm, me)) = self.established() else { return };
        if !self.holdings.remove(holding) {
            return;
        }
        let notice = match holding {
            Holding::Subscription(id) => {
                if let Some(u) = realm.broker.unsubscribe(self.id, SubscriptionId(id)) {
                    events::unsubscribed(&realm.broker, self.id, u);
                }
                self.router.metrics.subscriptions_revoked.inc();
                me.features.subscription_revocation.then(|| Message::Unsubscribed {
                    request: 0,
                    details: Some(dict([("subscription", Value::UInt(id)), ("reason", reason.into())])),
                })
            }
            Holding::Registration(id) => {
                if let Some(d) = realm.dealer.revoke(self.id, id) {
                    events::unregistered(&realm.broker, self.id, d);
                }
                self.router.metrics.registrations_revoked.inc();
                me.features.registration_revocation.then(|| Message::Unregistered {
                    request: 0,
                    details: Some(dict([("registration", Value::UInt(id)), ("reason", reason.into())])),
                })
            }
        };
        tracing::info!(session = %self.id, ?holding, reason, "revoked");
        if let Some(notice) = notice {
            self.push(&notice);
        }
    }

    /// GOODBYE with `reason` to an established session, which leaves at once and
    /// waits briefly for the reply; a session still joining gets ABORT instead.
    fn goodbye(&mut self, reason: &str, message: &str) -> Flow {
        let details = if message.is_empty() { crate::wamp::Dict::new() } else { dict([("message", message.into())]) };
        if let State::Established { .. } = self.state {
            self.push(&Message::Goodbye { details, reason: reason.to_owned() });
            self.leave();
            self.state = State::Closing;
            Flow::Closing
        } else {
            self.push(&Message::Abort { details, reason: reason.to_owned() });
            self.close_after_flush();
            self.state = State::Closed;
            Flow::Close
        }
    }

    /// The peer sent a message above the size limit: tell it why, then close.
    pub fn too_large(&mut self, size: usize, limit: usize) {
        self.violation(format!("message of {size} bytes exceeds the limit of {limit} bytes"));
    }

    pub fn hello_timeout(&mut self) {
        self.violation(format!("no HELLO within {:?}", self.router.limits.hello_timeout));
    }

    /// A message begun and not finished within the frame timeout.
    pub fn incomplete(&mut self, after: std::time::Duration) {
        self.violation(format!("a message was not completed within {after:?} of its first byte"));
    }

    /// A newer connection took this one's place at the connection limit before this one
    /// established a session.
    pub fn evicted(&mut self) {
        tracing::debug!(session = %self.id, peer = %self.conn.peer, "evicted at the connection limit");
        self.abort(WampError::ProtocolViolation(
            "the router is at its connection limit and this connection has not established a session".into(),
        ));
    }

    /// Router shutdown: GOODBYE `wamp.close.system_shutdown` to an established session;
    /// one still joining is aborted.
    pub fn system_shutdown(&mut self) -> Flow {
        if let State::Established { .. } = self.state {
            self.goodbye("wamp.close.system_shutdown", "the router is shutting down")
        } else {
            self.abort(WampError::ProtocolViolation("the router is shutting down".into()))
        }
    }

    /// Leaves the realm: subscriptions, registrations and calls in flight go with it.
    pub fn leave(&mut self) {
        if let State::Established { realm, handle } = std::mem::replace(&mut self.state, State::Closed) {
            let (subscriptions, registrations) = self.holdings.take();
            let (unsubscribed, unregistered) = realm.leave(self.id, subscriptions, registrations);
            // What the session held goes first, then its testaments, then the news that
            // it left (spec: on_unsubscribe/on_delete before on_leave).
            for u in unsubscribed {
                events::unsubscribed(&realm.broker, self.id, u);
            }
            for d in unregistered {
                events::unregistered(&realm.broker, self.id, d);
            }
            self.testaments.publish(&realm.broker, &handle);
            events::left(&realm.broker, &handle);
            self.router.metrics.sessions.dec();
            tracing::debug!(session = %self.id, "session left");
        }
    }
}
