//! The permission-graph authorizer of a realm: the policy says which rule a URI falls
//! under and what the action needs; the cache says what level a user has on the rule's
//! object. Users of the graph (token sessions, authrole `user` or `admin`) are decided
//! by levels; the realm's static roles (services) by the roles a rule lists, and on URIs
//! no rule names by their own permissions in the realm file.
//!
//! A decision the cache holds is synchronous; otherwise the session waits while the
//! closure or the object's access is loaded (`decide`). Subscriptions and registrations
//! of users are revocable and guarded per event. A pattern subscription over protected
//! topics is allowed when some rule it overlaps can let the session subscribe; each
//! event then goes through the guard, which decides on the event's own topic from
//! memory (never a query per event).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::cache::{GraphCache, Known, ObjectEntry, Pin, PrincipalEntry};
use super::policy::{Matched, Need, Policy};
use super::{Level, Standing};
use crate::auth::{
    Action, Admit, Authorizer, ChangeFeed, Check, Decision, Guard, Permissions, Request, Role, StaticRoles, Subject,
    Undecided,
};
use crate::wamp::uri::MatchPolicy;

/// The authroles of the graph's users (`admin` for its admins).
/// Policy files may name them without defining them (`config::GRAPH_ROLES`).
pub const USER_ROLE: &str = crate::config::GRAPH_ROLES[0];
pub const ADMIN_ROLE: &str = crate::config::GRAPH_ROLES[1];

#[derive(Debug)]
struct Inner {
    cache: Arc<GraphCache>,
    policy: Policy,
    roles: StaticRoles,
}

#[derive(Debug)]
pub struct GraphAuthorizer {
    inner: Arc<Inner>,
    feed: Arc<ChangeFeed>,
}

impl GraphAuthorizer {
    pub fn new(cache: Arc<GraphCache>, policy: Policy, roles: StaticRoles, feed: Arc<ChangeFeed>) -> GraphAuthorizer {
        GraphAuthorizer { inner: Arc::new(Inner { cache, policy, roles }), feed }
    }

    pub fn cache(&self) -> &Arc<GraphCache> {
        &self.inner.cache
    }
}

impl Authorizer for GraphAuthorizer {
    fn permissions(&self, who: Subject<'_>) -> Arc<dyn Permissions> {
        let holder = if self.inner.roles.has_role(who.authrole) {
            Holder::Service { authrole: who.authrole.to_owned(), role: self.inner.roles.role_view(who.authrole) }
        } else {
            Holder::User(self.inner.cache.principal(who.authid))
        };
        Arc::new(GraphPermissions { inner: self.inner.clone(), holder })
    }

    fn changes(&self) -> Option<Arc<ChangeFeed>> {
        Some(self.feed.clone())
    }

    fn online(&self) -> Option<bool> {
        Some(self.inner.cache.is_online())
    }

    fn applied(&self) -> Option<i64> {
        Some(self.inner.cache.applied_seq())
    }
}

#[derive(Debug)]
enum Holder {
    /// A user of the graph.
    User(Arc<PrincipalEntry>),
    /// A service with a static role of the realm.
    Service { authrole: String, role: Arc<Role> },
}

/// Whether a rule's roles admit a user of the graph: every user has the role `user`;
/// only the graph's admins (its live `is_admin` flag, so withdrawing it revokes what it
/// allowed) have `admin`. `None`: the user's standing is not loaded yet.
fn role_admits(need: &Need, p: &PrincipalEntry) -> Option<bool> {
    if need.admits_role(USER_ROLE) {
        return Some(true);
    }
    if !need.admits_role(ADMIN_ROLE) {
        return Some(false);
    }
    p.standing().map(|s| s == Standing::Admin)
}

/// One session's view: see the module comment.
#[derive(Debug)]
pub struct GraphPermissions {
    inner: Arc<Inner>,
    holder: Holder,
}

fn allowed(yes: bool, revocable: bool) -> Check {
    Check::Decided(Decision { allowed: yes, disclose: false, revocable: yes && revocable })
}

impl GraphPermissions {
    fn cache(&self) -> &GraphCache {
        &self.inner.cache
    }

    /// A URI no rule names: denied to users, a service's own permissions otherwise.
    fn fallback(&self, req: Request<'_>) -> Check {
        match &self.holder {
            Holder::User(_) => Check::Decided(Decision::DENIED),
            Holder::Service { role, .. } => role.check(req),
        }
    }

