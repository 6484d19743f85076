//! The dealer: registrations and the routing of calls, results and errors.
//!
//! A registration is a procedure URI with a match policy (exact, prefix, wildcard) and
//! an invocation policy; several callees may share it (`registration.rs`). A CALL goes
//! to the best matching registration in the spec's order (`router::patterns`) and to
//! one of its callees. Calls in flight live in `calls.rs`; either side leaving resolves
//! its calls at once, and a call with a timeout is ended by the router when its
//! deadline passes (`expire`, driven by the realm's timer task).
//!
//! REGISTERED is queued under the procedures lock that a CALL must take to find the
//! registration, and an INVOCATION is queued under the same lock, which UNREGISTER must
//! take for writing: so no INVOCATION overtakes REGISTERED or follows UNREGISTERED.

mod calls;
mod registration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use super::error::WampError;
use super::handle::{SendError, SessionHandle};
use super::metrics::Metrics;
use super::patterns::Patterns;
use crate::auth::Guard;
use crate::wamp::ids::{IdSequence, RegistrationId, SessionId};
use crate::wamp::message::code;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{dict, Args, Dict, Message, Value};
use calls::{Calls, PendingCall};
pub use registration::Invoke;
use registration::{Callee, NoCallee, Registration};

#[derive(Debug, Default)]
struct Procedures {
    patterns: Patterns<RegistrationId>,
    by_id: HashMap<RegistrationId, Registration>,
}

impl Procedures {
    fn detach(&mut self, session: SessionId, id: RegistrationId) -> Option<Detached> {
        let reg = self.by_id.get_mut(&id)?;
        if !reg.remove(session) {
            return None;
        }
        let deleted = reg.is_empty();
        if deleted {
            let (uri, policy) = (reg.uri.clone(), reg.policy);
            self.patterns.remove(&uri, policy);
            self.by_id.remove(&id);
        }
        Some(Detached { registration: id, deleted })
    }
}

/// How a CANCEL is carried out (spec: call canceling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelMode {
    Skip,
    Kill,
    KillNoWait,
}

/// What a REGISTER asks for.
pub struct RegisterRequest<'a> {
    pub callee: &'a Arc<SessionHandle>,
    pub uri: &'a str,
    pub policy: MatchPolicy,
    pub invoke: Invoke,
    pub guard: Option<Arc<dyn Guard>>,
}

/// A callee attached to a registration; `created` when the REGISTER created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attached {
    pub registration: RegistrationId,
    pub created: Option<RegistrationInfo>,
}

/// A callee detached from a registration; `deleted` when it was the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detached {
    pub registration: RegistrationId,
    pub deleted: bool,
}

/// A registration as the meta API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationInfo {
    pub id: RegistrationId,
    pub uri: String,
    pub policy: MatchPolicy,
    pub invoke: Invoke,
    pub created: SystemTime,
    pub callees: Vec<SessionId>,
}

impl RegistrationInfo {
    fn of(r: &Registration) -> RegistrationInfo {
        RegistrationInfo {
            id: r.id,
            uri: r.uri.clone(),
            policy: r.policy,
            invoke: r.invoke,
            created: r.created,
            callees: r.callees().map(|c| c.session.id).collect(),
        }
    }
}

/// What a CALL needs besides the caller.
pub struct CallRequest {
    pub request: u64,
    pub procedure: String,
    pub options: Dict,
    pub payload: Args,
    pub disclose: bool,
    /// The router ends the call with `wamp.error.timeout` after this long.
    pub timeout: Option<Duration>,
    /// The `ppt_*` attributes of a payload passthru call, for INVOCATION.Details.
    pub ppt: Option<Dict>,
}

