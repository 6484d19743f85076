//! The dealer: registrations and the routing of calls, results and errors.
//!
//! Every call in flight is a `PendingCall` keyed by (callee session, INVOCATION request
//! id), with a second key (caller session, CALL request id) for cancellation. Either
//! side leaving resolves its calls at once: a caller never waits for a callee that is
//! gone, and a callee that supports cancellation is told when its caller left.
//!
//! REGISTERED is queued under the procedures lock that a CALL must take to find the
//! registration, so no INVOCATION can overtake the reply that names its registration.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::error::WampError;
use super::handle::{SendError, SessionHandle};
use super::metrics::Metrics;
use crate::auth::{Admit, Guard};
use crate::wamp::ids::{IdSequence, SessionId};
use crate::wamp::message::code;
use crate::wamp::{dict, Args, Dict, Message, Value};

#[derive(Debug)]
pub struct Registration {
    pub id: u64,
    pub uri: String,
    pub callee: Arc<SessionHandle>,
    pub created: SystemTime,
    /// Asked before each call when the callee's permission can change.
    guard: Option<Arc<dyn Guard>>,
}

#[derive(Debug)]
struct PendingCall {
    registration: u64,
    caller: Arc<SessionHandle>,
    caller_request: u64,
    callee: Arc<SessionHandle>,
    receive_progress: bool,
}

#[derive(Debug, Default)]
struct Procedures {
    by_uri: HashMap<String, Arc<Registration>>,
    by_id: HashMap<u64, Arc<Registration>>,
}

#[derive(Debug, Default)]
struct Calls {
    by_invocation: HashMap<(SessionId, u64), PendingCall>,
    by_call: HashMap<(SessionId, u64), (SessionId, u64)>,
}

impl Calls {
    /// Also counts the call in its caller's `calls_in_flight` (changed only here, under
    /// the dealer's lock), for `max_calls_per_session`.
    fn insert(&mut self, key: (SessionId, u64), call: PendingCall) {
        self.by_call.insert((call.caller.id, call.caller_request), key);
        call.caller.calls_in_flight.fetch_add(1, Ordering::Relaxed);
        self.by_invocation.insert(key, call);
    }

    /// Removes every call `pick` chooses: (INVOCATION request id, call).
    fn take_where(&mut self, pick: impl Fn(&PendingCall) -> bool) -> Vec<(u64, PendingCall)> {
        let keys: Vec<(SessionId, u64)> = self.by_invocation.iter().filter(|(_, c)| pick(c)).map(|(k, _)| *k).collect();
        keys.into_iter().filter_map(|k| self.remove(k).map(|c| (k.1, c))).collect()
    }

    fn remove(&mut self, key: (SessionId, u64)) -> Option<PendingCall> {
        let call = self.by_invocation.remove(&key)?;
        self.by_call.remove(&(call.caller.id, call.caller_request));
        call.caller.calls_in_flight.fetch_sub(1, Ordering::Relaxed);
        Some(call)
    }
}

/// How a CANCEL is carried out (spec: call canceling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelMode {
    Skip,
    Kill,
    KillNoWait,
}

/// What a CALL needs besides the caller.
pub struct CallRequest {
    pub request: u64,
    pub procedure: String,
    pub options: Dict,
    pub payload: Args,
    pub disclose: bool,
}

