//! The permission graph in PostgreSQL: the schema's migrations and the two questions
//! the router asks, each answered by one query. Queries are checked at run time, so
//! building needs no database.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

use super::{AccessRow, Closure, GraphError, Level, ObjectAccess, PrincipalInfo, PrincipalKind, Reached, Standing};

/// The schema of `policies/migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./policies/migrations");

/// One migration that [`GraphStore::migrate`] applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct GraphStore {
    pub(super) pool: PgPool,
}

/// Every principal on a path from the user, with the best level over the paths and the
/// flags that decide whether it passes. The walk recurses over (node, level) pairs with
/// UNION, which drops pairs already seen: with three levels each node enters at most
/// three times, so cycles end. A pair leads on only out of a node that passes (the
/// user itself; a role or project not trashed; a user reached at manage, not
/// disabled), the same rule as `Reached::new`. The first row is the user's own, with
/// `is_self` set; admins and disabled users get no walk, since paths change nothing for
/// them.
const CLOSURE: &str = r#"
with recursive
me as (
    select id, kind, is_admin, disabled from principals where id = $1
),
walk (node, level) as (
    select id, 3::smallint from me where kind = 'user' and not disabled and not is_admin
    union
    select e.dst, least(w.level, e.level)
    from walk w
    join principals p on p.id = w.node
    cross join lateral (
        select g.head_id as dst, g.level
        from grants g join principals h on h.id = g.head_id
        where g.tail_id = w.node
        union all
        select c.id, 3::smallint from principals c where c.owner_id = w.node
    ) e
    where w.node = $1
       or (p.kind in ('role', 'project') and not p.trashed)
       or (p.kind = 'user' and w.level = 3 and not p.disabled)
)
select true as is_self, me.id, me.kind, me.is_admin, me.disabled, false as trashed, 3::smallint as level from me
union all
select false, w.node, p.kind, p.is_admin, p.disabled, p.trashed, max(w.level)
from walk w join principals p on p.id = w.node
where w.node <> $1
group by w.node, p.kind, p.is_admin, p.disabled, p.trashed
"#;

/// The in-edges of the object and of every node it is readable through, following
/// `read_via` to vias that are not principals (a principal via is answered by the
/// user's closure). UNION visits each node once, so `read_via` cycles end.
const OBJECT_ACCESS: &str = r#"
with recursive reach (id) as (
    select $1::text
    union
    select rv.via_id
    from reach r join read_via rv on rv.object_id = r.id
    where not exists (select 1 from principals p where p.id = rv.via_id)
)
select 'visited' as what, r.id as node, null::text as other, null::smallint as level from reach r
union all
select 'owner', o.id, o.owner_id, null from reach r join objects o on o.id = r.id
union all
select 'grant', g.head_id, g.tail_id, g.level from reach r join grants g on g.head_id = r.id
union all
select 'via', rv.object_id, rv.via_id, null from reach r join read_via rv on rv.object_id = r.id
"#;

