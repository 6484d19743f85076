//! Levels on random graphs (principals of every kind and flag, owner links, objects,
//! grants, `read_via` rows, cycles of each) against a reference model that follows the
//! platform's rules literally; and the dependency sets: a change whose logged `touched`
//! misses an answer's nodes must leave that answer as it was.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use sqlx::postgres::PgPool;
use switchyard::auth::graph::GraphStore;

use crate::sql;
use crate::support::postgres::Postgres;

#[derive(Debug, Clone)]
struct Principal {
    kind: &'static str,
    admin: bool,
    disabled: bool,
    trashed: bool,
    owner: Option<usize>,
}

/// Nodes are numbered: principals `0..np` (`p{i}`), objects `np..np+no` (`o{j}`), and
/// last an id in no table (`ghost`), which grants and `read_via` rows may still name.
#[derive(Debug, Clone)]
struct Graph {
    principals: Vec<Principal>,
    /// Each object's owner (a principal).
    objects: Vec<usize>,
    /// (tail principal, head node, level), one per (tail, head).
    grants: Vec<(usize, usize, i16)>,
    /// (object or ghost, via node), without duplicates.
    read_via: Vec<(usize, usize)>,
    /// Changes applied one by one, each after the levels are checked.
    mutations: Vec<Mutation>,
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Inserts the grant, or sets the level of the one already there.
    Grant(usize, usize, i16),
    /// Deletes the `n % len`-th grant (inserts a grant 0 → ghost when there is none).
    Ungrant(usize),
    /// Flips admin (0), disabled (1) or trashed (2) of a principal.
    Flag(usize, u8),
    PrincipalOwner(usize, Option<usize>),
    ObjectOwner(usize, usize),
    /// Inserts the `read_via` row if it is new, deletes it otherwise.
    ToggleVia(usize, usize),
}

impl Graph {
    fn np(&self) -> usize {
        self.principals.len()
    }

    fn nodes(&self) -> usize {
        self.principals.len() + self.objects.len() + 1
    }

    fn id(&self, node: usize) -> String {
        let np = self.np();
        if node < np {
            format!("p{node}")
        } else if node < np + self.objects.len() {
            format!("o{}", node - np)
        } else {
            "ghost".to_owned()
        }
    }

    /// The level of every node for `user`, following the platform's rules literally:
    /// best path, weakest edge; paths continue only out of nodes that pass; a
    /// `read_via` edge needs only read on the via. A plain fixpoint over the edges.
    fn levels(&self, user: usize) -> Vec<i16> {
        let n = self.nodes();
        let me = &self.principals[user];
        if me.kind != "user" || me.disabled {
            return vec![0; n];
        }
        if me.admin {
            return vec![3; n];
        }
        let np = self.np();
        // (from, to, level, is read_via)
        let mut edges = Vec::new();
        for (i, p) in self.principals.iter().enumerate() {
            if let Some(o) = p.owner {
                edges.push((o, i, 3, false));
            }
        }
        for (j, &o) in self.objects.iter().enumerate() {
            edges.push((o, np + j, 3, false));
        }
        edges.extend(self.grants.iter().map(|&(t, h, l)| (t, h, l, false)));
        edges.extend(self.read_via.iter().map(|&(o, v)| (v, o, 1, true)));
        let mut best = vec![0i16; n];
        best[user] = 3;
        let passes = |node: usize, best: &[i16]| {
            if node == user {
                return true;
            }
            match self.principals.get(node) {
                Some(p) if p.kind == "user" => best[node] == 3 && !p.disabled,
                Some(p) => !p.trashed,
                None => false,
            }
        };
        loop {
            let mut changed = false;
            for &(a, b, l, via) in &edges {
                let reached = if via {
                    if best[a] >= 1 { 1 } else { 0 }
                } else if passes(a, &best) {
                    best[a].min(l)
                } else {
                    0
                };
                if reached > best[b] {
                    best[b] = reached;
                    changed = true;
                }
            }
            if !changed {
                return best;
            }
        }
    }

