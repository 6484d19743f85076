//! Authenticators: anonymous, and ticket against the realm's static principals or, on
//! realms of the permission graph, against its API tokens (a [`TokenCheck`]).
//! HELLO yields a welcome, a challenge, or a refusal; AUTHENTICATE completes a challenge,
//! at once for a static secret, or later ([`Verdict::Later`]) when a token must be
//! looked up. Failed tickets are throttled per peer address (`throttle.rs`).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::future::BoxFuture;

use super::throttle::Throttle;
use crate::config::RealmConfig;
use super::error::AuthError;
use crate::wamp::{Dict, Value};

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub authid: String,
    pub authrole: String,
    pub authmethod: &'static str,
    /// Who vouches for the identity (`WELCOME.Details.authprovider`).
    pub authprovider: &'static str,
    /// The credential's identity when the session must end with it (an API token's
    /// hash): sessions opened with a revoked or expired token are closed.
    pub token: Option<String>,
    /// When the credential expires: the session is closed then.
    pub expires_at: Option<SystemTime>,
}

/// Who an API token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolder {
    pub user: String,
    pub admin: bool,
    /// The token's identity for revocation (its hash), never the token itself.
    pub token_id: String,
    pub expires_at: Option<SystemTime>,
}

/// Checks API tokens presented as WAMP-Ticket tickets.
pub trait TokenCheck: Send + Sync + std::fmt::Debug {
    /// Who `token` belongs to, or why it opens no session ([`AuthError::Failed`] saying
    /// which, or [`AuthError::Unavailable`]).
    fn check(&self, token: &str) -> BoxFuture<'static, Result<TokenHolder, AuthError>>;
}

