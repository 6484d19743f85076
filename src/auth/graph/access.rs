//! What decides the levels on one object: its in-edges, and those of every object it
//! is readable through. Together with a user's [`Closure`] this gives the user's level
//! on the object without another query, so one `ObjectAccess` serves every user.
//!
//! An object's in-edges are its owner (manage), the grants whose head it is, and its
//! `read_via` rows (read, for whoever can read the via). A via that is a principal is
//! answered by the closure; a via that is not (an object, or an id in no table) is
//! itself decided by its own in-edges, so the walk follows it, and `read_via` cycles
//! end because each node is visited once.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Closure, Level, Standing};

/// One fact about a node visited by the walk, as the query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessRow {
    /// The walk reached this node: every in-edge of it is in the other rows.
    Visited(String),
    /// `objects.owner_id`: the owner has manage on the object.
    Owner { object: String, owner: String },
    /// A grant `tail → head` at `level`.
    Grant { head: String, tail: String, level: Level },
    /// `object` is readable by whoever can read `via`.
    ReadVia { object: String, via: String },
}

#[derive(Debug, Clone, Default, PartialEq)]
struct InEdges {
    owner: Option<String>,
    grants: Vec<(String, Level)>,
    vias: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectAccess {
    object: String,
    /// Every node the walk visited (the object included) with its in-edges. A via
    /// missing from here is a principal.
    visited: HashMap<String, InEdges>,
}

impl ObjectAccess {
    pub fn new(object: impl Into<String>) -> ObjectAccess {
        let object = object.into();
        let visited = HashMap::from([(object.clone(), InEdges::default())]);
        ObjectAccess { object, visited }
    }

    pub fn from_rows(object: impl Into<String>, rows: impl IntoIterator<Item = AccessRow>) -> ObjectAccess {
        let mut access = ObjectAccess::new(object);
        for row in rows {
            access.add(row);
        }
        access
    }

    pub fn add(&mut self, row: AccessRow) {
        match row {
            AccessRow::Visited(node) => {
                self.visited.entry(node).or_default();
            }
            AccessRow::Owner { object, owner } => self.visited.entry(object).or_default().owner = Some(owner),
            AccessRow::Grant { head, tail, level } => self.visited.entry(head).or_default().grants.push((tail, level)),
            AccessRow::ReadVia { object, via } => self.visited.entry(object).or_default().vias.push(via),
        }
    }

    pub fn object(&self) -> &str {
        &self.object
    }