/// How long a query waits for a connection before it fails closed. The pool's default
/// (30 s) would hold a session's messages that long while the database is down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl GraphStore {
    /// Connects lazily: the first query opens the first connection, so a router can
    /// start while the database is down and fail closed until it comes back.
    pub fn connect_lazy(url: &str) -> Result<GraphStore, GraphError> {
        let options: PgConnectOptions = url.parse()?;
        Ok(GraphStore { pool: pool_options().connect_lazy_with(options) })
    }

    /// Connects now, so a wrong URL or a database that is down is reported at once.
    pub async fn connect(url: &str) -> Result<GraphStore, GraphError> {
        let options: PgConnectOptions = url.parse()?;
        // One direct connection first: the pool retries a refused connection until its
        // timeout and then reports only the timeout, not why.
        PgConnection::connect_with(&options).await?.close().await?;
        Ok(GraphStore { pool: pool_options().connect_lazy_with(options) })
    }

    pub fn from_pool(pool: PgPool) -> GraphStore {
        GraphStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations the database lacks and returns them, oldest first.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>, GraphError> {
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table().await?;
        let before: HashSet<i64> = conn.list_applied_migrations().await?.iter().map(|m| m.version).collect();
        Migrator { ignore_missing: true, migrations: MIGRATOR.migrations.clone(), ..Migrator::DEFAULT }.run_direct(&mut *conn).await?;
        let after: HashSet<i64> = conn.list_applied_migrations().await?.iter().map(|m| m.version).collect();
        Ok(MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && after.contains(&m.version) && !before.contains(&m.version))
            .map(|m| AppliedMigration { version: m.version, description: m.description.to_string() })
            .collect())
    }

    /// What `user` reaches among principals (see [`Closure`]).
    pub async fn closure(&self, user: &str) -> Result<Closure, GraphError> {
        type Row = (bool, String, Option<String>, bool, bool, bool, i16);
        let rows: Vec<Row> = sqlx::query_as(CLOSURE).bind(user).fetch_all(&self.pool).await?;
        let mut standing = Standing::Unknown;
        let mut reached = HashMap::new();
        for (is_self, id, kind, is_admin, disabled, trashed, level) in rows {
            let kind = parse_kind(kind);
            let level = parse_level(level)?;
            if is_self {
                standing = match kind {
                    Some(PrincipalKind::User) if disabled => Standing::Disabled,
                    Some(PrincipalKind::User) if is_admin => Standing::Admin,
                    Some(PrincipalKind::User) => Standing::Active,
                    Some(other) => Standing::NotAUser(other),
                    // A principal without a kind is no user anyone can be.
                    None => Standing::Unknown,
                };
            } else {
                let r = match kind {
                    Some(kind) => Reached::new(kind, level, disabled, trashed),
                    // Neither a user nor a role nor a project: it passes nothing on.
                    None => Reached { level, passes: false },
                };
                reached.insert(id, r);
            }
        }
        Ok(Closure::new(user, standing, reached))
    }

    /// What decides every user's level on `object` (see [`ObjectAccess`]). The object
    /// need not exist in any table: grants and `read_via` rows may name any id.
    pub async fn object_access(&self, object: &str) -> Result<ObjectAccess, GraphError> {
        type Row = (String, String, Option<String>, Option<i16>);
        let rows: Vec<Row> = sqlx::query_as(OBJECT_ACCESS).bind(object).fetch_all(&self.pool).await?;
        let mut access = ObjectAccess::new(object);
        for (what, node, other, level) in rows {
            let row = match (what.as_str(), other, level) {
                ("visited", _, _) => AccessRow::Visited(node),
                ("owner", Some(owner), _) => AccessRow::Owner { object: node, owner },
                ("grant", Some(tail), Some(level)) => AccessRow::Grant { head: node, tail, level: parse_level(level)? },
                ("via", Some(via), _) => AccessRow::ReadVia { object: node, via },
                _ => return Err(GraphError::Corrupt { what: "object access row", value: what }),
            };
            access.add(row);
        }
        Ok(access)
    }

    /// The principal's row, if there is one.
    pub async fn principal(&self, id: &str) -> Result<Option<PrincipalInfo>, GraphError> {
        type Row = (String, Option<String>, Option<String>, bool, bool, bool);
        let row: Option<Row> = sqlx::query_as(
            "select id, kind, owner_id, is_admin, disabled, trashed from principals where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, kind, owner_id, is_admin, disabled, trashed)) = row else {
            return Ok(None);
        };
        Ok(Some(PrincipalInfo { id, kind: parse_kind(kind), owner_id, is_admin, disabled, trashed }))
    }
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT)
}

/// `principals.kind` is nullable in the platform's schema (its check only limits the
/// values), so a principal may have no kind: it is then none of the three.
fn parse_kind(kind: Option<String>) -> Option<PrincipalKind> {
    kind.as_deref().and_then(PrincipalKind::parse)
}

fn parse_level(level: i16) -> Result<Level, GraphError> {
    Level::from_i16(level).ok_or(GraphError::Corrupt { what: "level", value: level.to_string() })
}
