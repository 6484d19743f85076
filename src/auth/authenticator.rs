//! Authenticators: anonymous; ticket against the realm's static principals or, on realms
//! of the permission graph, against its API tokens (a [`TokenCheck`]); WAMP-CRA against
//! the static principals' secrets (`cra.rs`); and WAMP-Cryptosign against the static
//! principals' public keys or the graph users' stored keys (`cryptosign.rs`).
//! HELLO yields a welcome, a challenge, or a refusal; AUTHENTICATE completes a challenge,
//! at once for a static credential, or later ([`Verdict::Later`]) when a token or key
//! must be looked up. Failures are throttled per peer address (`throttle.rs`).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::future::BoxFuture;

use super::credentials::{constant_time_eq, Credentials};
use super::error::AuthError;
use super::throttle::Throttle;
use super::{cra, cryptosign};
use crate::config::RealmConfig;
use crate::wamp::{dict, Dict, Value};

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub authid: String,
    pub authrole: String,
    pub authmethod: &'static str,
    /// Who vouches for the identity (`WELCOME.Details.authprovider`).
    pub authprovider: &'static str,
    /// The credential's identity when the session must end with it (an API token's
    /// hash, a stored key): sessions opened with a revoked or expired token, or with a
    /// deleted key, are closed.
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

/// Who a Cryptosign public key stored in the graph belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    pub user: String,
    pub admin: bool,
    /// The key's identity for revocation: sessions opened with it end when it is
    /// deleted or given to another user.
    pub key_id: String,
}

/// Checks the credentials the permission graph stores: API tokens presented as
/// WAMP-Ticket tickets, and users' WAMP-Cryptosign public keys.
pub trait TokenCheck: Send + Sync + std::fmt::Debug {
    /// Who `token` belongs to, or why it opens no session ([`AuthError::Failed`] saying
    /// which, or [`AuthError::Unavailable`]).
    fn check(&self, token: &str) -> BoxFuture<'static, Result<TokenHolder, AuthError>>;

    /// Who the Ed25519 public key `pubkey` (64 lower-case hex digits) belongs to, with
    /// the same kinds of refusal. Called only once the client proved it holds the key.
    fn check_key(&self, pubkey: &str) -> BoxFuture<'static, Result<KeyHolder, AuthError>>;
}

/// The answer to AUTHENTICATE: now, or once a token or key has been looked up.
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

/// A challenge sent and not yet answered: who the peer claims to be, and what it must
/// prove. Kept by the session until AUTHENTICATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The identity on success, as far as HELLO could tell (a token's or a key's owner
    /// is only known once it is looked up).
    principal: Principal,
    proof: Proof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Proof {
    Ticket,
    /// The challenge string sent, which the client must HMAC.
    Cra { challenge: String },
    /// Boxed: it is the largest, and every session in its handshake holds a Pending.
    Cryptosign(Box<KeyProof>),
}

/// The random bytes sent, which the client must sign with `pubkey`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyProof {
    challenge: [u8; 32],
    pubkey: [u8; 32],
    pubkey_hex: String,
}

