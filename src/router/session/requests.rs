//! The requests of an established session, and their authorization.
//!
//! Every PUBLISH, SUBSCRIBE, CALL and REGISTER is authorized first. A decision the
//! authorizer already knows is applied at once, with no allocation (the common case,
//! and the publish path). Otherwise the request waits for the authorizer's answer
//! ([`Flow::Wait`]) and the rest of the work runs when it arrives; the connection reads
//! nothing else from this peer meanwhile, so requests are answered in order.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::holdings::{Grounds, Holding};
use super::{Flow, Resume, Session};
use crate::auth::{Action, Check, Decision, Request, Undecided};
use crate::router::checks::{self, permitted};
use crate::router::broker::{Attach, Publication, Start};
use crate::router::meta;
use crate::replay::durable::Slot;
use crate::router::dealer::{self, error_message, CallRequest, Invoke, RegisterRequest};
use crate::router::meta::events;
use crate::router::error::WampError;
use crate::router::handle::SessionHandle;
use crate::router::realm::Realm;
use crate::wamp::ids::SubscriptionId;
use crate::wamp::message::code;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Args, Dict, Message, Value};

/// A request that needs a permission: what is asked, and everything needed to finish
/// it once the answer is known.
trait Asking: Send + 'static {
    const ACTION: Action;
    fn uri(&self) -> &str;
    fn policy(&self) -> MatchPolicy {
        MatchPolicy::Exact
    }
    /// Checks made before the authorizer is asked (a malformed URI costs it nothing).
    fn validate(&self, s: &Session) -> Result<(), WampError> {
        s.check_uri(self.uri(), self.policy())
    }
    /// Finishes the request with the decision, or answers with the error.
    fn finish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Result<Decision, WampError>) -> Flow;
}

/// The authorizer's answer to a request, now or later.
enum Authz {
    Now(Decision),
    Later(BoxFuture<'static, Result<Decision, Undecided>>),
}

impl Session {
    pub(super) fn on_established(&mut self, msg: Message, realm: &Arc<Realm>, me: &Arc<SessionHandle>) -> Flow {
        match msg {
            Message::Publish { request, options, topic, payload } => {
                let p = Publish { request, options, topic, payload };
                if let Err(wait) = self.rates.publication() {
                    realm.metrics().quota_refused(&realm.name, "publication");
                    p.refused(self, me, WampError::RateLimited("the session publishes faster than its realm allows".into()));
                    return pause(wait);
                }
                self.authorized(realm, me, p)
            }
            Message::Subscribe { request, options, topic } => {
                match match_policy(&options).and_then(|policy| Ok((policy, Start::from_options(&options, policy)?))) {
                    Ok((policy, start)) => self.authorized(realm, me, Subscribe { request, topic, policy, start }),
                    Err(e) => self.reply(me, Err((code::SUBSCRIBE, request, e))),
                }
            }
            Message::Unsubscribe { request, subscription } => {
                let removed = self.holdings.remove(Holding::Subscription(subscription));
                match removed.then(|| realm.broker.unsubscribe(self.id, SubscriptionId(subscription))).flatten() {
                    Some(u) => {
                        self.push(&Message::Unsubscribed { request, details: None });
                        events::unsubscribed(&realm.broker, self.id, u);
                        Flow::Continue
                    }
                    None => self.reply(me, Err((code::UNSUBSCRIBE, request, WampError::NoSuchSubscription(subscription)))),
                }
            }
            Message::Call { request, options, procedure, payload } => match (meta::procedure(&procedure), self.rates.call()) {
                (_, Err(wait)) => {
                    realm.metrics().quota_refused(&realm.name, "call");
                    let e = WampError::RateLimited("the session calls faster than its realm allows".into());
                    self.reply(me, Err((code::CALL, request, e)));
                    pause(wait)
                }
                // The router's own procedures that need no permission answer at once.
                (Some(p), Ok(())) if p.open => {
                    let r = p.call(realm, me, &mut self.testaments, request, &payload);
                    self.reply(me, r.map(Some).map_err(|e| (code::CALL, request, e)))
                }
                (_, Ok(())) => self.authorized(realm, me, Call { request, options, procedure, payload }),
            },
            Message::Cancel { request, options } => {
                let r = realm.dealer.cancel(self.id, request, &options).map(|()| None).map_err(|e| (code::CANCEL, request, e));
                self.reply(me, r)
            }
            Message::Register { request, options, procedure } => match register_options(&options) {
                Ok((policy, invoke)) => self.authorized(realm, me, Register { request, procedure, policy, invoke }),
                Err(e) => self.reply(me, Err((code::REGISTER, request, e))),
            },
            Message::Unregister { request, registration } => {
                let r = if self.holdings.remove(Holding::Registration(registration)) {
                    realm.dealer.unregister(self.id, registration)
                } else {
                    Err(WampError::NoSuchRegistration(registration))
                };
                match r {
                    Ok(d) => {
                        self.push(&Message::Unregistered { request, details: None });
                        events::unregistered(&realm.broker, self.id, d);
                        Flow::Continue
                    }
                    Err(e) => self.reply(me, Err((code::UNREGISTER, request, e))),
                }
            }
            Message::Yield { request, options, payload } => match passthru(&options, me.features.callee_ppt, "YIELD") {
                Ok(ppt) => {
                    realm.dealer.yield_result(self.id, request, &options, payload, ppt);
                    Flow::Continue
                }
                Err(Passthru::Unannounced(m)) => self.violation(m),
                Err(Passthru::Invalid(e)) => {
                    realm.dealer.fail_invocation(self.id, request, &e);
                    Flow::Continue
                }
            },
            Message::Error { request_type: code::INVOCATION, request, details, error, payload } => {
                match self.check_error_uri(&error) {
                    Ok(()) => realm.dealer.callee_error(self.id, request, details, error, payload),
                    Err(e) => realm.dealer.fail_invocation(self.id, request, &e),
                }
                Flow::Continue
            }
            Message::Goodbye { .. } => {
                self.push(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() });
                Flow::Close
            }
            Message::Abort { .. } => Flow::Close,
            other => self.violation(format!("{} is not allowed from a client in an established session", other.name())),
        }
    }