/// The answer to AUTHENTICATE: now, or once a token has been looked up.
pub enum Verdict {
    Now(Result<Principal, AuthError>),
    Later(BoxFuture<'static, Result<Principal, AuthError>>),
}

impl Verdict {
    /// The answer now, if there is one.
    pub fn now(self) -> Option<Result<Principal, AuthError>> {
        match self {
            Verdict::Now(r) => Some(r),
            Verdict::Later(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HelloOutcome {
    Welcome(Principal),
    /// Send CHALLENGE(method, extra) and keep `pending` until AUTHENTICATE.
    Challenge { method: &'static str, extra: Dict, pending: Principal },
}

#[derive(Debug)]
pub struct Authenticator {
    anonymous_role: Option<String>,
    tickets: Vec<(String, String, String)>,
    tokens: Option<Arc<dyn TokenCheck>>,
    throttle: Arc<Throttle>,
}

/// The authroles of token sessions: the graph's users, and its admins.
pub const TOKEN_USER_ROLE: &str = "user";
pub const TOKEN_ADMIN_ROLE: &str = "admin";

impl Authenticator {
    pub fn from_config(realm: &RealmConfig, failures_per_minute: u32) -> Authenticator {
        Authenticator {
            anonymous_role: realm.anonymous.clone(),
            tickets: realm.principals.iter().map(|p| (p.authid.clone(), p.ticket.clone(), p.role.clone())).collect(),
            tokens: None,
            throttle: Arc::new(Throttle::new(failures_per_minute)),
        }
    }

    /// Also accepts API tokens as tickets, checked by `tokens`.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenCheck>) -> Authenticator {
        self.tokens = Some(tokens);
        self
    }

    /// Refuses at once an authid that failed too often from this address.
    fn check_throttle(&self, address: &str, authid: &str, now: Instant) -> Result<(), AuthError> {
        let wait = self.throttle.wait(address, authid, now);
        if wait.is_zero() {
            Ok(())
        } else {
            Err(AuthError::Throttled { retry_after_s: wait.as_secs_f64().ceil() as u64 })
        }
    }

    /// Picks the first method the client offers that this realm can do. `address` is the
    /// peer's address (IP without port), for throttling.
    pub fn hello(&self, details: &Dict, session_id: u64, address: &str) -> Result<HelloOutcome, AuthError> {
        let offered: Vec<&str> = match details.get("authmethods") {
            None => vec!["anonymous"],
            Some(Value::List(l)) => l.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(AuthError::Malformed("HELLO.Details.authmethods must be a list".into())),
        };
        let authid = details.get("authid").and_then(Value::as_str);
        for method in &offered {
            match *method {
                "ticket" if !self.tickets.is_empty() || self.tokens.is_some() => {
                    // A token names its user: the authid is optional then (and checked
                    // against the token's user when given).
                    let authid = match authid {
                        Some(a) => a,
                        None if self.tokens.is_some() => "",
                        None => return Err(AuthError::Failed("ticket authentication needs an authid".into())),
                    };
                    self.check_throttle(address, authid, Instant::now())?;
                    // The principal's role is looked up at AUTHENTICATE; an unknown authid
                    // is challenged like a known one so that authids cannot be probed.
                    let pending = Principal {
                        authid: authid.to_owned(),
                        authrole: String::new(),
                        authmethod: "ticket",
                        authprovider: "static",
                        token: None,
                        expires_at: None,
                    };
                    return Ok(HelloOutcome::Challenge { method: "ticket", extra: Dict::new(), pending });
                }
                "anonymous" => {
                    if let Some(role) = &self.anonymous_role {
                        return Ok(HelloOutcome::Welcome(Principal {
                            authid: format!("anonymous-{session_id}"),
                            authrole: role.clone(),
                            authmethod: "anonymous",
                            authprovider: "static",
                            token: None,
                            expires_at: None,
                        }));
                    }
                }
                _ => {}
            }
        }
        Err(AuthError::NoAuthMethod(format!("none of the offered authmethods {offered:?} is accepted on this realm")))
    }

    /// Checks the AUTHENTICATE signature for a pending challenge: a static principal's
    /// ticket at once, else (on a realm with tokens) the token, later. While the peer
    /// is throttled the signature is not even looked at, so guesses teach it nothing.
    pub fn authenticate(&self, pending: &Principal, signature: &str, address: &str) -> Verdict {
        let now = Instant::now();
        if let Err(e) = self.check_throttle(address, &pending.authid, now) {
            return Verdict::Now(Err(e));
        }
        let found = self.tickets.iter().find(|(authid, _, _)| *authid == pending.authid);
        match (found, &self.tokens) {
            (Some((_, ticket, role)), _) if constant_time_eq(ticket.as_bytes(), signature.as_bytes()) => {
                Verdict::Now(Ok(Principal { authrole: role.clone(), ..pending.clone() }))
            }
            (None, Some(tokens)) => {
                let (check, throttle) = (tokens.check(signature), self.throttle.clone());
                let (claimed, address) = (pending.authid.clone(), address.to_owned());
                Verdict::Later(Box::pin(async move {
                    let verdict = match check.await {
                        Ok(holder) if !claimed.is_empty() && claimed != holder.user => {
                            Err(AuthError::Failed(format!("the token does not belong to '{claimed}'")))
                        }
                        Ok(holder) => Ok(Principal {
                            authid: holder.user,
                            authrole: if holder.admin { TOKEN_ADMIN_ROLE } else { TOKEN_USER_ROLE }.to_owned(),
                            authmethod: "ticket",
                            authprovider: "graph",
                            token: Some(holder.token_id),
                            expires_at: holder.expires_at,
                        }),
                        Err(e) => Err(e),
                    };
                    if let Err(AuthError::Failed(_)) = verdict {
                        throttle.record_failure(&address, &claimed, Instant::now());
                    }
                    verdict
                }))
            }
            _ => {
                self.throttle.record_failure(address, &pending.authid, now);
                Verdict::Now(Err(AuthError::Failed("invalid ticket".into())))
            }
        }
    }
}

/// Compares secrets without an early exit, so timing does not reveal a common prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PrincipalConfig;
    use crate::wamp::dict;

    fn auth() -> Authenticator {
        Authenticator::from_config(
            &RealmConfig {
            name: "r".into(),
            anonymous: Some("anonymous".into()),
            roles: vec![],
            principals: vec![PrincipalConfig { authid: "alice".into(), ticket: "s3cret".into(), role: "user".into() }],
                graph: None,
                replay: crate::config::ReplayConfig::none(),
                limits: Default::default(),
            },
            3,
        )
    }

    #[test]
    fn anonymous_by_default() {
        let out = auth().hello(&Dict::new(), 7, "10.0.0.1").unwrap();
        assert_eq!(
            out,
            HelloOutcome::Welcome(Principal {
                authid: "anonymous-7".into(),
                authrole: "anonymous".into(),
                authmethod: "anonymous",
                authprovider: "static",
                token: None,
                expires_at: None
            })
        );
    }

    #[test]
    fn ticket_challenge_and_check() {
        let a = auth();
        let details = dict([("authmethods", Value::List(vec!["ticket".into()])), ("authid", "alice".into())]);
        let HelloOutcome::Challenge { method, pending, .. } = a.hello(&details, 1, "10.0.0.1").unwrap() else {
            panic!("no challenge")
        };
        assert_eq!(method, "ticket");
        assert_eq!(a.authenticate(&pending, "s3cret", "10.0.0.1").now().unwrap().unwrap().authrole, "user");
        assert_eq!(a.authenticate(&pending, "wrong", "10.0.0.1").now().unwrap().unwrap_err().uri(), "wamp.error.authentication_failed");
    }

    #[test]
    fn failed_tickets_are_throttled_per_address() {
        let a = auth();
        let details = dict([("authmethods", Value::List(vec!["ticket".into()])), ("authid", "alice".into())]);
        let HelloOutcome::Challenge { pending, .. } = a.hello(&details, 1, "10.0.0.1").unwrap() else {
            panic!("no challenge")
        };
        for _ in 0..3 {
            assert_eq!(a.authenticate(&pending, "wrong", "10.0.0.1").now().unwrap(), Err(AuthError::Failed("invalid ticket".into())));
        }
        // Throttled: even the right ticket is refused unchecked, at HELLO and at AUTHENTICATE.
        let throttled = AuthError::Throttled { retry_after_s: 20 };
        assert_eq!(a.authenticate(&pending, "s3cret", "10.0.0.1").now().unwrap(), Err(throttled.clone()));
        assert_eq!(a.hello(&details, 2, "10.0.0.1"), Err(throttled.clone()));
        assert_eq!(throttled.uri(), "wamp.error.authentication_failed");
        assert_eq!(throttled.to_string(), "too many failed authentications from this address; retry in 20 s");
        // Another address is not held back.
        assert_eq!(a.authenticate(&pending, "s3cret", "10.0.0.2").now().unwrap().unwrap().authrole, "user");
    }

    #[test]
    fn unsupported_method_is_refused() {
        let details = dict([("authmethods", Value::List(vec!["wampcra".into()]))]);
        assert_eq!(auth().hello(&details, 1, "10.0.0.1").unwrap_err().uri(), "wamp.error.no_auth_method");
    }
}
