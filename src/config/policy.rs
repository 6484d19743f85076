//! The `[graph]` table of a realm and the policy file it names: URI templates mapped
//! to a graph object and what each action needs. Like the rest of the configuration,
//! every error is collected with its file, line and column; a policy file's errors
//! point into the policy file.

use std::path::Path;

use toml::Spanned;

use super::error::{ConfigError, Source};
use super::raw::{RawGraph, RawPolicy, RawRequirement, RawRule};
use super::{GraphConfig, LevelName, PolicyConfig, PolicyRule, Requirement, RoleConfig};
use crate::wamp::uri::{is_valid, MatchPolicy};

/// The placeholder for the object id in a template.
const OBJECT: &str = "{object}";

const DEFAULT_CACHE_PRINCIPALS: usize = 10_000;
const DEFAULT_CACHE_OBJECTS: usize = 100_000;

/// Validates `[graph]` of a realm found in `src`; its policy file is resolved against
/// the folder of `src`.
/// The authroles of the graph's users (`auth::graph::USER_ROLE`, `ADMIN_ROLE`): a rule
/// may name them without the realm file defining them, the graph decides who has them.
pub const GRAPH_ROLES: [&str; 2] = ["user", "admin"];

pub(super) fn graph(src: &Source, raw: Spanned<RawGraph>, roles: &[RoleConfig], errors: &mut Vec<ConfigError>) -> GraphConfig {
    let raw = raw.into_inner();
    let cache = |v: Option<Spanned<i64>>, default: usize, errors: &mut Vec<ConfigError>| match v {
        None => default,
        Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
        Some(n) => {
            errors.push(src.error(n.span(), "must be at least 1"));
            default
        }
    };
    let cache_principals = cache(raw.cache_principals, DEFAULT_CACHE_PRINCIPALS, errors);
    let cache_objects = cache(raw.cache_objects, DEFAULT_CACHE_OBJECTS, errors);
    if let Some(url) = &raw.database_url {
        if !(url.get_ref().starts_with("postgres://") || url.get_ref().starts_with("postgresql://")) {
            errors.push(src.error(url.span(), "database_url must be a postgres:// or postgresql:// URL"));
        }
    }
    let dir = src.file.parent().unwrap_or(Path::new("."));
    let file = dir.join(raw.policy.get_ref());
    let rules = match std::fs::read_to_string(&file) {
        Ok(text) => policy(&Source::new(&file, &text), roles, errors),
        Err(e) => {
            errors.push(src.error(raw.policy.span(), format!("cannot read policy file `{}`: {e}", file.display())));
            Vec::new()
        }
    };
    GraphConfig {
        database_url: raw.database_url.map(Spanned::into_inner),
        migrate: raw.migrate,
        cache_principals,
        cache_objects,
        policy: PolicyConfig { file, rules },
    }
}

fn policy(src: &Source, roles: &[RoleConfig], errors: &mut Vec<ConfigError>) -> Vec<PolicyRule> {
    let raw: RawPolicy = match src.parse() {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut rules: Vec<PolicyRule> = Vec::with_capacity(raw.rules.len());
    for r in raw.rules {
        let span = r.uri.span();
        let Some(rule) = rule(src, r, roles, errors) else { continue };
        if rules.iter().any(|other| other.template == rule.template) {
            errors.push(src.error(span, format!("duplicate rule for `{}`", rule.uri())));
            continue;
        }
        rules.push(rule);
    }
    rules
}

fn rule(src: &Source, raw: RawRule, roles: &[RoleConfig], errors: &mut Vec<ConfigError>) -> Option<PolicyRule> {
    let uri = raw.uri.get_ref();
    let template: Vec<Option<String>> =
        uri.split('.').map(|c| if c == OBJECT { None } else { Some(c.to_owned()) }).collect();
    let objects = template.iter().filter(|c| c.is_none()).count();
    // The literal parts are checked as a URI with the placeholder replaced by a valid
    // component (ids are the platform's, checked by the loose rules).
    let literal = uri.replace(OBJECT, "x");
    if objects > 1 || !is_valid(&literal, MatchPolicy::Exact, false) || literal.contains(['{', '}']) {
        let msg = format!("URI template `{uri}` is not valid: dot-separated components, at most one of them `{OBJECT}`");
        errors.push(src.error(raw.uri.span(), msg));
        return None;
    }
    let at = |action: &'static str| RequirementSite { src, span: raw.uri.span(), action, has_object: objects == 1, roles };
    Some(PolicyRule {
        template,
        publish: at("publish").requirement(raw.publish, errors),
        subscribe: at("subscribe").requirement(raw.subscribe, errors),
        call: at("call").requirement(raw.call, errors),
        register: at("register").requirement(raw.register, errors),
    })
}

/// Where a requirement stands, for its errors: serde's untagged enums keep no spans,
/// so they point at the rule's `uri` and name the action.
struct RequirementSite<'a> {
    src: &'a Source<'a>,
    span: std::ops::Range<usize>,
    action: &'static str,
    has_object: bool,
    roles: &'a [RoleConfig],
}

impl RequirementSite<'_> {
    fn requirement(&self, raw: Option<RawRequirement>, errors: &mut Vec<ConfigError>) -> Requirement {
        let (level, role_names) = match raw {
            None => return Requirement::default(),
            Some(RawRequirement::Level(l)) => (Some(l), Vec::new()),
            Some(RawRequirement::Table(t)) => (t.level, t.roles),
        };
        let mut error = |msg: String| errors.push(self.src.error(self.span.clone(), format!("{}: {msg}", self.action)));
        let level = level.and_then(|l| match LevelName::parse(&l) {
            None => {
                error(format!("unknown level `{l}`, expected `read`, `write` or `manage`"));
                None
            }
            Some(_) if !self.has_object => {
                error(format!("a level needs an object, and this URI template has no `{OBJECT}`"));
                None
            }
            parsed => parsed,
        });
        for r in &role_names {
            if !self.roles.iter().any(|known| known.name == *r) && !GRAPH_ROLES.contains(&r.as_str()) {
                error(format!("role `{r}` is not defined in the realm"));
            }
        }
        Requirement { level, roles: role_names }
    }
}