    /// Queues the reply or the error for a request.
    fn reply(&self, me: &SessionHandle, r: Result<Option<Message>, (u64, u64, WampError)>) -> Flow {
        match r {
            Ok(Some(reply)) => self.push(&reply),
            Ok(None) => {}
            Err((request_type, request, e)) => self.push(&error_message(request_type, request, &e, me)),
        }
        Flow::Continue
    }

    /// Authorizes `req` and finishes it, at once when the answer is known, else once
    /// the authorizer has found out.
    fn authorized<A: Asking>(&mut self, realm: &Realm, me: &Arc<SessionHandle>, req: A) -> Flow {
        if let Err(e) = req.validate(self) {
            return req.finish(self, realm, me, Err(e));
        }
        let asked = Request { action: A::ACTION, uri: req.uri(), policy: req.policy() };
        let authz = match me.permissions.check(asked) {
            Check::Decided(d) => Authz::Now(d),
            Check::Ask => Authz::Later(Box::pin(checks::decide_later(&self.router.metrics, &me.permissions, asked))),
        };
        match authz {
            Authz::Now(d) => {
                let d = permitted(Ok(d), A::ACTION, req.uri());
                req.finish(self, realm, me, d)
            }
            Authz::Later(answer) => Flow::Wait(Box::pin(async move {
                let d = answer.await;
                let rest: Resume = Box::new(move |s: &mut Session| {
                    // The session may have left while it waited: nothing to finish then.
                    let Some((realm, me)) = s.established() else { return Flow::Continue };
                    let d = permitted(d, A::ACTION, req.uri());
                    req.finish(s, &realm, &me, d)
                });
                rest
            })),
        }
    }

    /// A URI the client publishes or registers to (`checks::own_uri`).
    fn check_own_uri(&self, uri: &str, policy: MatchPolicy) -> Result<(), WampError> {
        checks::own_uri(&self.router.limits, uri, policy)
    }

