//! `POST /call`: the same path as a session's CALL (`session/requests.rs`): the
//! realm's rate, the procedure's checks, the authorizer, then the dealer, which routes
//! it to a callee session as an INVOCATION. The callee's YIELD comes back as a RESULT
//! (or its ERROR as an ERROR) in the bridge session's own outbox, where the call waits
//! for it. The router's own procedures (the meta API) are answered at once, as for a
//! session; testaments are refused, since a bridge session ends with its request.
//!
//! If the HTTP request goes away first (the client disconnected), the call is
//! canceled as a caller's CANCEL (`killnowait`) would: an interruptible callee gets
//! an INTERRUPT, and its late answer is dropped.

use std::sync::Arc;

use super::publish::rate_limited;
use super::{refuse_passthru, BridgeError, BridgeSession};
use crate::auth::Action;
use crate::router::checks;
use crate::router::dealer;
use crate::router::error::WampError;
use crate::router::meta::{self, Testaments};
use crate::router::outbox::Outgoing;
use crate::router::realm::Realm;
use crate::wamp::ids::SessionId;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{dict, Args, Dict, Message, Serializer};

/// The CALL's request id: a bridge session makes one call.
const REQUEST: u64 = 1;

/// What `POST /call` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    pub procedure: String,
    /// CALL.Options (`timeout` in ms among them; `receive_progress` is dropped: an HTTP
    /// response carries one result).
    pub options: Dict,
    pub payload: Args,
}

/// The RESULT's Arguments and ArgumentsKw, encoded in JSON.
pub type CallResult = Args;

impl BridgeSession {
    /// Calls and waits for the result.
    pub async fn call(&self, mut req: CallRequest) -> Result<CallResult, BridgeError> {
        let realm = &self.realm;
        if let Err(refused) = realm.bridge_rates.call(&self.rate_key) {
            realm.metrics().quota_refused(&realm.name, "call");
            return Err(rate_limited(refused, "calls"));
        }
        checks::uri(&self.router.limits, &req.procedure, MatchPolicy::Exact)?;
        refuse_passthru(&req.options)?;
        if let Some(p) = meta::procedure(&req.procedure) {
            if p.uri == meta::ADD_TESTAMENT || p.uri == "wamp.session.flush_testaments" {
                return Err(WampError::FeatureNotSupported("testaments need a WAMP session: an HTTP request leaves nothing behind".into()).into());
            }
            if !p.open {
                self.authorize(Action::Call, &req.procedure).await?;
            }
            return match p.call(realm, &self.handle, &mut Testaments::default(), REQUEST, &req.payload)? {
                Message::Result { payload, .. } => Ok(payload),
                other => Err(BridgeError::Internal(format!("the router's procedure answered {}", other.name()))),
            };
        }
        let decision = self.authorize(Action::Call, &req.procedure).await?;
        let timeout = dealer::call_timeout(&req.options, realm.limits.max_call_timeout)?;
        req.options.remove("receive_progress");
        let call = dealer::CallRequest {
            request: REQUEST,
            procedure: req.procedure,
            options: req.options,
            payload: req.payload,
            disclose: decision.disclose,
            timeout,
            ppt: None,
        };
        realm.dealer.call(&self.handle, call)?;
        let pending = Pending { realm: realm.clone(), caller: self.handle.id, answered: false };
        let frame = self.answer().await;
        pending.answered();
        match Message::decode(Serializer::Json, &frame?) {
            Ok(Message::Result { payload, .. }) => Ok(payload),
            Ok(Message::Error { error, payload, .. }) => Err(BridgeError::Answered { uri: error, payload }),
            Ok(other) => Err(BridgeError::Internal(format!("the dealer answered the call with {}", other.name()))),
            Err(e) => Err(BridgeError::Internal(format!("the call's answer cannot be read: {e}"))),
        }
    }

    /// The first frame the dealer queues for this session: the call's RESULT or ERROR
    /// (nothing else is ever sent to it: it subscribes and registers nothing, and asks
    /// for no progressive results).
    async fn answer(&self) -> Result<bytes::Bytes, BridgeError> {
        let outbox = &self.handle.outbox;
        let mut batch = Vec::with_capacity(1);
        loop {
            if !outbox.next_batch(&mut batch, 1, usize::MAX).await {
                return Err(WampError::Canceled("the call's answer could not be queued".into()).into());
            }
            outbox.written();
            if let Some(Outgoing::Frame(frame)) = batch.pop() {
                return Ok(frame);
            }
        }
    }
}

/// A call in flight: dropped before its answer (the HTTP request went away), it is
/// canceled like a caller's CANCEL in `killnowait` mode.
struct Pending {
    realm: Arc<Realm>,
    caller: SessionId,
    answered: bool,
}

impl Pending {
    fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered {
            tracing::debug!(session = %self.caller, "HTTP bridge call abandoned by its client: canceling it");
            let _ = self.realm.dealer.cancel(self.caller, REQUEST, &dict([("mode", "killnowait".into())]));
        }
    }
}