impl Pending {
    /// The name failures are throttled under: the claimed authid, or the key that
    /// stands for it.
    fn throttle_id(&self) -> &str {
        match &self.proof {
            Proof::Cryptosign(key) if self.principal.authid.is_empty() => &key.pubkey_hex,
            _ => &self.principal.authid,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HelloOutcome {
    Welcome(Principal),
    /// Send CHALLENGE(method, extra) and keep `pending` until AUTHENTICATE.
    Challenge { method: &'static str, extra: Dict, pending: Pending },
}

#[derive(Debug)]
pub struct Authenticator {
    anonymous_role: Option<String>,
    statics: Credentials,
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
            statics: Credentials::from_config(realm),
            tokens: None,
            throttle: Arc::new(Throttle::new(failures_per_minute)),
        }
    }

    /// Also accepts API tokens as tickets and the graph users' keys for Cryptosign,
    /// checked by `tokens`.
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

    /// Records a failure of `authid` from `address` and says why it failed.
    fn fail(&self, address: &str, authid: &str, why: impl Into<String>) -> AuthError {
        self.throttle.record_failure(address, authid, Instant::now());
        AuthError::Failed(why.into())
    }

    /// Picks the first method the client offers that this realm can do. `address` is the
    /// peer's address (IP without port), for throttling.
    pub fn hello(&self, details: &Dict, session_id: u64, address: &str) -> Result<HelloOutcome, AuthError> {
        let offered: Vec<&str> = match details.get("authmethods") {
            None => vec!["anonymous"],
            Some(Value::List(l)) => l.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(AuthError::Malformed("HELLO.Details.authmethods must be a list".into())),
        };
        let authid = details.get("authid").and_then(Value::as_str).filter(|a| !a.is_empty());
        for method in &offered {
            match *method {
                "ticket" if self.statics.has_tickets() || self.tokens.is_some() => return self.ticket_challenge(authid, address),
                "wampcra" if self.statics.has_cra() => return self.cra_challenge(authid, session_id, address),
                "cryptosign" if self.statics.has_keys() || self.tokens.is_some() => {
                    return self.cryptosign_challenge(details, authid, address)
                }
                "anonymous" => {
                    if let Some(principal) = self.anonymous(session_id) {
                        return Ok(HelloOutcome::Welcome(principal));
                    }
                }
                _ => {}
            }
        }
        Err(AuthError::NoAuthMethod(format!("none of the offered authmethods {offered:?} is accepted on this realm")))
    }

    /// The identity of a request that presents no credential (the HTTP bridge): the
    /// realm's anonymous role, as a HELLO offering only `anonymous` gets it; None on a
    /// realm without one.
    pub fn anonymous(&self, session_id: u64) -> Option<Principal> {
        let role = self.anonymous_role.as_ref()?;
        Some(Principal {
            authid: format!("anonymous-{session_id}"),
            authrole: role.clone(),
            authmethod: "anonymous",
            authprovider: "static",
            token: None,
            expires_at: None,
        })
    }

    /// A ticket presented without a handshake (the HTTP bridge's `Authorization`
    /// header). With an authid, it is checked as WAMP-Ticket's AUTHENTICATE checks it.
    /// Without one, it is a static principal's ticket when exactly one principal has it,
    /// else (on a realm of the graph) an API token. Failures are throttled like
    /// WAMP-Ticket's, under the same keys.
    pub fn ticket(&self, authid: Option<&str>, ticket: &str, address: &str) -> Verdict {
        if !self.statics.has_tickets() && self.tokens.is_none() {
            return Verdict::Now(Err(AuthError::NoAuthMethod("this realm accepts no tickets and no API tokens".into())));
        }
        let claimed = authid.filter(|a| !a.is_empty());
        if let Err(e) = self.check_throttle(address, claimed.unwrap_or(""), Instant::now()) {
            return Verdict::Now(Err(e));
        }
        if let Some(authid) = claimed {
            return self.check_ticket(&pending_principal(authid, String::new(), "ticket"), ticket, address);
        }
        match self.statics.ticket_owners(ticket).as_slice() {
            [(authid, role)] => Verdict::Now(Ok(pending_principal(authid, (*role).to_owned(), "ticket"))),
            // No static principal has it: an API token, or a wrong ticket.
            [] => self.check_ticket(&pending_principal("", String::new(), "ticket"), ticket, address),
            // The secret is right, so this is no guess to throttle; but whose it is
            // cannot be told without the authid.
            _ => Verdict::Now(Err(AuthError::Failed("several principals have this ticket: name the authid too".into()))),
        }
    }

    fn ticket_challenge(&self, authid: Option<&str>, address: &str) -> Result<HelloOutcome, AuthError> {
        // A token names its user: the authid is optional then (and checked against the
        // token's user when given).
        let authid = match authid {
            Some(a) => a,
            None if self.tokens.is_some() => "",
            None => return Err(self.fail(address, "", "ticket authentication needs an authid")),
        };
        self.check_throttle(address, authid, Instant::now())?;
        // The principal's role is looked up at AUTHENTICATE; an unknown authid is
        // challenged like a known one so that authids cannot be probed.
        let principal = pending_principal(authid, String::new(), "ticket");
        Ok(HelloOutcome::Challenge { method: "ticket", extra: Dict::new(), pending: Pending { principal, proof: Proof::Ticket } })
    }

    /// The WAMP-CRA challenge names the role and (when salted) the salt: an unknown
    /// authid gets a decoy's, so the challenge does not tell it is unknown.
    fn cra_challenge(&self, authid: Option<&str>, session_id: u64, address: &str) -> Result<HelloOutcome, AuthError> {
        let Some(authid) = authid else {
            return Err(self.fail(address, "", "wampcra authentication needs an authid"));
        };
        self.check_throttle(address, authid, Instant::now())?;
        let (role, salt) = match self.statics.cra(authid) {
            Some(entry) => (entry.role.clone(), entry.salt.clone()),
            None => {
                let decoy = self.statics.decoy(authid);
                (decoy.role, decoy.salt)
            }
        };
        let fields = cra::ChallengeFields { authid, authrole: &role, authprovider: "static", session: session_id };
        let challenge = cra::challenge(&fields, SystemTime::now());
        let mut extra = dict([("challenge", challenge.as_str().into())]);
        if let Some(salt) = salt {
            extra.insert("salt".into(), salt.salt.into());
            extra.insert("iterations".into(), u64::from(salt.iterations).into());
            extra.insert("keylen".into(), u64::from(salt.keylen).into());
        }
        let principal = pending_principal(authid, role, "wampcra");
        Ok(HelloOutcome::Challenge { method: "wampcra", extra, pending: Pending { principal, proof: Proof::Cra { challenge } } })
    }

    /// Every well-formed key is challenged, known or not: whose it is, is decided once
    /// the client proved it holds it.
    fn cryptosign_challenge(&self, details: &Dict, authid: Option<&str>, address: &str) -> Result<HelloOutcome, AuthError> {
        let authextra = details.get("authextra").and_then(Value::as_dict);
        let announced = authextra.and_then(|e| e.get("pubkey")).and_then(Value::as_str);
        let throttle_id = authid.map(str::to_owned).or_else(|| announced.map(str::to_ascii_lowercase)).unwrap_or_default();
        self.check_throttle(address, &throttle_id, Instant::now())?;
        if let Some(binding) = authextra.and_then(|e| e.get("channel_binding")).filter(|b| **b != Value::Null) {
            let asked = binding.as_str().unwrap_or("?");
            let why = format!("TLS channel binding ({asked}) is not supported by this router: authenticate without channel_binding");
            return Err(self.fail(address, &throttle_id, why));
        }
        let Some(announced) = announced else {
            return Err(self.fail(address, &throttle_id, "cryptosign authentication needs HELLO.Details.authextra.pubkey"));
        };
        let pubkey = cryptosign::parse_public_key(announced).map_err(|e| self.fail(address, &throttle_id, e.to_string()))?;
        let challenge = cryptosign::new_challenge();
        let extra = dict([("challenge", cryptosign::encode_hex(&challenge).into()), ("channel_binding", Value::Null)]);
        let principal = pending_principal(authid.unwrap_or(""), String::new(), "cryptosign");
        let proof = Proof::Cryptosign(Box::new(KeyProof { challenge, pubkey, pubkey_hex: cryptosign::encode_hex(&pubkey) }));
        Ok(HelloOutcome::Challenge { method: "cryptosign", extra, pending: Pending { principal, proof } })
    }

    /// Checks the AUTHENTICATE signature for a pending challenge. While the peer is
    /// throttled the signature is not even looked at, so guesses teach it nothing.
    pub fn authenticate(&self, pending: &Pending, signature: &str, address: &str) -> Verdict {
        if let Err(e) = self.check_throttle(address, pending.throttle_id(), Instant::now()) {
            return Verdict::Now(Err(e));
        }
        match &pending.proof {
            Proof::Ticket => self.check_ticket(&pending.principal, signature, address),
            Proof::Cra { challenge } => Verdict::Now(self.check_cra(&pending.principal, challenge, signature, address)),
            Proof::Cryptosign(key) => {
                if let Err(e) = cryptosign::verify(&key.pubkey, &key.challenge, signature) {
                    return Verdict::Now(Err(self.fail(address, pending.throttle_id(), e.to_string())));
                }
                self.key_owner(&pending.principal.authid, &key.pubkey, &key.pubkey_hex, address)
            }
        }
    }

    /// A static principal's ticket at once, else (on a realm with tokens) the token, later.
    fn check_ticket(&self, pending: &Principal, signature: &str, address: &str) -> Verdict {
        match (self.statics.ticket(&pending.authid), &self.tokens) {
            (Some((ticket, role)), _) if constant_time_eq(ticket.as_bytes(), signature.as_bytes()) => {
                Verdict::Now(Ok(Principal { authrole: role.to_owned(), ..pending.clone() }))
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
                            token: Some(holder.token_id),
                            expires_at: holder.expires_at,
                            ..graph_principal(holder.user, holder.admin, "ticket")
                        }),
                        Err(e) => Err(e),
                    };
                    if let Err(AuthError::Failed(_)) = verdict {
                        throttle.record_failure(&address, &claimed, Instant::now());
                    }
                    verdict
                }))
            }
            _ => Verdict::Now(Err(self.fail(address, &pending.authid, "invalid ticket"))),
        }
    }

    /// An unknown authid is checked against its decoy's key, so that the answer takes
    /// as long and says the same as for a wrong secret.
    fn check_cra(&self, pending: &Principal, challenge: &str, signature: &str, address: &str) -> Result<Principal, AuthError> {
        let entry = self.statics.cra(&pending.authid);
        let decoy;
        let key = match entry {
            Some(entry) => &entry.key,
            None => {
                decoy = self.statics.decoy(&pending.authid).key;
                &decoy
            }
        };
        if cra::verify(key, challenge, signature) && entry.is_some() {
            Ok(pending.clone())
        } else {
            Err(self.fail(address, &pending.authid, "invalid wampcra signature"))
        }
    }

    /// Whose the proven key is: a static principal's at once, else a graph user's, later.
    fn key_owner(&self, claimed: &str, pubkey: &[u8; 32], pubkey_hex: &str, address: &str) -> Verdict {
        let throttle_id = if claimed.is_empty() { pubkey_hex } else { claimed };
        if let Some(owner) = self.statics.key_owner(pubkey) {
            if !claimed.is_empty() && claimed != owner.authid {
                return Verdict::Now(Err(self.fail(address, throttle_id, format!("the key does not belong to '{claimed}'"))));
            }
            return Verdict::Now(Ok(pending_principal(&owner.authid, owner.role.clone(), "cryptosign")));
        }
        let Some(tokens) = &self.tokens else {
            return Verdict::Now(Err(self.fail(address, throttle_id, "unknown cryptosign key")));
        };
        let (check, throttle) = (tokens.check_key(pubkey_hex), self.throttle.clone());
        let (claimed, throttle_id, address) = (claimed.to_owned(), throttle_id.to_owned(), address.to_owned());
        Verdict::Later(Box::pin(async move {
            let verdict = match check.await {
                Ok(holder) if !claimed.is_empty() && claimed != holder.user => {
                    Err(AuthError::Failed(format!("the key does not belong to '{claimed}'")))
                }
                Ok(holder) => Ok(Principal { token: Some(holder.key_id), ..graph_principal(holder.user, holder.admin, "cryptosign") }),
                Err(e) => Err(e),
            };
            if let Err(AuthError::Failed(_)) = verdict {
                throttle.record_failure(&address, &throttle_id, Instant::now());
            }
            verdict
        }))
    }
}

/// The identity a challenge is for, vouched for by the realm file.
fn pending_principal(authid: &str, authrole: String, authmethod: &'static str) -> Principal {
    Principal { authid: authid.to_owned(), authrole, authmethod, authprovider: "static", token: None, expires_at: None }
}

/// A user of the permission graph.
fn graph_principal(user: String, admin: bool, authmethod: &'static str) -> Principal {
    Principal {
        authid: user,
        authrole: if admin { TOKEN_ADMIN_ROLE } else { TOKEN_USER_ROLE }.to_owned(),
        authmethod,
        authprovider: "graph",
        token: None,
        expires_at: None,
    }
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
