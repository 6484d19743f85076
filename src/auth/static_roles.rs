//! Static roles from the realm config, as Crossbar users know them: a role is a list of
//! permissions (URI, match policy, allowed actions, disclosure). The most specific
//! matching permission decides: an exact match first, then the longest matching prefix
//! or wildcard pattern. No match means denied.

use std::collections::HashMap;

use super::{Action, Authorizer, Decision};
use crate::config::{Permission, RealmConfig};
use crate::wamp::uri::{matches, MatchPolicy};

#[derive(Debug, Default)]
pub struct StaticRoles {
    roles: HashMap<String, Vec<Permission>>,
}

impl StaticRoles {
    pub fn from_config(realm: &RealmConfig) -> StaticRoles {
        StaticRoles { roles: realm.roles.iter().map(|r| (r.name.clone(), r.permissions.clone())).collect() }
    }

    fn best<'a>(perms: &'a [Permission], uri: &str) -> Option<&'a Permission> {
        perms
            .iter()
            .filter(|p| matches(&p.uri, p.match_policy, uri))
            // Exact beats any pattern; among patterns the longer one is more specific.
            .max_by_key(|p| (p.match_policy == MatchPolicy::Exact, p.uri.len()))
    }
}

impl Authorizer for StaticRoles {
    fn authorize(&self, authrole: &str, action: Action, uri: &str) -> Decision {
        let Some(perm) = self.roles.get(authrole).and_then(|p| StaticRoles::best(p, uri)) else {
            return Decision::default();
        };
        let (allowed, disclose) = match action {
            Action::Publish => (perm.allow.publish, perm.disclose.publisher),
            Action::Subscribe => (perm.allow.subscribe, false),
            Action::Call => (perm.allow.call, perm.disclose.caller),
            Action::Register => (perm.allow.register, false),
        };
        Decision { allowed, disclose: allowed && disclose }
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
        })
    }

    #[test]
    fn most_specific_permission_decides() {
        let r = roles();
        assert!(r.authorize("user", Action::Subscribe, "com.app.x").allowed);
        assert!(!r.authorize("user", Action::Publish, "com.app.x").allowed);
        assert!(!r.authorize("user", Action::Subscribe, "com.app.admin.users").allowed);
        assert_eq!(
            r.authorize("user", Action::Call, "com.app.admin.status"),
            Decision { allowed: true, disclose: true }
        );
        assert!(r.authorize("user", Action::Publish, "com.other.public").allowed);
        assert!(!r.authorize("user", Action::Publish, "org.x").allowed);
        assert!(!r.authorize("nobody", Action::Subscribe, "com.app.x").allowed);
    }
}