    fn apply(&mut self, m: &Mutation) {
        match *m {
            Mutation::Grant(t, h, l) => match self.grants.iter_mut().find(|g| g.0 == t && g.1 == h) {
                Some(g) => g.2 = l,
                None => self.grants.push((t, h, l)),
            },
            Mutation::Ungrant(_) if self.grants.is_empty() => self.apply(&Mutation::Grant(0, self.nodes() - 1, 1)),
            Mutation::Ungrant(k) => {
                let k = k % self.grants.len();
                self.grants.remove(k);
            }
            Mutation::Flag(p, f) => {
                let p = &mut self.principals[p];
                match f {
                    0 => p.admin = !p.admin,
                    1 => p.disabled = !p.disabled,
                    _ => p.trashed = !p.trashed,
                }
            }
            Mutation::PrincipalOwner(p, o) => self.principals[p].owner = o,
            Mutation::ObjectOwner(j, o) => self.objects[j] = o,
            Mutation::ToggleVia(o, v) => match self.read_via.iter().position(|&r| r == (o, v)) {
                Some(k) => drop(self.read_via.remove(k)),
                None => self.read_via.push((o, v)),
            },
        }
    }

    /// The nodes the mutation names in the change log, by the trigger's rules.
    fn touched(&self, m: &Mutation) -> BTreeSet<String> {
        let ids = |nodes: &[usize]| nodes.iter().map(|&n| self.id(n)).collect();
        match *m {
            Mutation::Grant(t, h, _) => ids(&[t, h]),
            Mutation::Ungrant(_) if self.grants.is_empty() => ids(&[0, self.nodes() - 1]),
            Mutation::Ungrant(k) => {
                let (t, h, _) = self.grants[k % self.grants.len()];
                ids(&[t, h])
            }
            Mutation::Flag(p, _) => {
                let mut nodes = vec![p];
                nodes.extend(self.principals[p].owner);
                ids(&nodes)
            }
            Mutation::PrincipalOwner(p, o) => {
                let mut nodes = vec![p];
                nodes.extend(self.principals[p].owner);
                nodes.extend(o);
                ids(&nodes)
            }
            Mutation::ObjectOwner(j, o) => ids(&[self.np() + j, self.objects[j], o]),
            Mutation::ToggleVia(o, v) => ids(&[o, v]),
        }
    }

    /// The mutation in SQL; a no-op (same owner, same level) logs nothing.
    fn mutation_sql(&self, m: &Mutation) -> String {
        match *m {
            Mutation::Grant(t, h, l) => format!(
                "insert into grants values ('{}', '{}', {l}) on conflict (tail_id, head_id) do update set level = {l}",
                self.id(t),
                self.id(h)
            ),
            Mutation::Ungrant(_) if self.grants.is_empty() => self.mutation_sql(&Mutation::Grant(0, self.nodes() - 1, 1)),
            Mutation::Ungrant(k) => {
                let (t, h, _) = self.grants[k % self.grants.len()];
                format!("delete from grants where tail_id = '{}' and head_id = '{}'", self.id(t), self.id(h))
            }
            Mutation::Flag(p, f) => {
                let column = ["is_admin", "disabled", "trashed"][usize::from(f.min(2))];
                format!("update principals set {column} = not {column} where id = '{}'", self.id(p))
            }
            Mutation::PrincipalOwner(p, o) => {
                let owner = o.map_or("null".to_owned(), |o| format!("'{}'", self.id(o)));
                format!("update principals set owner_id = {owner} where id = '{}'", self.id(p))
            }
            Mutation::ObjectOwner(j, o) => {
                format!("update objects set owner_id = '{}' where id = '{}'", self.id(o), self.id(self.np() + j))
            }
            Mutation::ToggleVia(o, v) if self.read_via.contains(&(o, v)) => {
                format!("delete from read_via where object_id = '{}' and via_id = '{}'", self.id(o), self.id(v))
            }
            Mutation::ToggleVia(o, v) => format!("insert into read_via values ('{}', '{}')", self.id(o), self.id(v)),
        }
    }

    /// Every flag flip, grant deletion, `read_via` deletion and owner removal.
    fn deletions_and_flips(&self) -> Vec<Mutation> {
        let np = self.np();
        let flips = (0..np).flat_map(|p| (0..3).map(move |f| Mutation::Flag(p, f)));
        let ungrants = (0..self.grants.len()).map(Mutation::Ungrant);
        let unvias = self.read_via.iter().map(|&(o, v)| Mutation::ToggleVia(o, v));
        let disowns = (0..np).filter(|&p| self.principals[p].owner.is_some()).map(|p| Mutation::PrincipalOwner(p, None));
        flips.chain(ungrants).chain(unvias).chain(disowns).collect()
    }

    /// Whether the mutation changes a row (an update to the same value does not).
    fn mutation_changes_a_row(&self, m: &Mutation) -> bool {
        match *m {
            Mutation::Grant(t, h, l) => !self.grants.contains(&(t, h, l)),
            Mutation::PrincipalOwner(p, o) => self.principals[p].owner != o,
            Mutation::ObjectOwner(j, o) => self.objects[j] != o,
            _ => true,
        }
    }
}

