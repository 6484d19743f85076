//! A realm's policy (`policies/<realm>.toml`), compiled for matching: which rule a URI
//! falls under, which graph object it names, and what each action needs.
//!
//! Matching splits nothing and allocates nothing: a URI is compared with each template
//! component by component, and the object id is a slice of the URI. A template without
//! `{object}` beats one with it, so a literal rule can carve an exception.

use crate::auth::Action;
use crate::config::{LevelName, PolicyConfig, Requirement};
use crate::wamp::uri::MatchPolicy;

use super::Level;

/// What one action of a rule needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Need {
    /// This level on the rule's object, for users of the graph.
    pub level: Option<Level>,
    /// Or one of these static roles.
    pub roles: Vec<String>,
}

impl Need {
    fn from_config(r: &Requirement) -> Need {
        let level = r.level.map(|l| match l {
            LevelName::Read => Level::Read,
            LevelName::Write => Level::Write,
            LevelName::Manage => Level::Manage,
        });
        Need { level, roles: r.roles.clone() }
    }

    pub fn admits_role(&self, authrole: &str) -> bool {
        self.roles.iter().any(|r| r == authrole)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `None` stands for `{object}`.
    template: Vec<Option<String>>,
    /// Indexed by `action_index`.
    needs: [Need; 4],
}

fn action_index(a: Action) -> usize {
    match a {
        Action::Publish => 0,
        Action::Subscribe => 1,
        Action::Call => 2,
        Action::Register => 3,
    }
}

/// The rule a URI falls under, and the object it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'a> {
    pub rule: usize,
    /// The `{object}` component of the URI, if the template has one.
    pub object: Option<&'a str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    pub fn from_config(cfg: &PolicyConfig) -> Policy {
        let rules = cfg
            .rules
            .iter()
            .map(|r| Rule {
                template: r.template.clone(),
                needs: [&r.publish, &r.subscribe, &r.call, &r.register].map(Need::from_config),
            })
            .collect();
        Policy { rules }
    }

    pub fn need(&self, rule: usize, action: Action) -> &Need {
        &self.rules[rule].needs[action_index(action)]
    }

    /// The rule `uri` falls under: a literal template before one with `{object}`.
    pub fn matching<'a>(&self, uri: &'a str) -> Option<Matched<'a>> {
        let mut best: Option<Matched<'a>> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let mut object = None;
            let mut parts = uri.split('.');
            let fits = rule.template.iter().all(|t| match (t, parts.next()) {
                (Some(lit), Some(c)) => lit == c,
                (None, Some(c)) if !c.is_empty() => {
                    object = Some(c);
                    true
                }
                _ => false,
            }) && parts.next().is_none();
            if !fits {
                continue;
            }
            if object.is_none() {
                return Some(Matched { rule: i, object: None });
            }
            best = best.or(Some(Matched { rule: i, object }));
        }
        best
    }

    /// The rules whose URIs a subscription or registration `pattern` under `policy`
    /// can match (for an exact pattern: the one rule it falls under).
    pub fn overlapping(&self, pattern: &str, policy: MatchPolicy) -> Vec<usize> {
        match policy {
            MatchPolicy::Exact => self.matching(pattern).map(|m| m.rule).into_iter().collect(),
            MatchPolicy::Prefix => (0..self.rules.len()).filter(|&i| prefix_overlaps(&self.rules[i].template, pattern)).collect(),
            MatchPolicy::Wildcard => {
                (0..self.rules.len()).filter(|&i| wildcard_overlaps(&self.rules[i].template, pattern)).collect()
            }
        }
    }
}

/// Whether some URI of `template` starts with `prefix`.
fn prefix_overlaps(template: &[Option<String>], prefix: &str) -> bool {
    let parts: Vec<&str> = prefix.split('.').collect();
    let Some((last, whole)) = parts.split_last() else { return false };
    if whole.len() >= template.len() {
        return false;
    }
    let whole_fit = whole.iter().zip(template).all(|(p, t)| match t {
        Some(lit) => lit == p,
        None => !p.is_empty(),
    });
    whole_fit
        && match &template[whole.len()] {
            Some(lit) => lit.starts_with(last),
            None => true,
        }
}

/// Whether some URI of `template` matches the wildcard `pattern` (same number of
/// components, an empty component matching any).
fn wildcard_overlaps(template: &[Option<String>], pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == template.len()
        && parts.iter().zip(template).all(|(p, t)| p.is_empty() || t.as_ref().is_none_or(|lit| lit == p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicyRule;

    fn policy() -> Policy {
        let rule = |uri: &str, subscribe: Requirement| PolicyRule {
            template: uri.split('.').map(|c| (c != "{object}").then(|| c.to_owned())).collect(),
            publish: Requirement { level: Some(LevelName::Write), roles: vec!["controller".into()] },
            subscribe,
            call: Requirement::default(),
            register: Requirement::default(),
        };
        let read = Requirement { level: Some(LevelName::Read), roles: vec![] };
        Policy::from_config(&PolicyConfig {
            file: "p.toml".into(),
            rules: vec![
                rule("containers.{object}.logs", read.clone()),
                rule("containers.{object}.events", read.clone()),
                rule("containers.special.logs", Requirement { level: None, roles: vec!["ops".into()] }),
                rule("dispatch.containers", Requirement { level: None, roles: vec!["dispatcher".into()] }),
            ],
        })
    }

    #[test]
    fn a_uri_falls_under_its_rule_and_names_its_object() {
        let p = policy();
        assert_eq!(p.matching("containers.zzzzz-dz642-0123456789abcde.logs"), Some(Matched { rule: 0, object: Some("zzzzz-dz642-0123456789abcde") }));
        assert_eq!(p.matching("containers.x.events"), Some(Matched { rule: 1, object: Some("x") }));
        // A literal template wins over {object}.
        assert_eq!(p.matching("containers.special.logs"), Some(Matched { rule: 2, object: None }));
        assert_eq!(p.matching("dispatch.containers"), Some(Matched { rule: 3, object: None }));
        for none in ["containers..logs", "containers.x.logs.more", "containers.x", "other", ""] {
            assert_eq!(p.matching(none), None, "{none}");
        }
        assert_eq!(p.need(0, Action::Subscribe).level, Some(Level::Read));
        assert!(p.need(0, Action::Publish).admits_role("controller"));
        assert_eq!(p.need(0, Action::Call), &Need::default());
    }

    #[test]
    fn patterns_overlap_the_rules_they_can_match() {
        let p = policy();
        assert_eq!(p.overlapping("containers.", MatchPolicy::Prefix), vec![0, 1, 2]);
        assert_eq!(p.overlapping("", MatchPolicy::Prefix), vec![0, 1, 2, 3]);
        assert_eq!(p.overlapping("contain", MatchPolicy::Prefix), vec![0, 1, 2]);
        assert_eq!(p.overlapping("containers.x.l", MatchPolicy::Prefix), vec![0]);
        assert_eq!(p.overlapping("containers.special.logs", MatchPolicy::Prefix), vec![0, 2]);
        assert_eq!(p.overlapping("dispatch.containers.x", MatchPolicy::Prefix), Vec::<usize>::new());
        assert_eq!(p.overlapping("containers..events", MatchPolicy::Wildcard), vec![1]);
        assert_eq!(p.overlapping("..logs", MatchPolicy::Wildcard), vec![0, 2]);
        assert_eq!(p.overlapping("containers.x.", MatchPolicy::Wildcard), vec![0, 1]);
        assert_eq!(p.overlapping("containers.x.logs", MatchPolicy::Exact), vec![0]);
    }
}