    /// A user's answer to "does it have `need` on `object`", from memory.
    fn level_check(&self, p: &PrincipalEntry, need: Level, object: &str) -> Check {
        if let Some(l) = self.cache().memoized(p, object) {
            return allowed(l >= need, true);
        }
        match self.cache().existing_object(object).map(|o| self.cache().level(p, &o)) {
            Some(Known::Level(l)) => allowed(l >= need, true),
            _ => Check::Ask,
        }
    }

    fn check_matched(&self, m: Matched<'_>, action: Action) -> Check {
        let need = self.inner.policy.need(m.rule, action);
        match &self.holder {
            Holder::Service { authrole, .. } => {
                let yes = need.admits_role(authrole);
                // Prefetch: the first publication on an object waits for its access to
                // be loaded, so that guards of pattern subscribers can decide on it.
                let unloaded = |o: &str| self.cache().existing_object(o).is_none_or(|e| !e.is_loaded());
                if yes && action == Action::Publish && self.cache().is_online() && m.object.is_some_and(unloaded) {
                    return Check::Ask;
                }
                allowed(yes, false)
            }
            Holder::User(p) => match (need.level, m.object) {
                (Some(level), Some(object)) => self.level_check(p, level, object),
                _ => match role_admits(need, p) {
                    Some(yes) => allowed(yes, need.admits_role(ADMIN_ROLE)),
                    None => Check::Ask,
                },
            },
        }
    }

    /// A pattern subscription: allowed if some rule it overlaps can let this session
    /// subscribe; each event is then decided by the guard.
    fn check_pattern(&self, req: Request<'_>) -> Check {
        let rules = self.inner.policy.overlapping(req.uri, req.policy);
        if rules.is_empty() {
            return self.fallback(req);
        }
        let needs = || rules.iter().map(|&r| self.inner.policy.need(r, Action::Subscribe));
        match &self.holder {
            Holder::Service { authrole, .. } => {
                if needs().any(|n| n.admits_role(authrole)) {
                    allowed(true, false)
                } else {
                    self.fallback(req)
                }
            }
            Holder::User(p) => match p.standing() {
                None => Check::Ask,
                Some(Standing::Active | Standing::Admin) => {
                    allowed(needs().any(|n| n.level.is_some() || role_admits(n, p) == Some(true)), true)
                }
                Some(_) => Check::Decided(Decision::DENIED),
            },
        }
    }

    /// What `decide` must load: the user's closure and the rule's object.
    fn wanted(&self, req: Request<'_>) -> (Option<Arc<PrincipalEntry>>, Option<Arc<ObjectEntry>>) {
        let principal = match &self.holder {
            Holder::User(p) => Some(p.clone()),
            Holder::Service { .. } => None,
        };
        let object = if req.policy == MatchPolicy::Exact {
            self.inner.policy.matching(req.uri).and_then(|m| m.object).map(|o| self.cache().object(o))
        } else {
            None
        };
        (principal, object)
    }
}

impl Permissions for GraphPermissions {
    fn check(&self, req: Request<'_>) -> Check {
        if req.policy != MatchPolicy::Exact && req.action == Action::Subscribe {
            return self.check_pattern(req);
        }
        match self.inner.policy.matching(req.uri) {
            Some(m) => self.check_matched(m, req.action),
            None => self.fallback(req),
        }
    }