    /// The nodes the answer depends on: every node visited (the object and the vias
    /// that are not principals), and every owner, grant tail and via they mention.
    ///
    /// The in-edges of a visited node change only through a change to its `objects`
    /// row, a grant whose head it is or a `read_via` row of it, and each of these lists
    /// the node in the change log's `touched`; the principals mentioned are answered by
    /// the user's closure, whose own `nodes()` cover them, so a change whose `touched`
    /// misses both sets cannot change [`Closure::level_on`].
    pub fn nodes(&self) -> BTreeSet<&str> {
        let mut nodes = BTreeSet::new();
        for (node, edges) in &self.visited {
            nodes.insert(node.as_str());
            nodes.extend(edges.owner.as_deref());
            nodes.extend(edges.grants.iter().map(|(tail, _)| tail.as_str()));
            nodes.extend(edges.vias.iter().map(String::as_str));
        }
        nodes
    }
}

impl Closure {
    /// The user's level on the object of `access`. For a principal as the target use
    /// [`Closure::level_of_principal`]: a principal's ownership is not in an
    /// `ObjectAccess`.
    pub fn level_on(&self, access: &ObjectAccess) -> Level {
        match self.standing() {
            Standing::Admin => return Level::Manage,
            Standing::Active => {}
            Standing::Unknown | Standing::NotAUser(_) | Standing::Disabled => return Level::None,
        }
        let direct = |edges: &InEdges| {
            let owned = edges.owner.as_deref().map_or(Level::None, |o| self.through(o));
            let granted = edges.grants.iter().map(|(tail, level)| self.through(tail).min(*level));
            granted.fold(owned, Level::max)
        };
        let target = access.visited.get(&access.object).map_or(Level::None, direct);
        if target >= Level::Read {
            return target;
        }

        // Who can read what: a least fixpoint over the read_via edges among the visited
        // nodes, from the nodes readable on their own (a direct level, or a via that is
        // a principal the user can read). Each node enters the queue once, so cycles end.
        let mut readers: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut readable: HashSet<&str> = HashSet::new();
        let mut queue: Vec<&str> = Vec::new();
        for (node, edges) in &access.visited {
            for via in &edges.vias {
                readers.entry(via.as_str()).or_default().push(node.as_str());
            }
            let by_principal = || {
                edges.vias.iter().any(|v| !access.visited.contains_key(v) && self.level_of_principal(v) >= Level::Read)
            };
            if direct(edges) >= Level::Read || by_principal() {
                readable.insert(node.as_str());
                queue.push(node.as_str());
            }
        }
        while let Some(node) = queue.pop() {
            for &reader in readers.get(node).into_iter().flatten() {
                if readable.insert(reader) {
                    queue.push(reader);
                }
            }
        }
        if readable.contains(access.object.as_str()) {
            Level::Read
        } else {
            target
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::graph::Reached;

    fn user(reached: &[(&str, Level, bool)]) -> Closure {
        let reached = reached.iter().map(|(id, level, passes)| (id.to_string(), Reached { level: *level, passes: *passes }));
        Closure::new("u", Standing::Active, reached.collect())
    }

    fn grant(head: &str, tail: &str, level: Level) -> AccessRow {
        AccessRow::Grant { head: head.into(), tail: tail.into(), level }
    }

    fn via(object: &str, via: &str) -> AccessRow {
        AccessRow::ReadVia { object: object.into(), via: via.into() }
    }

    fn visited(node: &str) -> AccessRow {
        AccessRow::Visited(node.into())
    }

    #[test]
    fn owner_and_grants_give_the_weakest_edge_of_the_best_path() {
        let c = user(&[("role", Level::Write, true), ("project", Level::Read, true), ("friend", Level::Read, false)]);
        let o = ObjectAccess::from_rows(
            "o",
            [
                AccessRow::Owner { object: "o".into(), owner: "project".into() },
                grant("o", "role", Level::Manage),
                grant("o", "friend", Level::Manage),
            ],
        );
        assert_eq!(c.level_on(&o), Level::Write, "min(write, manage) through the role beats read through the owner");
        assert_eq!(o.nodes(), BTreeSet::from(["friend", "o", "project", "role"]));
        let mine = ObjectAccess::from_rows("o", [AccessRow::Owner { object: "o".into(), owner: "u".into() }]);
        assert_eq!(c.level_on(&mine), Level::Manage);
        assert_eq!(c.level_on(&ObjectAccess::new("o")), Level::None);
    }

    #[test]
    fn read_via_gives_read_through_objects_principals_and_cycles() {
        let c = user(&[("friend", Level::Read, false)]);
        // o is readable via request r; r via o (a cycle) and via the user's friend.
        let rows = [visited("o"), visited("r"), via("o", "r"), via("r", "o"), via("r", "friend")];
        let o = ObjectAccess::from_rows("o", rows.clone());
        assert_eq!(c.level_on(&o), Level::Read, "reading a principal is enough: it need not pass");
        let stranger = user(&[]);
        assert_eq!(stranger.level_on(&o), Level::None, "the cycle alone gives nothing");
        // A via never gives more than read, whatever the level on it.
        let rows = [visited("o"), visited("r"), via("o", "r"), grant("r", "u", Level::Manage)];
        assert_eq!(stranger.level_on(&ObjectAccess::from_rows("o", rows)), Level::Read);
        assert_eq!(o.nodes(), BTreeSet::from(["friend", "o", "r"]));
    }

    #[test]
    fn standing_decides_before_edges() {
        let o = ObjectAccess::from_rows("o", [grant("o", "u", Level::Write)]);
        assert_eq!(user(&[]).level_on(&o), Level::Write);
        assert_eq!(Closure::new("u", Standing::Admin, HashMap::new()).level_on(&ObjectAccess::new("x")), Level::Manage);
        assert_eq!(Closure::new("u", Standing::Disabled, HashMap::new()).level_on(&o), Level::None);
        assert_eq!(Closure::new("u", Standing::Unknown, HashMap::new()).level_on(&o), Level::None);
    }
}
