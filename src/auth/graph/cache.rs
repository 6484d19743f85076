//! What the router remembers of the permission graph, and how a change reaches it.
//!
//! Two kinds of entries, each filled by one query and each carrying the graph nodes it
//! depends on: a user's [`Closure`] (per principal, shared by that user's sessions) and
//! an object's [`ObjectAccess`] (per object, shared by every user). A level is computed
//! from the two in memory and memoized per principal; the memo is valid for one
//! `epoch`, which every invalidation bumps, so a stale level is never used.
//!
//! A change-log batch replaces exactly the entries whose nodes it touches (the proof is
//! on `Closure::nodes` and `ObjectAccess::nodes`) with fresh loads, and only then says
//! whose holdings to re-check; the new epoch makes every guard decide on the fresh
//! entries from then on. While the database is lost, nothing is decided at all: guards
//! hold events back and requests fail (`authorization_failed`).
//!
//! Loads race with changes: a query may read the graph just before a change that is
//! applied while it runs. Entries are therefore stored under the same lock that
//! applies changes, and only if the epoch did not move since the query began;
//! otherwise the query is repeated.
//!
//! API tokens found valid are kept too (`known_tokens.rs`): `apply` forgets those a
//! change may have changed, `drop_all` every one.
//!
//! Bounds: at most `max_objects` object entries, evicting those neither pinned by a
//! live subscription nor used since the last sweep; principals live as long as a
//! session holds them, plus the last `max_principals` created (warm for a reconnect);
//! memos at most `MEMO` levels per principal; at most `max_principals` tokens.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use super::known_tokens::KnownTokens;
use super::{Change, Closure, GraphError, GraphStore, Level, ObjectAccess, Standing};
use crate::auth::CredentialKind;

/// Levels memoized per principal at most; beyond, levels are computed each time.
const MEMO: usize = 4096;

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Memo {
    epoch: u64,
    levels: HashMap<String, Level>,
}

/// One user of the graph, shared by the user's sessions.
#[derive(Debug)]
pub struct PrincipalEntry {
    pub user: String,
    closure: RwLock<Option<(Arc<Closure>, Vec<String>)>>,
    memo: RwLock<Memo>,
}

impl PrincipalEntry {
    fn closure(&self) -> Option<Arc<Closure>> {
        read(&self.closure).as_ref().map(|(c, _)| c.clone())
    }

    /// Where the user stands, once the closure is known.
    pub fn standing(&self) -> Option<Standing> {
        read(&self.closure).as_ref().map(|(c, _)| c.standing())
    }
}

/// One object (or any node named by a policy rule), shared by every user.
#[derive(Debug)]
pub struct ObjectEntry {
    pub id: String,
    access: RwLock<Option<(Arc<ObjectAccess>, Vec<String>)>>,
    /// Live subscriptions and registrations guarded on this object, by user: they keep
    /// it from eviction and name whom to re-check when it changes.
    pins: Mutex<HashMap<String, usize>>,
    used: AtomicBool,
}

impl ObjectEntry {
    fn access(&self) -> Option<Arc<ObjectAccess>> {
        self.used.store(true, Ordering::Relaxed);
        read(&self.access).as_ref().map(|(a, _)| a.clone())
    }

    pub fn is_loaded(&self) -> bool {
        read(&self.access).is_some()
    }
}

/// A pin on an object for as long as a guarded holding lives.
#[derive(Debug)]
pub struct Pin {
    pub object: Arc<ObjectEntry>,
    user: String,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = lock(&self.object.pins);
        if let Some(n) = pins.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.user);
            }
        }
    }
}

/// Who must act after a change batch was applied.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Users whose revocable holdings must be re-checked.
    pub recheck: HashSet<String>,
    /// Users now disabled, unknown or no longer users: their sessions end.
    pub gone: HashSet<String>,
    /// Credentials a change touched (token hashes, `key:<pubkey>`), with the nodes
    /// (users) it touched.
    pub tokens: Vec<(Vec<String>, Vec<String>)>,
    /// Credential tables emptied by a TRUNCATE: every session opened with such a
    /// credential ends (the statement names no row to look among).
    pub truncated: Vec<CredentialKind>,
}

