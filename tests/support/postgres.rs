//! PostgreSQL for integration tests: a fresh database per test, with the permission
//! graph's migrations applied, on a real server.
//!
//! - `Postgres::shared()` is the server of `DATABASE_URL` when it is set; otherwise one
//!   throwaway cluster for the whole test process, made with `initdb` and started with
//!   `pg_ctl` on a free port in a temporary directory, and stopped and removed when the
//!   process exits.
//! - `Postgres::throwaway()` always starts a cluster of its own, for tests that stop
//!   the database under the router (`stop_immediately`, then `start`): stopping a
//!   shared server would break every other test. It is removed when dropped.
//! - `fresh_db()` creates `sy_test_<pid>_<random>` and applies the migrations;
//!   `empty_db()` leaves it empty (for `switchyard migrate`). On a `DATABASE_URL` server
//!   the database is dropped when the `TestDb` is; a throwaway cluster goes as a whole.
//!
//! Use it from an integration test with
//! `#[path = "support/postgres.rs"] mod postgres;` and then
//! `let db = postgres::Postgres::shared().fresh_db().await;`.
//!
//! The PostgreSQL binaries are taken from `$PG_BIN`, else `PATH`, else the newest
//! `/usr/lib/postgresql/*/bin`. `initdb` refuses to run as root, so as root the
//! cluster runs as the `postgres` system user. Clusters left behind by a test process
//! that was killed are stopped and removed by the next one.

#![allow(dead_code)]

use std::ffi::CString;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, Once, OnceLock};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use switchyard::auth::graph::GraphStore;

/// Directories of throwaway clusters start with this, followed by the owning pid.
const DIR_PREFIX: &str = "switchyard-pg-";

pub struct Postgres {
    /// A URL of the server with which databases are created (its `postgres` database
    /// for a throwaway cluster, `DATABASE_URL` otherwise).
    admin_url: String,
    /// Set for a throwaway cluster.
    cluster: Option<Cluster>,
}

/// One test's database.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    /// Set on a shared server, where the database outlives the process unless dropped.
    drop_with: Option<String>,
}

impl TestDb {
    pub fn store(&self) -> GraphStore {
        GraphStore::from_pool(self.pool.clone())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin_url) = self.drop_with.take() else { return };
        let sql = format!("drop database if exists {} with (force)", self.name);
        // A runtime of its own on a thread of its own: Drop cannot await, and the test's
        // runtime may be the current-thread one that is running this very drop.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                conn.execute(sql.as_str()).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("support/postgres: could not drop test database {}", self.name);
        }
    }
}

impl Postgres {
    /// The server every test of this process shares; see the module comment.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Postgres { admin_url: url, cluster: None },
            _ => Postgres::throwaway(),
        })
    }

    /// A cluster of this handle's own, whatever `DATABASE_URL` says.
    pub fn throwaway() -> Postgres {
        let cluster = Cluster::create();
        Postgres { admin_url: cluster.url("postgres"), cluster: Some(cluster) }
    }

    /// A new database with the migrations applied.
    pub async fn fresh_db(&self) -> TestDb {
        let db = self.empty_db().await;
        db.store().migrate().await.expect("the migrations apply to a new database");
        db
    }

    /// A new database with nothing in it.
    pub async fn empty_db(&self) -> TestDb {
        let name = format!("sy_test_{}_{:016x}", std::process::id(), rand::random::<u64>());
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("support/postgres: cannot connect to {}: {e}", self.admin_url));
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("support/postgres: cannot create database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&self.admin_url, &name);
        let pool = PgPoolOptions::new().max_connections(4).connect(&url).await.expect("the new database accepts connections");
        let drop_with = self.cluster.is_none().then(|| self.admin_url.clone());
        TestDb { name, url, pool, drop_with }
    }

    /// Kills the throwaway cluster the way a crash would (`pg_ctl stop -m immediate`):
    /// connections drop at once and new ones are refused, until `start`.
    pub fn stop_immediately(&self) {
        self.own_cluster().stop();
    }

    /// Starts the throwaway cluster again on the same port, so URLs stay valid.
    pub fn start(&self) {
        self.own_cluster().start();
    }

    fn own_cluster(&self) -> &Cluster {
        self.cluster.as_ref().expect("only a throwaway cluster can be stopped and started: use Postgres::throwaway()")
    }
}

