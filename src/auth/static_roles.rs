//! Static roles from the realm config, as Crossbar users know them: a role is a list of
//! permissions (URI, match policy, allowed actions, disclosure). The most specific
//! matching permission decides: an exact match first, then the longest matching prefix
//! or wildcard pattern. No match means denied.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Action, Authorizer, Check, Decision, Permissions, Request, Subject, Undecided};
use crate::config::{Permission, RealmConfig};
use crate::wamp::uri::{matches, MatchPolicy};

#[derive(Debug, Default)]
pub struct StaticRoles {
    /// One view per role, shared by every session of the role.
    roles: HashMap<String, Arc<Role>>,
    /// The view of a role the realm does not define: denied everything.
    unknown: Arc<Role>,
}

/// The permissions of one role: the view its sessions are authorized through.
#[derive(Debug, Default)]
pub struct Role {
    permissions: Vec<Permission>,
}

impl StaticRoles {
    pub fn from_config(realm: &RealmConfig) -> StaticRoles {
        let roles = realm.roles.iter().map(|r| (r.name.clone(), Arc::new(Role { permissions: r.permissions.clone() }))).collect();
        StaticRoles { roles, unknown: Arc::default() }
    }

    fn role(&self, authrole: &str) -> &Arc<Role> {
        self.roles.get(authrole).unwrap_or(&self.unknown)
    }

    /// The view of `authrole` (denied everything for a role the realm does not define).
    pub fn role_view(&self, authrole: &str) -> Arc<Role> {
        self.role(authrole).clone()
    }
}

impl Role {
    fn best<'a>(perms: &'a [Permission], uri: &str) -> Option<&'a Permission> {
        perms
            .iter()
            .filter(|p| matches(&p.uri, p.match_policy, uri))
            // Exact beats any pattern; among patterns the longer one is more specific.
            .max_by_key(|p| (p.match_policy == MatchPolicy::Exact, p.uri.len()))
    }
}

impl Role {
    /// The decision for this role, from the configuration alone. A subscription or
    /// registration pattern is judged as a URI string, as Crossbar does.
    pub fn decision(&self, action: Action, uri: &str) -> Decision {
        let Some(perm) = Role::best(&self.permissions, uri) else {
            return Decision::DENIED;
        };
        let (allowed, disclose) = match action {
            Action::Publish => (perm.allow.publish, perm.disclose.publisher),
            Action::Subscribe => (perm.allow.subscribe, false),
            Action::Call => (perm.allow.call, perm.disclose.caller),
            Action::Register => (perm.allow.register, false),
        };
        Decision { allowed, disclose: allowed && disclose, revocable: false }
    }

}

impl StaticRoles {
    /// The decision for `authrole` (denied for a role the realm does not define).
    pub fn decision(&self, authrole: &str, action: Action, uri: &str) -> Decision {
        self.role(authrole).decision(action, uri)
    }

    /// Whether `authrole` is one of this realm's static roles.
    pub fn has_role(&self, authrole: &str) -> bool {
        self.roles.contains_key(authrole)
    }
}

impl Authorizer for StaticRoles {
    fn permissions(&self, who: Subject<'_>) -> Arc<dyn Permissions> {
        self.role(who.authrole).clone()
    }
}

/// Static roles never need to find out: every answer is decided at once and never
/// changes.
impl Permissions for Role {
    fn check(&self, req: Request<'_>) -> Check {
        Check::Decided(self.decision(req.action, req.uri))
    }

    fn decide(&self, req: Request<'_>) -> BoxFuture<'static, Result<Decision, Undecided>> {
        Box::pin(std::future::ready(Ok(self.decision(req.action, req.uri))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Allow, Disclose, RoleConfig};

    fn perm(uri: &str, m: MatchPolicy, allow: Allow) -> Permission {
        Permission { uri: uri.into(), match_policy: m, allow, disclose: Disclose { caller: true, publisher: false } }
    }

    fn roles() -> StaticRoles {
        let all = Allow { call: true, register: true, publish: true, subscribe: true };
        let none = Allow { call: false, register: false, publish: false, subscribe: false };
        let read = Allow { subscribe: true, ..none };
        StaticRoles::from_config(&RealmConfig {
            name: "r".into(),
            anonymous: None,
            roles: vec![RoleConfig {
                name: "user".into(),
                permissions: vec![
                    perm("com.app.", MatchPolicy::Prefix, read),
                    perm("com.app.admin.", MatchPolicy::Prefix, none),
                    perm("com.app.admin.status", MatchPolicy::Exact, all),
                    perm("com..public", MatchPolicy::Wildcard, all),
                ],
            }],
            principals: vec![],
            graph: None,
            replay: crate::config::ReplayConfig::none(),
            limits: Default::default(),
        })
    }

    #[test]
    fn most_specific_permission_decides() {
        let r = roles();
        assert!(r.decision("user", Action::Subscribe, "com.app.x").allowed);
        assert!(!r.decision("user", Action::Publish, "com.app.x").allowed);
        assert!(!r.decision("user", Action::Subscribe, "com.app.admin.users").allowed);
        assert_eq!(
            r.decision("user", Action::Call, "com.app.admin.status"),
            Decision { allowed: true, disclose: true, revocable: false }
        );
        assert!(r.decision("user", Action::Publish, "com.other.public").allowed);
        assert!(!r.decision("user", Action::Publish, "org.x").allowed);
        assert!(!r.decision("nobody", Action::Subscribe, "com.app.x").allowed);
        // Through the trait: decided at once, the same answer.
        let req = Request { action: Action::Call, uri: "com.app.admin.status", policy: MatchPolicy::Exact };
        let user = r.permissions(Subject { authid: "a", authrole: "user" });
        assert_eq!(user.check(req), Check::Decided(Decision { allowed: true, disclose: true, revocable: false }));
        let nobody = r.permissions(Subject { authid: "b", authrole: "nobody" });
        assert_eq!(nobody.check(req), Check::Decided(Decision::DENIED));
    }
}
