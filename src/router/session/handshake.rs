//! HELLO to WELCOME: the realm, the authentication method, the challenge, and joining
//! the realm with the identity the authenticator vouched for.

use std::sync::Arc;

use super::{Flow, Resume, Session, State};
use crate::auth::{AuthError, HelloOutcome, Pending, Principal, Subject, Verdict};
use crate::router::error::WampError;
use crate::router::features::router_roles;
use crate::router::handle::{PeerFeatures, SessionHandle};
use crate::router::meta::events;
use crate::router::quota::Rates;
use crate::router::realm::Realm;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{dict, Dict, Message, Value};

impl Session {
    pub(super) fn on_hello(&mut self, msg: Message) -> Flow {
        let Message::Hello { realm, details } = msg else {
            return self.violation(format!("expected HELLO, got {}", msg.name()));
        };
        if let Err(e) = self.check_uri(&realm, MatchPolicy::Exact) {
            return self.abort(e);
        }
        let Some(realm) = self.router.realm(&realm).cloned() else {
            return self.abort(WampError::NoSuchRealm(realm));
        };
        let features = peer_features(&details);
        match realm.authenticator.hello(&details, self.id.0, self.conn.address()) {
            Ok(HelloOutcome::Welcome(principal)) => self.welcome(realm, principal, features),
            Ok(HelloOutcome::Challenge { method, extra, pending }) => {
                self.push(&Message::Challenge { authmethod: method.to_owned(), extra });
                self.state = State::Challenged { realm, pending, features };
                Flow::Continue
            }
            Err(e) => self.refuse_authentication(e),
        }
    }

    /// Counts a refused authentication by kind, logs why, then aborts with it.
    fn refuse_authentication(&mut self, e: AuthError) -> Flow {
        tracing::debug!(session = %self.id, address = self.conn.address(), error = %e, "authentication refused");
        match e {
            AuthError::Throttled { .. } => self.router.metrics.auth_throttled.inc(),
            AuthError::Failed(_) => self.router.metrics.auth_failures.inc(),
            _ => 0,
        };
        self.abort(e.into())
    }

    pub(super) fn on_authenticate(&mut self, msg: Message, realm: Arc<Realm>, pending: Pending, features: PeerFeatures) -> Flow {
        match msg {
            Message::Authenticate { signature, .. } => {
                match realm.authenticator.authenticate(&pending, &signature, self.conn.address()) {
                    Verdict::Now(Ok(principal)) => self.welcome(realm, principal, features),
                    Verdict::Now(Err(e)) => self.refuse_authentication(e),
                    // A token or key is being looked up: nothing else is read from the peer meanwhile.
                    Verdict::Later(verdict) => Flow::Wait(Box::pin(async move {
                        let verdict = verdict.await;
                        let rest: Resume = Box::new(move |s: &mut Session| match verdict {
                            Ok(principal) => s.welcome(realm, principal, features),
                            Err(e) => s.refuse_authentication(e),
                        });
                        rest
                    })),
                }
            }
            Message::Abort { .. } => Flow::Close,
            other => self.violation(format!("expected AUTHENTICATE, got {}", other.name())),
        }
    }

    fn welcome(&mut self, realm: Arc<Realm>, p: Principal, features: PeerFeatures) -> Flow {
        let details = dict([
            ("realm", realm.name.as_str().into()),
            ("authid", p.authid.as_str().into()),
            ("authrole", p.authrole.as_str().into()),
            ("authmethod", p.authmethod.into()),
            ("authprovider", p.authprovider.into()),
            ("roles", router_roles(!realm.broker.store().retention().is_empty())),
        ]);
        let permissions = realm.authorizer.permissions(Subject { authid: &p.authid, authrole: &p.authrole });
        let handle = Arc::new(SessionHandle::new(
            self.id,
            realm.name.clone(),
            p,
            permissions,
            &self.conn,
            features,
            (self.outbox.clone(), self.kill.clone(), self.inbox.clone()),
        ));
        if let Err(e) = realm.join(handle.clone()) {
            return self.abort(e);
        }
        self.push(&Message::Welcome { session: self.id.0, details });
        events::joined(&realm.broker, &handle);
        self.rates = Rates::new(&realm.limits);
        self.router.metrics.sessions.inc();
        tracing::debug!(session = %self.id, realm = %realm.name, authid = %handle.authid, "session joined");
        self.state = State::Established { realm, handle };
        Flow::Continue
    }
}

/// Reads the client's announced roles and features from HELLO.Details.roles.
fn peer_features(details: &Dict) -> PeerFeatures {
    let feature = |role: &str, name: &str| -> bool {
        details
            .get("roles")
            .and_then(Value::as_dict)
            .and_then(|r| r.get(role))
            .and_then(Value::as_dict)
            .and_then(|r| r.get("features"))
            .and_then(Value::as_dict)
            .and_then(|f| f.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    PeerFeatures {
        callee_call_canceling: feature("callee", "call_canceling"),
        callee_progressive_call_results: feature("callee", "progressive_call_results"),
        caller_progressive_call_results: feature("caller", "progressive_call_results"),
        subscription_revocation: feature("subscriber", "subscription_revocation"),
        registration_revocation: feature("callee", "registration_revocation"),
        publisher_ppt: feature("publisher", "payload_passthru_mode"),
        caller_ppt: feature("caller", "payload_passthru_mode"),
        callee_ppt: feature("callee", "payload_passthru_mode"),
    }
}