fn graph() -> impl Strategy<Value = Graph> {
    (2usize..=12, 0usize..=6).prop_flat_map(|(np, no)| {
        let nodes = np + no + 1;
        let kind = prop_oneof![Just("user"), Just("role"), Just("project")];
        let principal = (kind, prop::bool::weighted(0.1), prop::bool::weighted(0.15), prop::bool::weighted(0.15))
            .prop_flat_map(move |(kind, admin, disabled, trashed)| {
                prop::option::weighted(0.4, 0..np)
                    .prop_map(move |owner| Principal { kind, admin, disabled, trashed, owner })
            });
        // A `read_via` object is an object or the ghost.
        let via_target = move |k: usize| if k == no { np + no } else { np + k };
        // Flags weigh more: a flipped flag changes what passes without changing any
        // edge, the subtlest way to invalidate an answer.
        let mutation = prop_oneof![
            1 => (0..np, 0..nodes, 1i16..=3).prop_map(|(t, h, l)| Mutation::Grant(t, h, l)),
            1 => any::<usize>().prop_map(Mutation::Ungrant),
            4 => (0..np, 0u8..3).prop_map(|(p, f)| Mutation::Flag(p, f)),
            1 => (0..np, prop::option::of(0..np)).prop_map(|(p, o)| Mutation::PrincipalOwner(p, o)),
            1 => (0..no.max(1), 0..np).prop_map(move |(j, o)| if no == 0 {
                Mutation::Flag(o, 2)
            } else {
                Mutation::ObjectOwner(j, o)
            }),
            1 => (0..=no, 0..nodes).prop_map(move |(k, v)| Mutation::ToggleVia(via_target(k), v)),
        ];
        (
            prop::collection::vec(principal, np),
            prop::collection::vec(0..np, no),
            prop::collection::vec((0..np, 0..nodes, 1i16..=3), 0..=3 * np),
            prop::collection::vec((0..=no, 0..nodes), 0..=2 * no + 1),
            prop::collection::vec(mutation, 1..=4),
        )
            .prop_map(move |(principals, objects, grants, read_via, mutations)| {
                let mut seen = HashSet::new();
                let grants = grants.into_iter().filter(|&(t, h, _)| seen.insert((t, h))).collect();
                let mut seen = HashSet::new();
                let read_via =
                    read_via.into_iter().map(|(k, v)| (via_target(k), v)).filter(|&r| seen.insert(r)).collect();
                Graph { principals, objects, grants, read_via, mutations }
            })
    })
}

