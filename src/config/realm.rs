//! Validation of realms: turns a `RawRealm` (inline or from a realm file) into a
//! `RealmConfig`, checking names, roles, permissions and principals (the `[graph]` and
//! `[replay]` tables have files of their own), and detects realm names defined twice
//! across all files.

use std::collections::HashMap;

use toml::Spanned;

use super::error::{ConfigError, Source};
use super::uri::uri_and_policy;
use super::principal::principals;
use super::raw::{RawPermission, RawRealm, RawRole};
use super::{Allow, Disclose, Permission, RealmConfig, ReplayConfig, RoleConfig};
use crate::wamp::uri::{is_valid, MatchPolicy};

/// The realms accepted so far, across the main file and every realm file.
#[derive(Default)]
pub(super) struct RealmSet {
    realms: Vec<RealmConfig>,
    /// Realm name -> `file:line:column` of its first definition, for duplicate errors.
    first_seen: HashMap<String, String>,
}

impl RealmSet {
    /// Validates `raw` (found in `src`) and adds it, recording errors in `errors`.
    pub fn add(&mut self, src: &Source, raw: RawRealm, errors: &mut Vec<ConfigError>) {
        let name_span = raw.name.span();
        let realm = realm(src, raw, errors);
        if let Some(first) = self.first_seen.get(&realm.name) {
            let msg = format!("duplicate realm `{}`, first defined at {first}", realm.name);
            errors.push(src.error(name_span, msg));
            return;
        }
        let (line, column) = src.position(name_span.start);
        let at = format!("{}:{line}:{column}", src.file.display());
        self.first_seen.insert(realm.name.clone(), at);
        self.realms.push(realm);
    }

    pub fn is_empty(&self) -> bool {
        self.realms.is_empty()
    }

    pub fn into_vec(self) -> Vec<RealmConfig> {
        self.realms
    }
}

fn realm(src: &Source, raw: RawRealm, errors: &mut Vec<ConfigError>) -> RealmConfig {
    let name = raw.name.get_ref().clone();
    // Realm names travel in HELLO and show up in metrics and logs: hold them to the
    // strict URI rules even though permission URIs only need the loose ones.
    if !is_valid(&name, MatchPolicy::Exact, true) {
        let msg = format!(
            "realm name `{name}` is not a valid URI (strict rules: lower-case letters, \
             digits and `_`, separated by dots)"
        );
        errors.push(src.error(raw.name.span(), msg));
    }
    let roles = roles(src, raw.roles, errors);
    let anonymous = raw.anonymous.map(|anon| {
        if !roles.iter().any(|r| r.name == *anon.get_ref()) {
            let msg = format!(
                "anonymous role `{}` is not defined in realm `{name}`",
                anon.get_ref()
            );
            errors.push(src.error(anon.span(), msg));
        }
        anon.into_inner()
    });
    let principals = principals(src, &name, raw.principals, &roles, errors);
    let graph = raw.graph.map(|g| super::policy::graph(src, g, &roles, errors));
    let replay = raw
        .replay
        .map_or_else(ReplayConfig::none, |r| super::replay::replay(src, r, errors));
    let limits = raw.limits.map(|l| super::realm_limits::realm_limits(src, &l, errors)).unwrap_or_default();
    RealmConfig {
        name,
        anonymous,
        roles,
        principals,
        graph,
        replay,
        limits,
    }
}

/// Tracks names already used within one realm so a repeat can say where the first was.
#[derive(Default)]
struct Seen(HashMap<String, usize>);

impl Seen {
    /// Records `name`; on a repeat returns the line of the first occurrence.
    fn first_line(&mut self, src: &Source, name: &Spanned<String>) -> Option<usize> {
        let line = src.position(name.span().start).0;
        match self.0.get(name.get_ref()) {
            Some(&first) => Some(first),
            None => {
                self.0.insert(name.get_ref().clone(), line);
                None
            }
        }
    }
}

fn roles(src: &Source, raw: Vec<RawRole>, errors: &mut Vec<ConfigError>) -> Vec<RoleConfig> {
    let mut seen = Seen::default();
    let mut roles = Vec::with_capacity(raw.len());
    for role in raw {
        if role.name.get_ref().is_empty() {
            errors.push(src.error(role.name.span(), "role name must not be empty"));
        } else if let Some(first) = seen.first_line(src, &role.name) {
            let msg = format!(
                "duplicate role `{}`, first defined on line {first}",
                role.name.get_ref()
            );
            errors.push(src.error(role.name.span(), msg));
            continue;
        }
        let permissions = role
            .permissions
            .into_iter()
            .map(|p| permission(src, p, errors))
            .collect();
        roles.push(RoleConfig {
            name: role.name.into_inner(),
            permissions,
        });
    }
    roles
}

fn permission(src: &Source, raw: RawPermission, errors: &mut Vec<ConfigError>) -> Permission {
    let match_policy = uri_and_policy(src, &raw.uri, raw.match_policy.as_ref(), errors);
    let a = raw.allow;
    let d = raw.disclose;
    Permission {
        uri: raw.uri.into_inner(),
        match_policy: match_policy.unwrap_or_default(),
        allow: Allow {
            call: a.call,
            register: a.register,
            publish: a.publish,
            subscribe: a.subscribe,
        },
        disclose: Disclose {
            caller: d.caller,
            publisher: d.publisher,
        },
    }
}