/// A cluster in a temporary directory (`dir/data`, log `dir/log`, socket in `dir`).
struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        reap_stale_clusters();
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("support/postgres: cannot create {}: {e}", dir.display()));
        register_for_exit(&dir);
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster directory to postgres");
        }
        let data = dir.join("data");
        let out = pg(&dir, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .unwrap_or_else(|e| panic!("support/postgres: cannot run initdb: {e}"));
        check(&out, "initdb");
        // A port that was free a moment ago may be taken by the time the server binds
        // it: a few tries with fresh ports.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match start_server(&dir, port) {
                Ok(()) => return Cluster { dir, port },
                Err(e) => last_error = e,
            }
        }
        panic!("support/postgres: the throwaway cluster does not start: {last_error}");
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn start(&self) {
        if let Err(e) = start_server(&self.dir, self.port) {
            panic!("support/postgres: cannot restart the cluster: {e}");
        }
    }

    fn stop(&self) {
        stop_cluster(&self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        stop_cluster(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut dirs) = CLUSTER_DIRS.lock() {
            dirs.retain(|d| d != &self.dir);
        }
    }
}

/// Clusters to stop and remove at exit: the shared one lives in a static, which is
/// never dropped, and a test may leak a throwaway one.
static CLUSTER_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register_for_exit(dir: &Path) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        extern "C" fn remove_clusters() {
            let dirs = match CLUSTER_DIRS.lock() {
                Ok(mut dirs) => std::mem::take(&mut *dirs),
                Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
            };
            for dir in dirs {
                stop_cluster(&dir);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        // SAFETY: registers a plain function with no arguments; it runs at exit, when
        // only this process's own threads may still be around.
        unsafe { libc::atexit(remove_clusters) };
    });
    match CLUSTER_DIRS.lock() {
        Ok(mut dirs) => dirs.push(dir.to_path_buf()),
        Err(poisoned) => poisoned.into_inner().push(dir.to_path_buf()),
    }
}

/// Stops and removes the clusters of test processes that are gone (killed before their
/// exit handler ran).
fn reap_stale_clusters() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else { continue };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()) else { continue };
            // SAFETY: signal 0 only asks whether the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                stop_cluster(&entry.path());
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

fn start_server(dir: &Path, port: u16) -> Result<(), String> {
    let options = format!("-k {} -h 127.0.0.1 -p {port} -F -c max_connections=200", dir.display());
    let out = pg(dir, "pg_ctl")
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "-o", &options, "start"])
        .output()
        .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        Err(format!("{}\n{log}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn stop_cluster(dir: &Path) {
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        let _ = pg(dir, "pg_ctl").arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

/// A PostgreSQL command, as the `postgres` user when this process is root.
fn pg(dir: &Path, name: &str) -> Command {
    let mut cmd = Command::new(pg_bin(name));
    cmd.current_dir(dir).stdin(Stdio::null()).env("LC_ALL", "C");
    if let Some((uid, gid)) = run_as() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "support/postgres: {what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pg_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Path::new(&dir).join(name);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if let Some(p) = on_path {
        return p;
    }
    // Debian keeps the server binaries off PATH, one directory per major version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin").join(name))))
        .filter(|(_, p)| p.is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).unwrap_or_else(|| {
        panic!("support/postgres: no {name}: install PostgreSQL, set PG_BIN, or set DATABASE_URL to a server")
    })
}

/// The `postgres` user's uid and gid when this process is root, since `initdb` and
/// the server refuse to run as root.
fn run_as() -> Option<(u32, u32)> {
    static USER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *USER.get_or_init(|| {
        // SAFETY: geteuid cannot fail; getpwnam returns null or a pointer to a static
        // record, read at once, before any other call could overwrite it.
        unsafe {
            if libc::geteuid() != 0 {
                return None;
            }
            let name = CString::new("postgres").ok()?;
            let pw = libc::getpwnam(name.as_ptr());
            if pw.is_null() {
                panic!("support/postgres: running as root needs a `postgres` user to run the cluster as");
            }
            Some(((*pw).pw_uid, (*pw).pw_gid))
        }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}
