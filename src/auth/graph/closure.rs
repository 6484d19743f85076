//! What one user reaches among principals: the user's closure.
//!
//! Objects never lead to principals (an object's only out-edges are `read_via` edges to
//! other objects), so every path between two principals runs through principals alone,
//! and one walk from the user over grants and ownership finds the user's level on every
//! principal and whether that principal passes permissions on. A level on an object then
//! needs only the object's in-edges (`access.rs`) and this closure.

use std::collections::{BTreeSet, HashMap};

use super::{Level, PrincipalKind};

/// Where a user stands before any path is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No principal has this id: level 0 on everything.
    Unknown,
    /// The id names a role or a project. Only users hold permissions of their own
    /// (a role's members hold its permissions through it): level 0 on everything.
    NotAUser(PrincipalKind),
    /// A disabled user: level 0 on everything, itself included.
    Disabled,
    /// An enabled admin: manage on everything, ids that exist in no table included.
    Admin,
    /// An enabled user: manage on itself, the rest follows from the paths.
    Active,
}

/// A principal on some path from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// The best level over all paths to it.
    pub level: Level,
    /// Whether paths continue out of it: a role or project that is not trashed, or a
    /// user reached at manage that is not disabled.
    pub passes: bool,
}

impl Reached {
    /// The pass rule of the platform's semantics, for a principal other than the user
    /// the walk started from (which always passes).
    pub fn new(kind: PrincipalKind, level: Level, disabled: bool, trashed: bool) -> Reached {
        let passes = match kind {
            PrincipalKind::Role | PrincipalKind::Project => !trashed,
            PrincipalKind::User => level == Level::Manage && !disabled,
        };
        Reached { level, passes }
    }
}

/// The principals a user reaches, with their levels; see the module comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    user: String,
    standing: Standing,
    /// Every principal other than the user on a path from the user.
    reached: HashMap<String, Reached>,
}

impl Closure {
    /// `reached` is ignored unless the user is `Active`: nothing else depends on paths.
    pub fn new(user: impl Into<String>, standing: Standing, mut reached: HashMap<String, Reached>) -> Closure {
        let user = user.into();
        if standing == Standing::Active {
            // The user is the start of every path, not a principal reached on one.
            reached.remove(&user);
        } else {
            reached.clear();
        }
        Closure { user, standing, reached }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// The user's level on principal `id`.
    pub fn level_of_principal(&self, id: &str) -> Level {
        match self.standing {
            Standing::Unknown | Standing::NotAUser(_) | Standing::Disabled => Level::None,
            Standing::Admin => Level::Manage,
            Standing::Active if id == self.user => Level::Manage,
            Standing::Active => self.reached.get(id).map_or(Level::None, |r| r.level),
        }
    }

    /// The level the user gets through principal `id` on whatever `id` has an edge to:
    /// its own level if paths continue out of it, none otherwise. An edge of level `l`
    /// out of `id` then gives `min(through(id), l)`.
    pub(super) fn through(&self, id: &str) -> Level {
        match self.standing {
            Standing::Active if id == self.user => Level::Manage,
            Standing::Active => match self.reached.get(id) {
                Some(r) if r.passes => r.level,
                _ => Level::None,
            },
            _ => Level::None,
        }
    }

    /// The principals this closure depends on: the user and every principal it reaches.
    ///
    /// A closure is computed from nothing but the flags and out-edges (grants by tail,
    /// ownership by owner) of these principals, and every change to such a flag or edge
    /// lists that principal in the change log's `touched`; so a change whose `touched`
    /// misses this set leaves every input of the walk as it was, the walk reaches the
    /// same principals at the same levels, and the closure cannot have changed.
    pub fn nodes(&self) -> BTreeSet<&str> {
        std::iter::once(self.user.as_str()).chain(self.reached.keys().map(String::as_str)).collect()
    }

    /// The principals reached, with their levels (the user itself not included).
    pub fn reached(&self) -> impl Iterator<Item = (&str, Reached)> {
        self.reached.iter().map(|(id, r)| (id.as_str(), *r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reached(list: &[(&str, Level, bool)]) -> HashMap<String, Reached> {
        list.iter().map(|(id, level, passes)| (id.to_string(), Reached { level: *level, passes: *passes })).collect()
    }

    #[test]
    fn standing_decides_before_paths() {
        let r = reached(&[("role", Level::Write, true)]);
        let active = Closure::new("u", Standing::Active, r.clone());
        assert_eq!(active.level_of_principal("u"), Level::Manage);
        assert_eq!(active.level_of_principal("role"), Level::Write);
        assert_eq!(active.level_of_principal("other"), Level::None);

        let admin = Closure::new("u", Standing::Admin, r.clone());
        assert_eq!(admin.level_of_principal("never-heard-of"), Level::Manage);
        assert_eq!(admin.nodes(), BTreeSet::from(["u"]));

        for standing in [Standing::Disabled, Standing::Unknown, Standing::NotAUser(PrincipalKind::Role)] {
            let c = Closure::new("u", standing, r.clone());
            assert_eq!(c.level_of_principal("u"), Level::None, "{standing:?}");
            assert_eq!(c.level_of_principal("role"), Level::None, "{standing:?}");
        }
    }

    #[test]
    fn only_passing_principals_lead_on() {
        let c = Closure::new(
            "u",
            Standing::Active,
            reached(&[("u", Level::Read, false), ("role", Level::Write, true), ("friend", Level::Read, false)]),
        );
        assert_eq!(c.through("u"), Level::Manage, "the user passes whatever a cycle back to it says");
        assert_eq!(c.through("role"), Level::Write);
        assert_eq!(c.through("friend"), Level::None);
        assert_eq!(c.level_of_principal("friend"), Level::Read);
        assert_eq!(c.nodes(), BTreeSet::from(["friend", "role", "u"]));
    }

    #[test]
    fn pass_rule() {
        use PrincipalKind::*;
        assert!(Reached::new(Role, Level::Read, false, false).passes);
        assert!(!Reached::new(Project, Level::Manage, false, true).passes);
        assert!(Reached::new(Project, Level::Manage, true, false).passes, "disabled is a user's flag");
        assert!(Reached::new(User, Level::Manage, false, true).passes, "trashed is a role's or project's flag");
        assert!(!Reached::new(User, Level::Write, false, false).passes);
        assert!(!Reached::new(User, Level::Manage, true, false).passes);
    }
}