    /// The guard of a new holding (if its events or calls are decided one by one), and
    /// its grounds if its permission can be withdrawn.
    fn revocable(me: &SessionHandle, d: Decision, req: Request<'_>) -> (Option<Arc<dyn crate::auth::Guard>>, Option<Grounds>) {
        let grounds = d.revocable.then(|| Grounds { uri: req.uri.to_owned(), policy: req.policy });
        (me.permissions.guard(req), grounds)
    }
}

struct Publish {
    request: u64,
    options: Dict,
    topic: String,
    payload: Args,
}

impl Asking for Publish {
    const ACTION: Action = Action::Publish;
    fn uri(&self) -> &str {
        &self.topic
    }
    fn validate(&self, s: &Session) -> Result<(), WampError> {
        s.check_own_uri(&self.topic, MatchPolicy::Exact)
    }
    fn finish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Result<Decision, WampError>) -> Flow {
        let d = match d {
            Ok(d) => d,
            Err(e) => return self.refused(s, me, e),
        };
        // A durable topic's publication first takes a place in the database writer's
        // bounded queue; when it is full, this session waits (reading nothing more)
        // until a batch commits: the publisher's backpressure.
        let durable = match checks::durable_queue(realm.broker.store(), &s.router.metrics, &self.topic) {
            Ok(Some(durable)) => durable,
            Ok(None) => return self.publish(s, realm, me, d, None),
            Err(e) => return self.refused(s, me, e),
        };
        if let Some(slot) = durable.try_reserve() {
            return self.publish(s, realm, me, d, Some(slot));
        }
        let durable = durable.clone();
        Flow::Wait(Box::pin(async move {
            let slot = durable.reserve().await;
            let rest: Resume = Box::new(move |s: &mut Session| {
                let Some((realm, me)) = s.established() else { return Flow::Continue };
                match slot {
                    Ok(slot) => self.publish(s, &realm, &me, d, Some(slot)),
                    Err(e) => self.refused(s, &me, checks::no_place(e)),
                }
            });
            rest
        }))
    }
}

impl Publish {
    fn acknowledged(&self) -> bool {
        self.options.get("acknowledge").and_then(Value::as_bool).unwrap_or(false)
    }

    fn refused(&self, s: &Session, me: &SessionHandle, e: WampError) -> Flow {
        if self.acknowledged() {
            return s.reply(me, Err((code::PUBLISH, self.request, e)));
        }
        Flow::Continue
    }

    fn publish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Decision, slot: Option<Slot>) -> Flow {
        let ack = self.acknowledged();
        let request = self.request;
        let ppt = match passthru(&self.options, me.features.publisher_ppt, "PUBLISH") {
            Ok(ppt) => ppt,
            Err(Passthru::Unannounced(m)) => return s.violation(m),
            Err(Passthru::Invalid(e)) => return self.refused(s, me, e),
        };
        let published = Publication::from_options(me, &self.topic, &self.options, self.payload, d.disclose, ppt, slot)
            .map(|p| realm.broker.publish(p));
        match published {
            Ok(p) if ack => match p.commit {
                None => s.reply(me, Ok(Some(Message::Published { request, publication: p.publication }))),
                Some(commit) => {
                    // PUBLISHED once the event is durable, without holding up this
                    // session's next messages: the writer sends it right after the
                    // batch's statement (no task per publication).
                    let me = me.clone();
                    commit.then(move |outcome| {
                        let reply = match outcome {
                            Ok(()) => Message::Published { request, publication: p.publication },
                            Err(e) => error_message(code::PUBLISH, request, &WampError::Unavailable(format!("the event was delivered but could not be made durable: {e}")), &me),
                        };
                        let _ = me.send(&reply);
                    });
                    Flow::Continue
                }
            },
            Err(e) if ack => s.reply(me, Err((code::PUBLISH, request, e))),
            _ => Flow::Continue,
        }
    }
}