    fn decide(&self, req: Request<'_>) -> BoxFuture<'static, Result<Decision, Undecided>> {
        let (principal, object) = self.wanted(req);
        let (inner, holder) = (self.inner.clone(), self.clone_holder());
        let (uri, action, policy) = (req.uri.to_owned(), req.action, req.policy);
        Box::pin(async move {
            inner.cache.ensure(principal.as_deref(), object.as_deref()).await.map_err(|e| Undecided(e.to_string()))?;
            let view = GraphPermissions { inner, holder };
            match view.check(Request { action, uri: &uri, policy }) {
                Check::Decided(d) => Ok(d),
                // A publication prefetching its object for others decides by role.
                Check::Ask if matches!(view.holder, Holder::Service { .. }) => match view.inner.policy.matching(&uri) {
                    Some(m) => Ok(Decision {
                        allowed: view.inner.policy.need(m.rule, action).admits_role(view.authrole()),
                        ..Decision::DENIED
                    }),
                    None => Ok(Decision::DENIED),
                },
                Check::Ask => Err(Undecided("the permission changed while it was being decided; try again".into())),
            }
        })
    }

    fn guard(&self, req: Request<'_>) -> Option<Arc<dyn Guard>> {
        let patterned = req.policy != MatchPolicy::Exact;
        match &self.holder {
            Holder::User(p) if patterned => Some(Arc::new(PatternGuard {
                inner: self.inner.clone(),
                holder: PatternHolder::User(p.clone()),
            })),
            Holder::User(p) => {
                let m = self.inner.policy.matching(req.uri)?;
                let level = self.inner.policy.need(m.rule, req.action).level?;
                let object = self.cache().object(m.object?);
                let pin = self.cache().pin(object, &p.user);
                Some(Arc::new(ObjectGuard { cache: self.inner.clone(), principal: p.clone(), pin, need: level, memo: AtomicU64::new(0) }))
            }
            // A service's pattern subscription may overlap rules that admit its role and
            // rules that do not: each event is decided on its own topic.
            Holder::Service { authrole, .. } if patterned => Some(Arc::new(PatternGuard {
                inner: self.inner.clone(),
                holder: PatternHolder::Service(authrole.clone()),
            })),
            Holder::Service { .. } => None,
        }
    }
}

impl GraphPermissions {
    fn clone_holder(&self) -> Holder {
        match &self.holder {
            Holder::User(p) => Holder::User(p.clone()),
            Holder::Service { authrole, role } => Holder::Service { authrole: authrole.clone(), role: role.clone() },
        }
    }

    fn authrole(&self) -> &str {
        match &self.holder {
            Holder::User(_) => USER_ROLE,
            Holder::Service { authrole, .. } => authrole,
        }
    }
}

/// The guard of a user's subscription or registration on one object: one atomic load
/// per event while nothing changed (the level is memoized with the epoch it is valid
/// for, packed into one word).
#[derive(Debug)]
struct ObjectGuard {
    cache: Arc<Inner>,
    principal: Arc<PrincipalEntry>,
    pin: Pin,
    need: Level,
    /// `epoch << 2 | level`; 0 = nothing memoized.
    memo: AtomicU64,
}

impl Guard for ObjectGuard {
    fn admits(&self, _topic: &str) -> Admit {
        let cache = &self.cache.cache;
        let epoch = cache.epoch();
        let memo = self.memo.load(Ordering::Acquire);
        let level = if memo >> 2 == epoch {
            level_from_bits(memo & 3)
        } else {
            match cache.level(&self.principal, &self.pin.object) {
                Known::Level(l) => {
                    self.memo.store(epoch << 2 | l.as_i16() as u64, Ordering::Release);
                    l
                }
                Known::Unknown => return Admit::Hold,
            }
        };
        if level >= self.need {
            Admit::Yes
        } else {
            Admit::No
        }
    }
}

fn level_from_bits(bits: u64) -> Level {
    Level::from_i16(bits as i16).unwrap_or(Level::None)
}

/// The guard of a pattern subscription: each event is decided on its own topic.
#[derive(Debug)]
struct PatternGuard {
    inner: Arc<Inner>,
    holder: PatternHolder,
}

#[derive(Debug)]
enum PatternHolder {
    User(Arc<PrincipalEntry>),
    Service(String),
}

fn admit(yes: bool) -> Admit {
    if yes {
        Admit::Yes
    } else {
        Admit::No
    }
}

impl Guard for PatternGuard {
    fn admits(&self, topic: &str) -> Admit {
        let policy = &self.inner.policy;
        let principal = match &self.holder {
            PatternHolder::Service(role) => {
                return match policy.matching(topic) {
                    Some(m) => admit(policy.need(m.rule, Action::Subscribe).admits_role(role)),
                    None => admit(self.inner.roles.decision(role, Action::Subscribe, topic).allowed),
                }
            }
            PatternHolder::User(p) => p,
        };
        let Some(m) = policy.matching(topic) else { return Admit::No };
        let need: &Need = policy.need(m.rule, Action::Subscribe);
        let (Some(level), Some(object)) = (need.level, m.object) else {
            return role_admits(need, principal).map_or(Admit::Hold, admit);
        };
        let cache = &self.inner.cache;
        let known = match cache.memoized(principal, object) {
            Some(l) => Known::Level(l),
            None => match cache.existing_object(object) {
                Some(o) => cache.level(principal, &o),
                None => Known::Unknown,
            },
        };
        match known {
            Known::Level(l) if l >= level => Admit::Yes,
            Known::Level(_) => Admit::No,
            Known::Unknown => Admit::Hold,
        }
    }
}