#[derive(Debug)]
pub struct Dealer {
    procedures: RwLock<Procedures>,
    calls: Mutex<Calls>,
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
        Dealer { procedures: RwLock::default(), calls: Mutex::default(), max_calls, metrics }
    }

    /// Registers `uri` for `callee` and calls `announce` with the id (to queue
    /// REGISTERED) before any call can reach it.
    pub fn register(
        &self,
        callee: &Arc<SessionHandle>,
        uri: &str,
        ids: &IdSequence,
        guard: Option<Arc<dyn Guard>>,
        announce: impl FnOnce(u64),
    ) -> Result<u64, WampError> {
        let mut procs = self.procedures.write().unwrap_or_else(|p| p.into_inner());
        if procs.by_uri.contains_key(uri) {
            return Err(WampError::ProcedureAlreadyExists(uri.to_owned()));
        }
        let reg = Arc::new(Registration {
            id: ids.next(),
            uri: uri.to_owned(),
            callee: callee.clone(),
            created: SystemTime::now(),
            guard,
        });
        procs.by_uri.insert(uri.to_owned(), reg.clone());
        procs.by_id.insert(reg.id, reg.clone());
        announce(reg.id);
        Ok(reg.id)
    }

    /// Ends registration `id` of `callee` because its permission was withdrawn: calls
    /// in flight to it fail with `wamp.error.canceled` and the callee, if it can be
    /// interrupted, is told to stop. False if the callee holds no such registration.
    pub fn revoke(&self, callee: SessionId, id: u64) -> bool {
        if self.unregister(callee, id).is_err() {
            return false;
        }
        let cut = lock(&self.calls).take_where(|c| c.callee.id == callee && c.registration == id);
        let err = WampError::Canceled("the callee's permission for this procedure was withdrawn".into());
        for (invocation, call) in cut {
            if call.callee.features.callee_call_canceling {
                let _ = call.callee.send(&Message::Interrupt { request: invocation, options: dict([("mode", "killnowait".into())]) });
            }
            let _ = call.caller.send(&error_message(code::CALL, call.caller_request, &err, &call.caller));
        }
        true
    }

    pub fn unregister(&self, callee: SessionId, id: u64) -> Result<(), WampError> {
        let mut procs = self.procedures.write().unwrap_or_else(|p| p.into_inner());
        match procs.by_id.get(&id) {
            Some(r) if r.callee.id == callee => {
                let uri = r.uri.clone();
                procs.by_id.remove(&id);
                procs.by_uri.remove(&uri);
                Ok(())
            }
            _ => Err(WampError::NoSuchRegistration(id)),
        }
    }

    pub fn registration_count(&self) -> usize {
        self.procedures.read().unwrap_or_else(|p| p.into_inner()).by_id.len()
    }

    /// Routes a CALL to its callee as an INVOCATION.
    pub fn call(&self, caller: &Arc<SessionHandle>, req: CallRequest) -> Result<(), WampError> {
        // The INVOCATION is queued under the procedures lock that UNREGISTER must take,
        // so none can follow the callee's UNREGISTERED (a registration found here
        // cannot be removed until its invocation is on the callee's outbox).
        let procs = self.procedures.read().unwrap_or_else(|p| p.into_inner());
        let reg = procs.by_uri.get(&req.procedure).ok_or_else(|| WampError::NoSuchProcedure(req.procedure.clone()))?;
        match reg.guard.as_ref().map_or(Admit::Yes, |g| g.admits(&reg.uri)) {
            Admit::Yes => {}
            // Withdrawn: the registration is on its way out.
            Admit::No => return Err(WampError::NoSuchProcedure(req.procedure)),
            Admit::Hold => {
                return Err(WampError::Unavailable("the callee's permission cannot be confirmed right now".into()))
            }
        }
        let callee = reg.callee.clone();
        let wants_progress = req.options.get("receive_progress").and_then(Value::as_bool).unwrap_or(false);
        let receive_progress = wants_progress && callee.features.callee_progressive_call_results;
        let mut details = Dict::new();
        if req.disclose || req.options.get("disclose_me").and_then(Value::as_bool).unwrap_or(false) {
            details.insert("caller".into(), Value::UInt(caller.id.0));
            details.insert("caller_authid".into(), caller.authid.as_str().into());
            details.insert("caller_authrole".into(), caller.authrole.as_str().into());
        }
        if receive_progress {
            details.insert("receive_progress".into(), Value::Bool(true));
        }
        let request = callee.requests.next();
        let invocation = Message::Invocation { request, registration: reg.id, details, payload: req.payload };
        // Registered before sending so that a fast YIELD always finds its call.
        {
            let mut calls = lock(&self.calls);
            if caller.calls_in_flight.load(Ordering::Relaxed) >= self.max_calls {
                self.metrics.calls_refused.inc();
                return Err(WampError::LimitReached(format!(
                    "a session may have at most {} calls in flight",
                    self.max_calls
                )));
            }
            calls.insert(
                (callee.id, request),
                PendingCall {
                    registration: reg.id,
                    caller: caller.clone(),
                    caller_request: req.request,
                    callee: callee.clone(),
                    receive_progress,
                },
            );
        }
        if let Err(e) = callee.send(&invocation) {
            lock(&self.calls).remove((callee.id, request));
            return Err(undeliverable(e, "call", "callee").unwrap_or_else(|| WampError::Canceled("the callee left".into())));
        }
        self.metrics.calls.inc();
        Ok(())
    }

    /// A YIELD from a callee: forwarded to the caller as RESULT (progressive or final).
    /// A YIELD for an unknown request (the call was cancelled) is ignored, as the spec asks.
    pub fn yield_result(&self, callee: SessionId, request: u64, options: &Dict, payload: Args) {
        let progress = options.get("progress").and_then(Value::as_bool).unwrap_or(false);
        let mut calls = lock(&self.calls);
        let key = (callee, request);
        let (caller, caller_request, details) = if progress {
            match calls.by_invocation.get(&key) {
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
        if call.callee.features.callee_call_canceling {
            let _ = call.callee.send(&Message::Interrupt { request, options: dict([("mode", "killnowait".into())]) });
        }
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
        let Some(&key) = calls.by_call.get(&(caller, request)) else { return Ok(()) };
        let Some(call) = calls.by_invocation.get(&key) else { return Ok(()) };
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
    pub fn session_closed(&self, session: SessionId, registrations: impl IntoIterator<Item = u64>) {
        {
            let mut procs = self.procedures.write().unwrap_or_else(|p| p.into_inner());
            for id in registrations {
                if let Some(r) = procs.by_id.get(&id).filter(|r| r.callee.id == session).cloned() {
                    procs.by_id.remove(&id);
                    procs.by_uri.remove(&r.uri);
                }
            }
        }
        let orphaned = lock(&self.calls).take_where(|c| c.callee.id == session || c.caller.id == session);
        for (invocation, call) in orphaned {
            if call.callee.id == session {
                let err = WampError::Canceled("the callee left before answering".into());
                let _ = call.caller.send(&error_message(code::CALL, call.caller_request, &err, &call.caller));
            } else if call.callee.features.callee_call_canceling {
                let interrupt = Message::Interrupt { request: invocation, options: dict([("mode", "killnowait".into())]) };
                let _ = call.callee.send(&interrupt);
            }
        }
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

    /// The worst moment for a concurrent call: after the registration exists and before
    /// REGISTERED is queued. The call must find no procedure, not overtake REGISTERED.
    #[tokio::test]
    async fn no_invocation_overtakes_registered() {
        let dealer = Arc::new(Dealer::new(Arc::new(Metrics::new()), 10));
        let ids = IdSequence::new();
        let (caller, callee) = (handle(1), handle(2));
        let request = |n: u64| CallRequest { request: n, procedure: "p".into(), options: Dict::new(), payload: Args::default(), disclose: false };
        let (tx, rx) = std::sync::mpsc::channel();
        let id = dealer
            .register(&callee, "p", &ids, None, |id| {
                // A caller on another thread tries while the registration is being announced.
                let (dealer, caller, tx) = (dealer.clone(), caller.clone(), tx.clone());
                std::thread::spawn(move || tx.send(dealer.call(&caller, request(1))).unwrap());
                std::thread::sleep(std::time::Duration::from_millis(20));
                callee.outbox.push(Message::Registered { request: 9, registration: id }.encode(Serializer::Json).unwrap()).unwrap();
            })
            .unwrap();
        // The concurrent call waited for the lock and was routed after REGISTERED.
        assert_eq!(rx.recv().unwrap(), Ok(()));
        let got = drain(&callee).await;
        assert_eq!(got[0], Message::Registered { request: 9, registration: id });
        assert!(matches!(got[1], Message::Invocation { registration, .. } if registration == id), "{got:?}");
    }
}