struct Subscribe {
    request: u64,
    topic: String,
    policy: MatchPolicy,
    start: Start,
}

impl Asking for Subscribe {
    const ACTION: Action = Action::Subscribe;
    fn uri(&self) -> &str {
        &self.topic
    }
    fn policy(&self) -> MatchPolicy {
        self.policy
    }
    fn finish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Result<Decision, WampError>) -> Flow {
        let allowed = (|| {
            let d = d?;
            let max = s.router.limits.max_subscriptions_per_session;
            if s.holdings.subscriptions() >= max {
                return Err(WampError::LimitReached(format!("a session may hold at most {max} subscriptions")));
            }
            Ok(d)
        })();
        let d = match allowed {
            Ok(d) => d,
            Err(e) => return s.reply(me, Err((code::SUBSCRIBE, self.request, e))),
        };
        let req = Request { action: Action::Subscribe, uri: &self.topic, policy: self.policy };
        let (guard, grounds) = Session::revocable(me, d, req);
        let request = self.request;
        let attach = Attach { session: me, uri: &self.topic, policy: self.policy, guard, start: self.start };
        let done = realm.broker.subscribe(attach, &realm.ids, |subscription| s.push(&Message::Subscribed { request, subscription }));
        s.holdings.add(Holding::Subscription(done.sub.id.0), grounds);
        if done.added {
            events::subscribed(&realm.broker, s.id, &done.sub, done.created);
        }
        Flow::Continue
    }
}

struct Call {
    request: u64,
    options: Dict,
    procedure: String,
    payload: Args,
}

impl Asking for Call {
    const ACTION: Action = Action::Call;
    fn uri(&self) -> &str {
        &self.procedure
    }
    fn finish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Result<Decision, WampError>) -> Flow {
        let request = self.request;
        if let Some(p) = meta::procedure(&self.procedure) {
            if let Err(e) = d {
                return s.reply(me, Err((code::CALL, request, e)));
            }
            if p.uri == meta::ADD_TESTAMENT {
                // The testament will be published as this session: it needs the
                // permission to publish to its topic as well.
                let (args, kwargs) = match p.decode(&self.payload) {
                    Ok(decoded) => decoded,
                    Err(e) => return s.reply(me, Err((code::CALL, request, e))),
                };
                return match meta::testament_topic(&args).map(str::to_owned) {
                    Some(topic) => s.authorized(realm, me, AddTestament { request, topic, args, kwargs }),
                    None => s.reply(me, Err((code::CALL, request, WampError::InvalidArgument(format!("{}: the first argument must be a topic", p.uri))))),
                };
            }
            let r = p.call(realm, me, &mut s.testaments, request, &self.payload);
            return s.reply(me, r.map(Some).map_err(|e| (code::CALL, request, e)));
        }
        let ppt = match passthru(&self.options, me.features.caller_ppt, "CALL") {
            Ok(ppt) => ppt,
            Err(Passthru::Unannounced(m)) => return s.violation(m),
            Err(Passthru::Invalid(e)) => return s.reply(me, Err((code::CALL, request, e))),
        };
        let called = (|| {
            let d = d?;
            let timeout = dealer::call_timeout(&self.options, realm.limits.max_call_timeout)?;
            let call = CallRequest { request, procedure: self.procedure, options: self.options, payload: self.payload, disclose: d.disclose, timeout, ppt };
            realm.dealer.call(me, call)
        })();
        s.reply(me, called.map(|()| None).map_err(|e| (code::CALL, request, e)))
    }
}

/// `wamp.session.add_testament`, once the CALL was allowed: allowed if the session may
/// publish to the testament's topic.
struct AddTestament {
    request: u64,
    topic: String,
    /// The CALL's Arguments and ArgumentsKw, decoded once to find the topic.
    args: Vec<Value>,
    kwargs: Dict,
}