async fn write_graph(pool: &PgPool, g: &Graph) {
    // Deletes, not TRUNCATE: on tables this small a truncate's new files cost ~50 ms.
    sql(
        pool,
        "delete from grants; delete from read_via; delete from tokens; delete from objects; \
         update principals set owner_id = null; delete from principals; delete from switchyard_graph_changes;",
    )
    .await;
    let ps = &g.principals;
    let ids: Vec<String> = (0..g.np()).map(|i| g.id(i)).collect();
    sqlx::query(
        "insert into principals (id, kind, is_admin, disabled, trashed) \
         select * from unnest($1::text[], $2::text[], $3::bool[], $4::bool[], $5::bool[])",
    )
    .bind(&ids)
    .bind(ps.iter().map(|p| p.kind).collect::<Vec<_>>())
    .bind(ps.iter().map(|p| p.admin).collect::<Vec<_>>())
    .bind(ps.iter().map(|p| p.disabled).collect::<Vec<_>>())
    .bind(ps.iter().map(|p| p.trashed).collect::<Vec<_>>())
    .execute(pool)
    .await
    .unwrap();
    // Owners after every principal exists: owner links may form cycles.
    let owned: Vec<(String, String)> = ps.iter().enumerate().filter_map(|(i, p)| Some((g.id(i), g.id(p.owner?)))).collect();
    sqlx::query("update principals p set owner_id = o.owner from unnest($1::text[], $2::text[]) as o (id, owner) where p.id = o.id")
        .bind(owned.iter().map(|o| o.0.clone()).collect::<Vec<_>>())
        .bind(owned.iter().map(|o| o.1.clone()).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("insert into objects (id, kind, owner_id) select id, 'thing', owner from unnest($1::text[], $2::text[]) as o (id, owner)")
        .bind((0..g.objects.len()).map(|j| g.id(g.np() + j)).collect::<Vec<_>>())
        .bind(g.objects.iter().map(|&o| g.id(o)).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("insert into grants select * from unnest($1::text[], $2::text[], $3::int2[])")
        .bind(g.grants.iter().map(|&(t, _, _)| g.id(t)).collect::<Vec<_>>())
        .bind(g.grants.iter().map(|&(_, h, _)| g.id(h)).collect::<Vec<_>>())
        .bind(g.grants.iter().map(|&(_, _, l)| l).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("insert into read_via select * from unnest($1::text[], $2::text[])")
        .bind(g.read_via.iter().map(|&(o, _)| g.id(o)).collect::<Vec<_>>())
        .bind(g.read_via.iter().map(|&(_, v)| g.id(v)).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
}

/// Writes the graph, then for each mutation in turn: checks every (user, target) pair
/// against the model, applies the mutation, checks its change-log row, and checks that
/// every answer whose nodes the row misses is unchanged (in the model, which the next
/// round checks the router against).
async fn check_graph(store: &GraphStore, g: &Graph) -> Result<(), TestCaseError> {
    write_graph(store.pool(), g).await;
    let mut g = g.clone();
    let mut first = true;
    for m in std::mem::take(&mut g.mutations) {
        let answers = check_levels(store, &g).await?;
        let before = store.last_seq().await.unwrap();
        sql(store.pool(), &g.mutation_sql(&m)).await;
        let changes = store.changes_since(before, 10).await.unwrap();
        if !g.mutation_changes_a_row(&m) {
            prop_assert!(changes.is_empty(), "a no-op logs nothing: {:?}", changes);
            continue;
        }
        prop_assert_eq!(changes.len(), 1);
        let touched: BTreeSet<String> = changes[0].touched.iter().cloned().collect();
        prop_assert_eq!(&touched, &g.touched(&m));
        check_unaffected(&g, &answers, &m, &touched)?;
        if first {
            // Every deletion and flag flip of this graph too, in the model alone: the
            // trigger's `touched` for each is what `Graph::touched` says (checked above
            // for the mutations that reach the database).
            for m in g.deletions_and_flips() {
                check_unaffected(&g, &answers, &m, &g.touched(&m))?;
            }
            first = false;
        }
        g.apply(&m);
    }
    check_levels(store, &g).await?;
    Ok(())
}

/// Fails if `m` changes, in the model, an answer whose nodes `touched` misses.
fn check_unaffected(g: &Graph, answers: &Answers, m: &Mutation, touched: &BTreeSet<String>) -> Result<(), TestCaseError> {
    let mut after = g.clone();
    after.apply(m);
    for (u, (levels, deps)) in answers.iter().enumerate() {
        let now = after.levels(u);
        for t in 0..g.nodes() {
            if deps[t].is_disjoint(touched) {
                prop_assert_eq!(
                    levels[t],
                    now[t],
                    "{} on {}: changed by {:?} touching {:?}, which misses its nodes {:?} in {:?}",
                    g.id(u),
                    g.id(t),
                    m,
                    touched,
                    deps[t],
                    g
                );
            }
        }
    }
    Ok(())
}

/// Per principal as the user: its level on every node, and the nodes each depends on.
type Answers = Vec<(Vec<i16>, Vec<BTreeSet<String>>)>;

/// For every principal as the user: the router's level on every node, checked against
/// the model, and the nodes each answer depends on.
async fn check_levels(store: &GraphStore, g: &Graph) -> Result<Answers, TestCaseError> {
    let n = g.nodes();
    let mut accesses = Vec::new();
    for t in g.np()..n {
        accesses.push(store.object_access(&g.id(t)).await.unwrap());
    }
    let mut answers = Vec::new();
    for u in 0..g.np() {
        let closure = store.closure(&g.id(u)).await.unwrap();
        let mut levels = Vec::new();
        let mut deps = Vec::new();
        for t in 0..n {
            let mut d: BTreeSet<String> = closure.nodes().into_iter().map(str::to_owned).collect();
            let level = if t < g.np() {
                closure.level_of_principal(&g.id(t))
            } else {
                let access = &accesses[t - g.np()];
                d.extend(access.nodes().into_iter().map(str::to_owned));
                closure.level_on(access)
            };
            levels.push(level.as_i16());
            deps.push(d);
        }
        let expected = g.levels(u);
        prop_assert_eq!(&levels, &expected, "levels of {} on every node of {:?}", g.id(u), g);
        answers.push((levels, deps));
    }
    Ok(answers)
}

#[test]
fn levels_on_random_graphs_match_the_reference_model() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(Postgres::shared().fresh_db());
    let store = db.store();
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    let result = TestRunner::new(config).run(&graph(), |g| rt.block_on(check_graph(&store, &g)));
    if let Err(e) = result {
        panic!("{e}");
    }
}
