//! Which topics a realm stores, and for how long: rules by URI pattern, first match
//! wins, in the order the realm file lists them. A topic no rule names is not stored
//! and costs nothing beyond the rule lookup (none at all when the realm has no rules).

use std::time::Duration;

use crate::wamp::uri::{self, MatchPolicy};

/// How much of one topic is kept. An event leaves when any bound is passed (oldest
/// first), or earlier when the realm's byte budget needs the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_events: usize,
    pub max_age: Option<Duration>,
    pub max_bytes: Option<usize>,
    /// Also written to PostgreSQL; PUBLISHED (when asked for) waits for the commit.
    pub durable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub uri: String,
    pub policy: MatchPolicy,
    pub limits: Limits,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retention {
    rules: Vec<Rule>,
    /// Bytes all of the realm's stored events may take together.
    pub budget_bytes: usize,
}

impl Retention {
    pub fn new(rules: Vec<Rule>, budget_bytes: usize) -> Retention {
        Retention { rules, budget_bytes }
    }

    /// Stores nothing.
    pub fn none() -> Retention {
        Retention::default()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule wants durability (then the realm needs a database).
    pub fn any_durable(&self) -> bool {
        self.rules.iter().any(|r| r.limits.durable)
    }

    /// The limits for `topic`, or `None` if it is not stored. The router's own topics
    /// (`wamp.`: meta events) are never stored, whatever a broad rule says.
    pub fn limits(&self, topic: &str) -> Option<Limits> {
        if uri::is_reserved(topic) {
            return None;
        }
        self.rules.iter().find(|r| uri::matches(&r.uri, r.policy, topic)).map(|r| r.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(uri: &str, policy: MatchPolicy, max_events: usize) -> Rule {
        Rule { uri: uri.into(), policy, limits: Limits { max_events, max_age: None, max_bytes: None, durable: false } }
    }

    #[test]
    fn the_first_matching_rule_wins_and_unnamed_topics_are_not_stored() {
        let r = Retention::new(
            vec![
                rule("containers..logs", MatchPolicy::Wildcard, 10_000),
                rule("containers.", MatchPolicy::Prefix, 100),
                rule("records.r1.changes", MatchPolicy::Exact, 1),
            ],
            1 << 20,
        );
        assert_eq!(r.limits("containers.c1.logs").map(|l| l.max_events), Some(10_000));
        assert_eq!(r.limits("containers.c1.events").map(|l| l.max_events), Some(100));
        assert_eq!(r.limits("records.r1.changes").map(|l| l.max_events), Some(1));
        assert_eq!(r.limits("records.r2.changes"), None);
        assert_eq!(Retention::none().limits("anything"), None);
        let all = Retention::new(vec![rule("", MatchPolicy::Prefix, 5)], 1 << 20);
        assert_eq!(all.limits("wamp.session.on_join"), None, "meta events are never stored");
        assert_eq!(all.limits("x").map(|l| l.max_events), Some(5));
    }
}
