//! What the permission-graph workloads (`revoke`, `graph-cold`, `graph-fixture`) need
//! besides WAMP: the platform's side of the graph in PostgreSQL (rows written the way the
//! platform writes them, tokens minted with the router's own scheme), and the router's
//! `/metrics`, to know when it has applied every change and what it counted.
//!
//! Each workload owns the ids under its prefix (`rv_`, `cd_`, `ab_`): it deletes them
//! first, so runs repeat on one database. Ids use only lower-case letters, digits and `_`
//! since they appear in topic URIs, which the router holds to the strict rules.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use switchyard::auth::graph::{hash_token, mint_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub async fn connect(url: &str) -> Result<PgPool, String> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| format!("--database-url: cannot connect: {e}"))
}

fn db(e: sqlx::Error) -> String {
    format!("database: {e}")
}

/// Deletes every row of the graph whose ids start with `prefix` (tokens, grants both
/// ways, read_via, objects, principals), in an order the foreign keys accept.
pub async fn clear(pool: &PgPool, prefix: &str) -> Result<(), String> {
    let statements = [
        "delete from tokens where starts_with(user_id, $1)",
        "delete from grants where starts_with(tail_id, $1) or starts_with(head_id, $1)",
        "delete from read_via where starts_with(object_id, $1) or starts_with(via_id, $1)",
        "delete from objects where starts_with(id, $1)",
        "update principals set owner_id = null where starts_with(id, $1) and owner_id is not null",
        "delete from principals where starts_with(id, $1)",
    ];
    let mut tx = pool.begin().await.map_err(db)?;
    for s in statements {
        sqlx::query(s).bind(prefix).execute(&mut *tx).await.map_err(|e| format!("{s}: {e}"))?;
    }
    tx.commit().await.map_err(db)
}

/// Inserts principals of one kind.
pub async fn principals(pool: &PgPool, kind: &str, ids: &[String]) -> Result<(), String> {
    sqlx::query("insert into principals (id, kind) select unnest($1::text[]), $2")
        .bind(ids)
        .bind(kind)
        .execute(pool)
        .await
        .map(drop)
        .map_err(db)
}

/// Inserts objects `(id, owner)` of one kind.
pub async fn objects(pool: &PgPool, kind: &str, rows: &[(String, String)]) -> Result<(), String> {
    let (ids, owners): (Vec<String>, Vec<String>) = rows.iter().cloned().unzip();
    sqlx::query("insert into objects (id, kind, owner_id) select o.id, $3, o.owner from unnest($1::text[], $2::text[]) as o(id, owner)")
        .bind(ids)
        .bind(owners)
        .bind(kind)
        .execute(pool)
        .await
        .map(drop)
        .map_err(db)
}

/// Inserts grants `(tail, head, level)`.
pub async fn grants(pool: &PgPool, rows: &[(String, String, i16)]) -> Result<(), String> {
    let tails: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let heads: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    let levels: Vec<i16> = rows.iter().map(|r| r.2).collect();
    sqlx::query("insert into grants (tail_id, head_id, level) select * from unnest($1::text[], $2::text[], $3::int2[])")
        .bind(tails)
        .bind(heads)
        .bind(levels)
        .execute(pool)
        .await
        .map(drop)
        .map_err(db)
}

/// Mints one token per user (as `switchyard token create` does: only the hash is
/// stored) and returns them in the order of `users`.
pub async fn tokens(pool: &PgPool, users: &[String]) -> Result<Vec<String>, String> {
    let tokens: Vec<String> = users.iter().map(|_| mint_token()).collect();
    let hashes: Vec<String> = tokens.iter().map(|t| hash_token(t)).collect();
    sqlx::query("insert into tokens (token_sha256, user_id) select * from unnest($1::text[], $2::text[])")
        .bind(hashes)
        .bind(users)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(tokens)
}

/// The newest change-log seq.
pub async fn last_seq(pool: &PgPool) -> Result<i64, String> {
    sqlx::query_scalar("select coalesce(max(seq), 0) from switchyard_graph_changes").fetch_one(pool).await.map_err(db)
}