impl Asking for AddTestament {
    const ACTION: Action = Action::Publish;
    fn uri(&self) -> &str {
        &self.topic
    }
    fn validate(&self, s: &Session) -> Result<(), WampError> {
        s.check_own_uri(&self.topic, MatchPolicy::Exact)
    }
    fn finish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Result<Decision, WampError>) -> Flow {
        let r = d.and_then(|_| {
            let p = meta::procedure(meta::ADD_TESTAMENT).expect("the router serves add_testament");
            p.answer(realm, me, &mut s.testaments, self.request, (self.args, self.kwargs))
        });
        s.reply(me, r.map(Some).map_err(|e| (code::CALL, self.request, e)))
    }
}

struct Register {
    request: u64,
    procedure: String,
    policy: MatchPolicy,
    invoke: Invoke,
}

impl Asking for Register {
    const ACTION: Action = Action::Register;
    fn uri(&self) -> &str {
        &self.procedure
    }
    fn policy(&self) -> MatchPolicy {
        self.policy
    }
    fn validate(&self, s: &Session) -> Result<(), WampError> {
        s.check_own_uri(&self.procedure, self.policy)
    }
    fn finish(self, s: &mut Session, realm: &Realm, me: &Arc<SessionHandle>, d: Result<Decision, WampError>) -> Flow {
        let request = self.request;
        let registered = (|| {
            let d = d?;
            let max = s.router.limits.max_registrations_per_session;
            if s.holdings.registrations() >= max {
                return Err(WampError::LimitReached(format!("a session may hold at most {max} registrations")));
            }
            let req = Request { action: Action::Register, uri: &self.procedure, policy: self.policy };
            let (guard, grounds) = Session::revocable(me, d, req);
            let r = RegisterRequest { callee: me, uri: &self.procedure, policy: self.policy, invoke: self.invoke, guard };
            let attached = realm.dealer.register(r, &realm.ids, |registration| s.push(&Message::Registered { request, registration }))?;
            Ok((attached, grounds))
        })();
        match registered {
            Ok((attached, grounds)) => {
                s.holdings.add(Holding::Registration(attached.registration.0), grounds);
                events::registered(&realm.broker, s.id, &attached);
                Flow::Continue
            }
            Err(e) => s.reply(me, Err((code::REGISTER, request, e))),
        }
    }
}

fn match_policy(options: &Dict) -> Result<MatchPolicy, WampError> {
    MatchPolicy::from_options(options).map_err(WampError::InvalidArgument)
}

/// A session over its rate reads nothing more from its peer for `wait` (see
/// `router::quota`): the peer's further messages wait in its socket.
fn pause(wait: Duration) -> Flow {
    Flow::Wait(Box::pin(async move {
        tokio::time::sleep(wait).await;
        let rest: Resume = Box::new(|_: &mut Session| Flow::Continue);
        rest
    }))
}

/// Why a message's payload passthru attributes are refused.
enum Passthru {
    /// The peer did not announce `payload_passthru_mode` for its role: a protocol
    /// violation (spec).
    Unannounced(String),
    Invalid(WampError),
}

/// The `ppt_*` attributes of a PUBLISH, CALL or YIELD (`None`: no passthru).
fn passthru(options: &Dict, announced: bool, message: &str) -> Result<Option<Dict>, Passthru> {
    match crate::wamp::ppt::attributes(options) {
        Ok(Some(_)) if !announced => Err(Passthru::Unannounced(format!(
            "{message} uses payload passthru mode (ppt_scheme) but the session did not announce payload_passthru_mode"
        ))),
        Ok(ppt) => Ok(ppt),
        Err(e) => Err(Passthru::Invalid(WampError::InvalidArgument(format!("{message}.Options.{e}")))),
    }
}

/// REGISTER.Options `match` and `invoke`.
fn register_options(options: &Dict) -> Result<(MatchPolicy, Invoke), WampError> {
    let invoke = match options.get("invoke") {
        None => Invoke::Single,
        Some(Value::Str(s)) => Invoke::parse(s).ok_or_else(|| WampError::InvalidArgument(format!("unknown invocation policy '{s}'")))?,
        Some(_) => return Err(WampError::InvalidArgument("invoke must be a string".into())),
    };
    Ok((match_policy(options)?, invoke))
}