#[derive(Debug)]
pub struct Dealer {
    procedures: RwLock<Procedures>,
    calls: Mutex<Calls>,
    /// Woken when a call's deadline is earlier than every other one.
    timer: Arc<Notify>,
    /// Calls one session may have in flight as a caller.
    max_calls: usize,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // No critical section leaves the maps inconsistent, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dealer {
    pub fn new(metrics: Arc<Metrics>, max_calls: usize) -> Dealer {
        Dealer { procedures: RwLock::default(), calls: Mutex::default(), timer: Arc::new(Notify::new()), max_calls, metrics }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Procedures> {
        self.procedures.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Procedures> {
        self.procedures.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Attaches the callee to the registration for (uri, policy), creating it if
    /// needed, and calls `announce` with its id (to queue REGISTERED) before any call
    /// can reach it. A registration is shared only when every REGISTER asks for the
    /// same invocation policy, other than `single`.
    pub fn register(&self, r: RegisterRequest<'_>, ids: &IdSequence, announce: impl FnOnce(u64)) -> Result<Attached, WampError> {
        let mut procs = self.write();
        let callee = Callee { session: r.callee.clone(), guard: r.guard };
        if let Some(&id) = procs.patterns.get(r.uri, r.policy) {
            let reg = procs.by_id.get_mut(&id).expect("the index and the registrations agree");
            if reg.invoke == Invoke::Single || r.invoke == Invoke::Single || reg.has(r.callee.id) {
                return Err(WampError::ProcedureAlreadyExists(r.uri.to_owned()));
            }
            if reg.invoke != r.invoke {
                return Err(WampError::InvocationPolicyConflict { uri: r.uri.to_owned(), held: reg.invoke.as_str(), asked: r.invoke.as_str() });
            }
            reg.add(callee);
            announce(id.0);
            return Ok(Attached { registration: id, created: None });
        }
        let id = RegistrationId(ids.next());
        let reg = Registration::new(id, r.uri, r.policy, r.invoke, callee);
        let info = RegistrationInfo::of(&reg);
        procs.patterns.insert(r.uri, r.policy, id);
        procs.by_id.insert(id, reg);
        announce(id.0);
        Ok(Attached { registration: id, created: Some(info) })
    }

    /// Ends registration `id` of `callee` because its permission was withdrawn: calls
    /// in flight to it fail with `wamp.error.canceled` and the callee, if it can be
    /// interrupted, is told to stop. None if the callee holds no such registration.
    pub fn revoke(&self, callee: SessionId, id: u64) -> Option<Detached> {
        let detached = self.unregister(callee, id).ok()?;
        let cut = lock(&self.calls).take_where(|c| c.callee.id == callee && c.registration.0 == id);
        let err = WampError::Canceled("the callee's permission for this procedure was withdrawn".into());
        for (invocation, call) in cut {
            interrupt(&call, invocation);
            let _ = call.caller.send(&error_message(code::CALL, call.caller_request, &err, &call.caller));
        }
        Some(detached)
    }

    /// Detaches `callee` from registration `id`. Its calls in flight go on: the callee
    /// may still answer them.
    pub fn unregister(&self, callee: SessionId, id: u64) -> Result<Detached, WampError> {
        self.write().detach(callee, RegistrationId(id)).ok_or(WampError::NoSuchRegistration(id))
    }

    /// Routes a CALL to a callee as an INVOCATION.
    pub fn call(&self, caller: &Arc<SessionHandle>, req: CallRequest) -> Result<(), WampError> {
        // The INVOCATION is queued under the procedures lock that UNREGISTER must take,
        // so none can follow the callee's UNREGISTERED (a registration found here
        // cannot be removed until its invocation is on the callee's outbox).
        let procs = self.read();
        let reg = procs
            .patterns
            .best(&req.procedure)
            .and_then(|(id, _)| procs.by_id.get(id))
            .ok_or_else(|| WampError::NoSuchProcedure(req.procedure.clone()))?;
        let callee = match reg.pick() {
            Ok(c) => c.session.clone(),
            // Withdrawn: the registration is on its way out.
            Err(NoCallee::Withdrawn) => return Err(WampError::NoSuchProcedure(req.procedure)),
            Err(NoCallee::Unconfirmed) => {
                return Err(WampError::Unavailable("the callee's permission cannot be confirmed right now".into()))
            }
        };
        if req.ppt.is_some() && !callee.features.callee_ppt {
            return Err(WampError::FeatureNotSupported("the callee does not support payload passthru mode".into()));
        }
        let wants_progress = req.options.get("receive_progress").and_then(Value::as_bool).unwrap_or(false);
        let receive_progress = wants_progress && callee.features.callee_progressive_call_results;
        let mut details = req.ppt.unwrap_or_default();
        if reg.policy != MatchPolicy::Exact {
            details.insert("procedure".into(), req.procedure.as_str().into());
        }
        if req.disclose || req.options.get("disclose_me").and_then(Value::as_bool).unwrap_or(false) {
            details.insert("caller".into(), Value::UInt(caller.id.0));
            details.insert("caller_authid".into(), caller.authid.as_str().into());
            details.insert("caller_authrole".into(), caller.authrole.as_str().into());
        }
        if receive_progress {
            details.insert("receive_progress".into(), Value::Bool(true));
        }
        let request = callee.requests.next();
        let invocation = Message::Invocation { request, registration: reg.id.0, details, payload: req.payload };
        // Registered before sending so that a fast YIELD always finds its call.
        {
            let mut calls = lock(&self.calls);
            if caller.calls_in_flight.load(std::sync::atomic::Ordering::Relaxed) >= self.max_calls {
                self.metrics.calls_refused.inc();
                return Err(WampError::LimitReached(format!(
                    "a session may have at most {} calls in flight",
                    self.max_calls
                )));
            }
            let call = PendingCall {
                registration: reg.id,
                caller: caller.clone(),
                caller_request: req.request,
                callee: callee.clone(),
                receive_progress,
                deadline: req.timeout.map(|t| Instant::now() + t),
            };
            if calls.insert((callee.id, request), call) {
                self.timer.notify_one();
            }
        }
        if let Err(e) = callee.send(&invocation) {
            lock(&self.calls).remove((callee.id, request));
            return Err(undeliverable(e, "call", "callee").unwrap_or_else(|| WampError::Canceled("the callee left".into())));
        }
        self.metrics.calls.inc();
        Ok(())
    }

    /// Ends the calls whose timeout has passed: the caller gets `wamp.error.timeout`,
    /// the callee (if it can be interrupted) an INTERRUPT. Returns the next deadline.
    pub fn expire(&self, now: Instant) -> Option<Instant> {
        let (expired, next) = lock(&self.calls).take_expired(now);
        for (invocation, call) in expired {
            self.metrics.calls_timed_out.inc();
            interrupt(&call, invocation);
            let err = WampError::Timeout("the call was not answered within its timeout".into());
            let _ = call.caller.send(&error_message(code::CALL, call.caller_request, &err, &call.caller));
        }
        next
    }

    /// What the realm's timer task waits on (`Realm::expire_calls`).
    pub fn timer(&self) -> Arc<Notify> {
        self.timer.clone()
    }

    /// A YIELD from a callee: forwarded to the caller as RESULT (progressive or final).
    /// A YIELD for an unknown request (the call was cancelled) is ignored, as the spec asks.
    /// `ppt`: the `ppt_*` attributes of a payload passthru result, for RESULT.Details;
    /// a caller that did not announce passthru gets `wamp.error.feature_not_supported`
    /// instead, which ends the call.
    pub fn yield_result(&self, callee: SessionId, request: u64, options: &Dict, payload: Args, ppt: Option<Dict>) {
        let progress = options.get("progress").and_then(Value::as_bool).unwrap_or(false);
        let mut calls = lock(&self.calls);
        let key = (callee, request);
        let (caller, caller_request, details) = if progress {
            match calls.get(key) {
                Some(c) if c.receive_progress => (c.caller.clone(), c.caller_request, dict([("progress", Value::Bool(true))])),
                _ => return,
            }
        } else {
            match calls.remove(key) {
                Some(c) => (c.caller, c.caller_request, Dict::new()),
                None => return,
            }
        };
        drop(calls);
        let mut details = details;
        if let Some(ppt) = ppt {
            if !caller.features.caller_ppt {
                let _ = lock(&self.calls).remove(key);
                let err = WampError::FeatureNotSupported("the caller does not support payload passthru mode".into());
                let _ = caller.send(&error_message(code::CALL, caller_request, &err, &caller));
                return;
            }
            details.extend(ppt);
        }
        let result = Message::Result { request: caller_request, details, payload };
        if let Err(e) = caller.send(&result) {
            self.result_undeliverable(&caller, caller_request, e);
        }
    }

    /// An ERROR for an INVOCATION: passed to the caller unchanged (URI, args, kwargs).
    pub fn callee_error(&self, callee: SessionId, request: u64, details: Dict, error: String, payload: Args) {
        let Some(call) = lock(&self.calls).remove((callee, request)) else { return };
        let msg = Message::Error { request_type: code::CALL, request: call.caller_request, details, error, payload };
        if let Err(e) = call.caller.send(&msg) {
            self.result_undeliverable(&call.caller, call.caller_request, e);
        }
    }

    /// Ends a call because of something wrong in the callee's answer (an invalid error
    /// URI, an invalid payload): the caller gets `err` instead. A callee that announced
    /// call canceling is told to stop working on it.
    pub fn fail_invocation(&self, callee: SessionId, request: u64, err: &WampError) {
        let Some(call) = lock(&self.calls).remove((callee, request)) else { return };
        tracing::info!(session = %callee, error = %err, "callee answer refused");
        interrupt(&call, request);
        let _ = call.caller.send(&error_message(code::CALL, call.caller_request, err, &call.caller));
    }

    /// A result too large or not encodable for the caller still ends the call: the caller
    /// gets an error saying why instead.
    fn result_undeliverable(&self, caller: &SessionHandle, caller_request: u64, e: SendError) {
        let Some(err) = undeliverable(e, "result", "caller") else { return };
        let _ = caller.send(&error_message(code::CALL, caller_request, &err, caller));
    }

    /// A CANCEL from a caller.
    pub fn cancel(&self, caller: SessionId, request: u64, options: &Dict) -> Result<(), WampError> {
        let mode = match options.get("mode").and_then(Value::as_str) {
            None | Some("killnowait") => CancelMode::KillNoWait,
            Some("kill") => CancelMode::Kill,
            Some("skip") => CancelMode::Skip,
            Some(other) => return Err(WampError::InvalidArgument(format!("unknown cancel mode '{other}'"))),
        };
        let mut calls = lock(&self.calls);
        let Some(key) = calls.of_caller((caller, request)) else { return Ok(()) };
        let Some(call) = calls.get(key) else { return Ok(()) };
        let callee = call.callee.clone();
        let can_interrupt = callee.features.callee_call_canceling;
        if mode == CancelMode::Kill && can_interrupt {
            // The callee answers the INTERRUPT with an ERROR, which ends the call.
            drop(calls);
            let _ = callee.send(&Message::Interrupt { request: key.1, options: dict([("mode", "kill".into())]) });
            return Ok(());
        }
        let Some(call) = calls.remove(key) else { return Ok(()) };
        drop(calls);
        if mode == CancelMode::KillNoWait && can_interrupt {
            let _ = callee.send(&Message::Interrupt { request: key.1, options: dict([("mode", "killnowait".into())]) });
        }
        let err = WampError::Canceled("the call was canceled by the caller".into());
        let _ = call.caller.send(&error_message(code::CALL, call.caller_request, &err, &call.caller));
        Ok(())
    }

    /// Removes a leaving session's registrations (the ids it holds) and resolves every
    /// call it is part of.
    pub fn session_closed(&self, session: SessionId, registrations: impl IntoIterator<Item = u64>) -> Vec<Detached> {
        let detached: Vec<Detached> = {
            let mut procs = self.write();
            registrations.into_iter().filter_map(|id| procs.detach(session, RegistrationId(id))).collect()
        };
        let orphaned = lock(&self.calls).take_where(|c| c.callee.id == session || c.caller.id == session);
        for (invocation, call) in orphaned {
            if call.callee.id == session {
                let err = WampError::Canceled("the callee left before answering".into());
                let _ = call.caller.send(&error_message(code::CALL, call.caller_request, &err, &call.caller));
            } else {
                interrupt(&call, invocation);
            }
        }
        detached
    }

    /// A registration, for the meta API.
    pub fn registration(&self, id: RegistrationId) -> Option<RegistrationInfo> {
        self.read().by_id.get(&id).map(RegistrationInfo::of)
    }

    /// The ids of every registration, by match policy (exact, prefix, wildcard).
    pub fn registration_ids(&self) -> [Vec<u64>; 3] {
        super::patterns::ids_by_policy(self.read().by_id.values().map(|r| (r.policy, r.id.0)))
    }

    /// The registration of exactly (uri, policy), if any.
    pub fn lookup(&self, uri: &str, policy: MatchPolicy) -> Option<RegistrationId> {
        self.read().patterns.get(uri, policy).copied()
    }

    /// The registration a call to `uri` would go to.
    pub fn best_match(&self, uri: &str) -> Option<RegistrationId> {
        self.read().patterns.best(uri).map(|(id, _)| *id)
    }
}

/// Tells a callee that supports call canceling to stop working on an invocation the
/// router ended (`killnowait`: its answer, if any, is ignored).
fn interrupt(call: &PendingCall, invocation: u64) {
    if call.callee.features.callee_call_canceling {
        let _ = call.callee.send(&Message::Interrupt { request: invocation, options: dict([("mode", "killnowait".into())]) });
    }
}

/// What the other party of a call is told when `what` (the call, the result) could not
/// be queued for `whose` side; None when that side is gone.
fn undeliverable(e: SendError, what: &str, whose: &str) -> Option<WampError> {
    Some(match e {
        SendError::Gone => return None,
        SendError::TooLarge(n) => {
            WampError::PayloadSizeExceeded(format!("the {what} of {n} bytes exceeds the {whose}'s maximum message size"))
        }
        SendError::Encode(m) => WampError::InvalidArgument(m),
        e @ SendError::Budget(_) => WampError::LimitReached(e.to_string()),
    })
}

/// How long the router lets a call run: `CALL.Options.timeout` in ms (0 or absent:
/// no timeout), never beyond the realm's maximum when it sets one.
pub fn call_timeout(options: &Dict, max: Option<Duration>) -> Result<Option<Duration>, WampError> {
    let asked = match options.get("timeout") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
            None => return Err(WampError::InvalidArgument("timeout must be a non-negative integer (milliseconds)".into())),
        },
    };
    Ok(match (asked, max) {
        (Some(a), Some(m)) => Some(a.min(m)),
        (a, m) => a.or(m),
    })
}

/// An ERROR reply carrying a router error.
pub fn error_message(request_type: u64, request: u64, err: &WampError, to: &SessionHandle) -> Message {
    Message::Error {
        request_type,
        request,
        details: Dict::new(),
        error: err.uri().to_owned(),
        payload: err.args(to.serializer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::handle::testing::{drain, handle};
    use crate::wamp::Serializer;

    fn request(n: u64, procedure: &str) -> CallRequest {
        CallRequest { request: n, procedure: procedure.into(), options: Dict::new(), payload: Args::default(), disclose: false, timeout: None, ppt: None }
    }

    fn register(d: &Dealer, ids: &IdSequence, callee: &Arc<SessionHandle>, uri: &str, policy: MatchPolicy, invoke: Invoke) -> Result<Attached, WampError> {
        d.register(RegisterRequest { callee, uri, policy, invoke, guard: None }, ids, |_| {})
    }

    fn dealer() -> Dealer {
        Dealer::new(Arc::new(Metrics::new()), 10)
    }

    /// The worst moment for a concurrent call: after the registration exists and before
    /// REGISTERED is queued. The call must find no procedure, not overtake REGISTERED.
    #[tokio::test]
    async fn no_invocation_overtakes_registered() {
        let dealer = Arc::new(dealer());
        let ids = IdSequence::new();
        let (caller, callee) = (handle(1), handle(2));
        let (tx, rx) = std::sync::mpsc::channel();
        let req = RegisterRequest { callee: &callee, uri: "p", policy: MatchPolicy::Exact, invoke: Invoke::Single, guard: None };
        let id = dealer
            .register(req, &ids, |id| {
                // A caller on another thread tries while the registration is being announced.
                let (dealer, caller, tx) = (dealer.clone(), caller.clone(), tx.clone());
                std::thread::spawn(move || tx.send(dealer.call(&caller, request(1, "p"))).unwrap());
                std::thread::sleep(std::time::Duration::from_millis(20));
                callee.outbox.push(Message::Registered { request: 9, registration: id }.encode(Serializer::Json).unwrap()).unwrap();
            })
            .unwrap()
            .registration
            .0;
        // The concurrent call waited for the lock and was routed after REGISTERED.
        assert_eq!(rx.recv().unwrap(), Ok(()));
        let got = drain(&callee).await;
        assert_eq!(got[0], Message::Registered { request: 9, registration: id });
        assert!(matches!(got[1], Message::Invocation { registration, .. } if registration == id), "{got:?}");
    }

    #[test]
    fn sharing_needs_the_same_policy_and_not_single() {
        let (d, ids) = (dealer(), IdSequence::new());
        let (a, b, c) = (handle(1), handle(2), handle(3));
        let first = register(&d, &ids, &a, "p", MatchPolicy::Exact, Invoke::RoundRobin).unwrap();
        assert_eq!(first.created.as_ref().map(|i| (i.invoke, i.callees.clone())), Some((Invoke::RoundRobin, vec![SessionId(1)])));
        let second = register(&d, &ids, &b, "p", MatchPolicy::Exact, Invoke::RoundRobin).unwrap();
        assert_eq!(second, Attached { registration: first.registration, created: None });
        let conflict = register(&d, &ids, &c, "p", MatchPolicy::Exact, Invoke::Random).unwrap_err();
        assert_eq!(conflict.uri(), "wamp.error.procedure_exists_with_different_invocation_policy");
        assert_eq!(register(&d, &ids, &c, "p", MatchPolicy::Exact, Invoke::Single).unwrap_err().uri(), "wamp.error.procedure_already_exists");
        assert_eq!(register(&d, &ids, &b, "p", MatchPolicy::Exact, Invoke::RoundRobin).unwrap_err().uri(), "wamp.error.procedure_already_exists");
        // The same URI under another match policy is another registration.
        assert!(register(&d, &ids, &c, "p", MatchPolicy::Prefix, Invoke::Single).unwrap().created.is_some());
        assert_eq!(d.registration(first.registration).unwrap().callees, vec![SessionId(1), SessionId(2)]);
        assert_eq!(d.unregister(SessionId(1), first.registration.0), Ok(Detached { registration: first.registration, deleted: false }));
        assert_eq!(d.unregister(SessionId(2), first.registration.0), Ok(Detached { registration: first.registration, deleted: true }));
        assert_eq!(d.registration_ids(), [vec![], vec![first.registration.0 + 1], vec![]]);
    }

    #[tokio::test]
    async fn a_pattern_registration_is_told_the_called_uri() {
        let (d, ids) = (dealer(), IdSequence::new());
        let (caller, callee) = (handle(1), handle(2));
        let id = register(&d, &ids, &callee, "com.app..get", MatchPolicy::Wildcard, Invoke::Single).unwrap().registration;
        d.call(&caller, request(7, "com.app.users.get")).unwrap();
        assert_eq!(d.best_match("com.app.users.get"), Some(id));
        assert_eq!(d.lookup("com.app..get", MatchPolicy::Wildcard), Some(id));
        let got = drain(&callee).await;
        assert_eq!(
            got,
            vec![Message::Invocation { request: 1, registration: id.0, details: dict([("procedure", "com.app.users.get".into())]), payload: Args::default() }]
        );
    }

    #[tokio::test]
    async fn an_expired_call_is_ended_for_both_sides() {
        let (d, ids) = (dealer(), IdSequence::new());
        let (caller, callee) = (handle(1), handle(2));
        register(&d, &ids, &callee, "slow", MatchPolicy::Exact, Invoke::Single).unwrap();
        let t0 = Instant::now();
        d.call(&caller, CallRequest { timeout: Some(Duration::from_millis(50)), ..request(7, "slow") }).unwrap();
        d.call(&caller, request(8, "slow")).unwrap();
        let deadline = d.expire(t0).expect("one call has a deadline");
        assert!(deadline >= t0 + Duration::from_millis(50) && deadline <= Instant::now() + Duration::from_millis(50));
        assert!(drain(&caller).await.is_empty(), "nothing expires before its deadline");
        assert_eq!(d.expire(t0 + Duration::from_millis(60)), None);
        let got = drain(&caller).await;
        assert!(matches!(&got[..], [Message::Error { request: 7, error, .. }] if error == "wamp.error.timeout"), "{got:?}");
        // The callee did not announce call canceling: it gets no INTERRUPT (mode skip),
        // and its late answer is ignored.
        assert_eq!(drain(&callee).await.len(), 2);
        d.yield_result(SessionId(2), 1, &Dict::new(), Args::default(), None);
        assert!(drain(&caller).await.is_empty());
        assert_eq!(lock(&d.calls).len(), 1, "the call without a timeout is still in flight");
    }
}