/// The router's HTTP address (where `/metrics` is served), from the WebSocket URL.
pub async fn http_addr(url: &str) -> Result<SocketAddr, String> {
    let req = url.into_client_request().map_err(|e| format!("--url {url}: {e}"))?;
    let host = req.uri().host().ok_or_else(|| format!("--url {url}: no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = req.uri().port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("--url {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url}: no address"));
    addr
}

/// The router's metrics: every sample line, `name{labels}` → value.
#[derive(Debug, Default, Clone)]
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    pub async fn scrape(addr: SocketAddr) -> Result<Metrics, String> {
        let fetch = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
            let mut body = Vec::new();
            s.read_to_end(&mut body).await?;
            Ok::<Vec<u8>, std::io::Error>(body)
        };
        let body = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .map_err(|_| format!("GET http://{addr}/metrics: no answer in 10 s"))?
            .map_err(|e| format!("GET http://{addr}/metrics: {e}"))?;
        let text = String::from_utf8_lossy(&body);
        let (head, text) = text.split_once("\r\n\r\n").ok_or_else(|| format!("GET http://{addr}/metrics: no HTTP response"))?;
        if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200") {
            return Err(format!("GET http://{addr}/metrics: {}", head.lines().next().unwrap_or("")));
        }
        Ok(Metrics::parse(text))
    }

    /// The Prometheus text format's sample lines.
    pub fn parse(text: &str) -> Metrics {
        let mut m = HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((k, v)) = line.rsplit_once(' ') {
                if let Ok(v) = v.parse::<f64>() {
                    m.insert(k.to_owned(), v);
                }
            }
        }
        Metrics(m)
    }

    /// The sum over the samples of metric `name` (`switchyard_` prefix and the
    /// counters' `_total` suffix optional), whatever their labels.
    pub fn get(&self, name: &str) -> f64 {
        let full = if name.starts_with("switchyard_") { name.to_owned() } else { format!("switchyard_{name}") };
        let total = format!("{full}_total");
        self.0
            .iter()
            .filter(|(k, _)| {
                let base = k.split('{').next().unwrap_or(k);
                base == full || base == total
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// Waits until the router's graph realm is online and has applied change `seq`.
pub async fn wait_applied(addr: SocketAddr, seq: i64, patience: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let m = Metrics::scrape(addr).await?;
        if m.get("graph_online") >= 1.0 && m.get("graph_applied_seq") >= seq as f64 {
            return Ok(());
        }
        if start.elapsed() > patience {
            return Err(format!(
                "the router did not apply change {seq} within {} s (applied {}, online {})",
                patience.as_secs(),
                m.get("graph_applied_seq"),
                m.get("graph_online")
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `graph-fixture`: the graph the A/B runs of the graph realm use (ids under `ab_`):
/// project `ab_p` owning container `object`, role `ab_r` shared at read on it, and
/// `users` members of the role, one token each, written one per line to `tokens_out`.
pub async fn fixture(database_url: &str, object: &str, users: usize, tokens_out: &std::path::Path) -> Result<(), String> {
    let pool = connect(database_url).await?;
    clear(&pool, "ab_").await?;
    principals(&pool, "project", &["ab_p".to_owned()]).await?;
    principals(&pool, "role", &["ab_r".to_owned()]).await?;
    let ids: Vec<String> = (0..users).map(|i| format!("ab_u{i}")).collect();
    principals(&pool, "user", &ids).await?;
    objects(&pool, "container", &[(object.to_owned(), "ab_p".to_owned())]).await?;
    let mut g = vec![("ab_r".to_owned(), "ab_p".to_owned(), 1i16)];
    g.extend(ids.iter().map(|u| (u.clone(), "ab_r".to_owned(), 1)));
    grants(&pool, &g).await?;
    let t = tokens(&pool, &ids).await?;
    std::fs::write(tokens_out, t.join("\n") + "\n").map_err(|e| format!("{}: {e}", tokens_out.display()))?;
    eprintln!("graph-fixture: {users} users with read on {object} (user → role ab_r → project ab_p → owns it); tokens in {}", tokens_out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_name_with_or_without_prefix_and_total() {
        let m = Metrics::parse(
            "# HELP switchyard_events_filtered x\n# TYPE switchyard_events_filtered counter\n\
             switchyard_events_filtered_total 7\nswitchyard_graph_applied_seq{realm=\"workbench\"} 42\n\
             switchyard_graph_applied_seq{realm=\"other\"} 1\nswitchyard_events_filtered_by_something 100\n",
        );
        assert_eq!(m.get("events_filtered"), 7.0);
        assert_eq!(m.get("switchyard_events_filtered"), 7.0);
        assert_eq!(m.get("graph_applied_seq"), 43.0);
        assert_eq!(m.get("absent"), 0.0);
    }
}