#[derive(Debug)]
pub struct GraphCache {
    pub store: GraphStore,
    principals: Mutex<HashMap<String, Weak<PrincipalEntry>>>,
    /// The principals created last, kept after their sessions left (at most
    /// `max_principals`), so that a user who reconnects finds the closure warm.
    recent: Mutex<std::collections::VecDeque<Arc<PrincipalEntry>>>,
    max_principals: usize,
    objects: RwLock<HashMap<String, Arc<ObjectEntry>>>,
    max_objects: usize,
    /// Bumped by every invalidation: memoized levels of an older epoch are recomputed.
    epoch: AtomicU64,
    /// The last change-log seq applied (dropped, reloaded, announced).
    applied: AtomicI64,
    /// Taken to apply a batch, and to store what a query loaded.
    apply: Mutex<()>,
    /// False while the database or its listener is lost: nothing graph-based is decided.
    online: AtomicBool,
    /// Queries run (closures + object accesses), for tests and metrics.
    pub queries: AtomicUsize,
    /// API tokens found valid, so that presenting one again costs no query.
    pub tokens: KnownTokens,
}

/// The answer to "what level does this user have on this node", from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Level(Level),
    /// Not in memory (or not now: offline, being reloaded).
    Unknown,
}

impl GraphCache {
    pub fn new(store: GraphStore, max_principals: usize, max_objects: usize) -> GraphCache {
        GraphCache {
            store,
            principals: Mutex::default(),
            recent: Mutex::default(),
            max_principals: max_principals.max(1),
            objects: RwLock::default(),
            max_objects,
            epoch: AtomicU64::new(1),
            applied: AtomicI64::new(0),
            apply: Mutex::new(()),
            online: AtomicBool::new(false),
            queries: AtomicUsize::new(0),
            tokens: KnownTokens::new(max_principals),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    pub fn applied_seq(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The database is lost (false) or caught up again (true). Either way every memo
    /// is recomputed: offline, nothing graph-based is decided.
    pub fn set_online(&self, online: bool) {
        let _apply = lock(&self.apply);
        self.online.store(online, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Records that every change up to `seq` is applied: dropped, reloaded and
    /// announced (or, at the first connection, that nothing cached predates it).
    pub fn commit(&self, seq: i64) {
        self.applied.store(seq, Ordering::Release);
    }

    /// The entry of `user`, shared with the user's other live sessions.
    pub fn principal(&self, user: &str) -> Arc<PrincipalEntry> {
        let mut principals = lock(&self.principals);
        if let Some(p) = principals.get(user).and_then(Weak::upgrade) {
            return p;
        }
        // Forget users whose sessions are all gone, so the map stays as large as the
        // set of live users.
        if principals.len() >= 64 && principals.len().is_power_of_two() {
            principals.retain(|_, w| w.strong_count() > 0);
        }
        let p = Arc::new(PrincipalEntry { user: user.to_owned(), closure: RwLock::default(), memo: RwLock::default() });
        principals.insert(user.to_owned(), Arc::downgrade(&p));
        drop(principals);
        let mut recent = lock(&self.recent);
        if recent.len() >= self.max_principals {
            recent.pop_front();
        }
        recent.push_back(p.clone());
        p
    }

    /// The entry of node `id`, created empty (not loaded) if needed.
    pub fn object(&self, id: &str) -> Arc<ObjectEntry> {
        if let Some(o) = read(&self.objects).get(id) {
            return o.clone();
        }
        let mut objects = write(&self.objects);
        if objects.len() >= self.max_objects {
            // Second chance: keep what is pinned or was used since the last sweep.
            objects.retain(|_, o| !lock(&o.pins).is_empty() || o.used.swap(false, Ordering::Relaxed));
        }
        objects
            .entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(ObjectEntry {
                    id: id.to_owned(),
                    access: RwLock::default(),
                    pins: Mutex::default(),
                    used: AtomicBool::new(true),
                })
            })
            .clone()
    }

    /// An existing entry, without creating one (the per-event path).
    pub fn existing_object(&self, id: &str) -> Option<Arc<ObjectEntry>> {
        read(&self.objects).get(id).cloned()
    }

    pub fn pin(&self, object: Arc<ObjectEntry>, user: &str) -> Pin {
        *lock(&object.pins).entry(user.to_owned()).or_default() += 1;
        Pin { object, user: user.to_owned() }
    }

    /// The user's level on node `id` if memoized for this epoch: the hot path, touching
    /// only this principal's state.
    pub fn memoized(&self, p: &PrincipalEntry, id: &str) -> Option<Level> {
        if !self.is_online() {
            return None;
        }
        let memo = read(&p.memo);
        if memo.epoch == self.epoch() {
            memo.levels.get(id).copied()
        } else {
            None
        }
    }

    /// The user's level on `node` from memory; memoized for this epoch.
    pub fn level(&self, p: &PrincipalEntry, node: &ObjectEntry) -> Known {
        if !self.is_online() {
            return Known::Unknown;
        }
        let epoch = self.epoch();
        if let Some(l) = self.memoized(p, &node.id) {
            return Known::Level(l);
        }
        let Some(level) = self.compute(p, node) else { return Known::Unknown };
        let mut memo = write(&p.memo);
        if memo.epoch != epoch {
            memo.levels.clear();
            memo.epoch = epoch;
        }
        if memo.levels.len() < MEMO {
            memo.levels.insert(node.id.clone(), level);
        }
        Known::Level(level)
    }

    fn compute(&self, p: &PrincipalEntry, node: &ObjectEntry) -> Option<Level> {
        let closure = p.closure()?;
        match closure.standing() {
            Standing::Admin => return Some(Level::Manage),
            Standing::Active => {}
            Standing::Unknown | Standing::NotAUser(_) | Standing::Disabled => return Some(Level::None),
        }
        let access = node.access()?;
        Some(closure.level_of_principal(&node.id).max(closure.level_on(&access)))
    }

    /// Loads what `p` (and, if given, `node`) needs that is not in memory. Repeats a
    /// load that raced with a change.
    pub async fn ensure(&self, p: Option<&PrincipalEntry>, node: Option<&ObjectEntry>) -> Result<(), GraphError> {
        loop {
            if !self.is_online() {
                return Err(GraphError::Offline);
            }
            let started = self.epoch();
            let want_closure = p.is_some_and(|p| read(&p.closure).is_none());
            let want_access = node.is_some_and(|n| !n.is_loaded());
            if !want_closure && !want_access {
                return Ok(());
            }
            let closure = async {
                match p {
                    Some(p) if want_closure => {
                        self.queries.fetch_add(1, Ordering::Relaxed);
                        self.store.closure(&p.user).await.map(Some)
                    }
                    _ => Ok(None),
                }
            };
            let access = async {
                match node {
                    Some(n) if want_access => {
                        self.queries.fetch_add(1, Ordering::Relaxed);
                        self.store.object_access(&n.id).await.map(Some)
                    }
                    _ => Ok(None),
                }
            };
            let (closure, access) = futures_util::future::try_join(closure, access).await?;
            let _apply = lock(&self.apply);
            // Any invalidation since the query began may have missed what it read.
            if self.epoch() != started {
                continue;
            }
            if let (Some(p), Some(c)) = (p, closure) {
                store_closure(p, c);
            }
            if let (Some(n), Some(a)) = (node, access) {
                store_access(n, a);
            }
            return Ok(());
        }
    }

    /// Applies a batch of changes (oldest first): finds the entries they touch, for
    /// `reload` to replace. Until it has, those entries keep answering as before the
    /// change, exactly as they did before its notification arrived: a change counts as
    /// processed once its entries are replaced, and from then on no answer predates it.
    /// (Dropping them at once instead would hold back every event of every user a
    /// change merely names, for the time of a query.) Rows of the credential tables
    /// (tokens, user_keys) touch no permission.
    pub fn apply(&self, changes: &[Change]) -> Dropped {
        self.tokens.invalidate(changes);
        let mut dropped = Dropped::default();
        for c in changes.iter().filter(|c| !c.tokens.is_empty()) {
            dropped.tokens.push((c.tokens.clone(), c.touched.clone()));
        }
        for c in changes.iter().filter(|c| c.everything) {
            let kind = match c.table.as_str() {
                "tokens" => CredentialKind::ApiToken,
                "user_keys" => CredentialKind::Key,
                _ => continue,
            };
            if !dropped.truncated.contains(&kind) {
                dropped.truncated.push(kind);
            }
        }
        let permissions: Vec<&Change> =
            changes.iter().filter(|c| c.table != "tokens" && c.table != "user_keys").collect();
        if permissions.is_empty() {
            return dropped;
        }
        let everything = permissions.iter().any(|c| c.everything);
        let touched: HashSet<&str> = permissions.iter().flat_map(|c| c.touched.iter().map(String::as_str)).collect();
        let hits = |deps: &[String]| everything || deps.iter().any(|d| touched.contains(d.as_str()));
        let _apply = lock(&self.apply);
        for p in lock(&self.principals).values().filter_map(Weak::upgrade) {
            let hit = read(&p.closure).as_ref().is_some_and(|(_, deps)| hits(deps)) || touched.contains(p.user.as_str());
            if hit {
                dropped.principals.push(p);
            }
        }
        for o in read(&self.objects).values() {
            if read(&o.access).as_ref().is_some_and(|(_, deps)| hits(deps)) {
                dropped.objects.push(o.clone());
            }
        }
        // Loads in flight read the graph before these changes: make them load again.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        dropped
    }

    /// Replaces what `apply` found with fresh loads and says who must act. On error
    /// nothing is replaced, and the caller treats the database as lost (offline: no
    /// answer at all until it has caught up).
    pub async fn reload(&self, dropped: Dropped) -> Result<Applied, GraphError> {
        let mut applied = Applied::default();
        let principals = dropped.principals.iter().map(|p| async move {
            self.queries.fetch_add(1, Ordering::Relaxed);
            self.store.closure(&p.user).await.map(|c| (p, c))
        });
        let objects = dropped.objects.iter().map(|o| async move {
            self.queries.fetch_add(1, Ordering::Relaxed);
            self.store.object_access(&o.id).await.map(|a| (o, a))
        });
        let (closures, accesses) = futures_util::future::try_join(
            futures_util::future::try_join_all(principals),
            futures_util::future::try_join_all(objects),
        )
        .await?;
        let _apply = lock(&self.apply);
        for (p, c) in closures {
            if !matches!(c.standing(), Standing::Active | Standing::Admin) {
                applied.gone.insert(p.user.clone());
            }
            store_closure(p, c);
            applied.recheck.insert(p.user.clone());
        }
        for (o, a) in accesses {
            store_access(o, a);
            applied.recheck.extend(lock(&o.pins).keys().cloned());
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        applied.tokens = dropped.tokens;
        applied.truncated = dropped.truncated;
        Ok(applied)
    }

    /// Drops everything (after a gap in the change log that cannot be replayed).
    pub fn drop_all(&self) -> Dropped {
        self.tokens.clear();
        let _apply = lock(&self.apply);
        let mut dropped = Dropped::default();
        for p in lock(&self.principals).values().filter_map(Weak::upgrade) {
            *write(&p.closure) = None;
            dropped.principals.push(p);
        }
        for o in read(&self.objects).values() {
            *write(&o.access) = None;
            dropped.objects.push(o.clone());
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        dropped
    }

    /// Object entries in memory (for tests of the bound).
    pub fn object_count(&self) -> usize {
        read(&self.objects).len()
    }
}

/// What a change batch dropped, to reload.
#[derive(Debug, Default)]
pub struct Dropped {
    principals: Vec<Arc<PrincipalEntry>>,
    objects: Vec<Arc<ObjectEntry>>,
    tokens: Vec<(Vec<String>, Vec<String>)>,
    truncated: Vec<CredentialKind>,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty() && self.objects.is_empty() && self.tokens.is_empty() && self.truncated.is_empty()
    }
}

fn store_closure(p: &PrincipalEntry, c: Closure) {
    let deps = c.nodes().into_iter().map(str::to_owned).collect();
    *write(&p.closure) = Some((Arc::new(c), deps));
}

fn store_access(o: &ObjectEntry, a: ObjectAccess) {
    let deps = a.nodes().into_iter().map(str::to_owned).collect();
    *write(&o.access) = Some((Arc::new(a), deps));
}
