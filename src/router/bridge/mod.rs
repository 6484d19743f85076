//! The HTTP bridge's router side: a request from a service that cannot hold a WAMP
//! session (`POST /publish`, `POST /call` on the HTTP port, `transport::http_bridge`)
//! becomes a short-lived router-side session, so that it is authenticated, authorized,
//! rate-limited and disclosed exactly as a WAMP session's PUBLISH or CALL would be.
//!
//! [`BridgeSession::open`] authenticates the request's credential with the realm's
//! authenticator (an API token or a static ticket, as WAMP-Ticket checks them; none:
//! the realm's anonymous role) and makes a [`SessionHandle`] with its own id, authid,
//! authrole and authorizer view, a JSON serializer and an outbox of its own. The
//! handle then publishes through the broker and calls through the dealer like any
//! session's: a RESULT or ERROR for it lands in its outbox, where `call` awaits it.
//!
//! The session lives for one request. It does not join the realm's session table: it
//! cannot be listed, killed or sent anything later, holds no subscription or
//! registration, and sets off no `wamp.session.on_join`/`on_leave` (one pair per HTTP
//! request would flood their watchers). Its rate limits cannot be a session's own
//! buckets, which would start full on every request: the realm's per-session rates
//! apply per authid instead, and per peer address for anonymous requests (`rates.rs`).

mod call;
pub mod error;
mod publish;
pub mod rates;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::checks::{self, permitted};
use super::control::ControlInbox;
use super::error::WampError;
use super::frames::ConnInfo;
use super::handle::{PeerFeatures, SessionHandle};
use super::outbox::Outbox;
use super::realm::Realm;
use super::Router;
use crate::auth::{Action, AuthError, Check, Decision, Request, Subject, Verdict};
use crate::wamp::ids::{global_id, SessionId};
use crate::wamp::uri::MatchPolicy;
use crate::wamp::Serializer;
pub use call::{CallRequest, CallResult};
pub use error::{no_auth_method, BridgeError};
pub use publish::PublishRequest;
use rates::RateKey;

/// What a request presents to say who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// Nothing: the realm's anonymous role, if it has one.
    None,
    /// A ticket (a static principal's, or an API token of the graph), with the authid
    /// it belongs to when the client names it.
    Ticket { authid: Option<&'a str>, ticket: &'a str },
}

/// One HTTP request, as a session of its realm.
#[derive(Debug)]
pub struct BridgeSession {
    router: Arc<Router>,
    realm: Arc<Realm>,
    handle: Arc<SessionHandle>,
    rate_key: RateKey,
}

impl BridgeSession {
    /// Authenticates `credential` in `realm` (the router's default realm when `None`)
    /// for a request from `peer` (address:port).
    pub async fn open(router: &Arc<Router>, realm: Option<&str>, credential: Credential<'_>, peer: &str) -> Result<BridgeSession, BridgeError> {
        let realm = match realm {
            Some(name) => {
                checks::uri(&router.limits, name, MatchPolicy::Exact)?;
                router.realm(name).ok_or_else(|| WampError::NoSuchRealm(name.to_owned()))?
            }
            None => router.default_realm().ok_or_else(|| WampError::NoSuchRealm(String::new()))?,
        }
        .clone();
        let id = SessionId(global_id());
        let conn = ConnInfo { serializer: Serializer::Json, transport: "http", secure: false, peer: peer.to_owned(), max_outgoing: usize::MAX };
        let verdict = match credential {
            Credential::None => Verdict::Now(realm.authenticator.anonymous(id.0).ok_or_else(|| {
                AuthError::NoAuthMethod(format!("realm '{}' admits no anonymous requests: send Authorization: Bearer <token>", realm.name))
            })),
            Credential::Ticket { authid, ticket } => realm.authenticator.ticket(authid, ticket, conn.address()),
        };
        let principal = match verdict {
            Verdict::Now(r) => r,
            Verdict::Later(lookup) => lookup.await,
        }
        .map_err(|e| {
            match e {
                AuthError::Throttled { .. } => router.metrics.auth_throttled.inc(),
                AuthError::Failed(_) => router.metrics.auth_failures.inc(),
                _ => 0,
            };
            tracing::debug!(address = conn.address(), error = %e, "HTTP bridge authentication refused");
            WampError::from(e)
        })?;
        let rate_key = match principal.authmethod {
            "anonymous" => RateKey::Address(conn.address().to_owned()),
            _ => RateKey::Authid(principal.authid.clone()),
        };
        let permissions = realm.authorizer.permissions(Subject { authid: &principal.authid, authrole: &principal.authrole });
        // Its own outbox: where the dealer puts the RESULT or ERROR of its call.
        let outbox = Arc::new(Outbox::new(router.outbox_limits(), router.budget.clone()));
        let parts = (outbox, CancellationToken::new(), Arc::new(ControlInbox::new()));
        let handle = SessionHandle::new(id, realm.name.clone(), principal, permissions, &conn, PeerFeatures::default(), parts);
        Ok(BridgeSession { router: router.clone(), realm, handle: Arc::new(handle), rate_key })
    }

    pub fn id(&self) -> SessionId {
        self.handle.id
    }

    pub fn realm(&self) -> &str {
        &self.realm.name
    }

    pub fn authid(&self) -> &str {
        &self.handle.authid
    }

    pub fn authrole(&self) -> &str {
        &self.handle.authrole
    }

    /// Asks the session's authorizer view, as a WAMP session's request does: from
    /// memory when it knows, else waiting for it to find out (a database query).
    async fn authorize(&self, action: Action, uri: &str) -> Result<Decision, WampError> {
        let req = Request { action, uri, policy: MatchPolicy::Exact };
        let decided = match self.handle.permissions.check(req) {
            Check::Decided(d) => Ok(d),
            Check::Ask => checks::decide_later(&self.router.metrics, &self.handle.permissions, req).await,
        };
        permitted(decided, action, uri)
    }
}

/// Payload passthru mode needs a peer that announced it in HELLO; an HTTP request has
/// no HELLO, so a request with any `ppt_*` option is refused.
fn refuse_passthru(options: &crate::wamp::Dict) -> Result<(), WampError> {
    match crate::wamp::ppt::KEYS.iter().find(|k| options.contains_key(**k)) {
        None => Ok(()),
        Some(k) => Err(WampError::InvalidArgument(format!("options.{k}: payload passthru mode is not available over the HTTP bridge"))),
    }
}
