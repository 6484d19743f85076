//! The graph workload of first encounters: what a decision costs when the router has
//! nothing cached, and how fast users join with API tokens.
//!
//! Graph (ids under `cd_`, written by the generator): role `cd_r` shared at read on
//! project `cd_p`, which owns the containers `cd_o<u>_<j>`; users `cd_u<u>` are members
//! of the role; `joins` users `cd_j<i>` have a token each.
//!
//! Decisions, one user at a time, one SUBSCRIBE in flight, nothing else running: user
//! `u` joins and subscribes to `containers.cd_o<u>_<j>.logs` for `j` in `0..objects`:
//! - `first`: its first SUBSCRIBE (neither its closure nor the object is cached: two
//!   queries, run together);
//! - `cold`: the following ones (closure cached, the object not: one query);
//! - `warm`: then the objects of the user before it (cached; only the level is
//!   computed in memory), the baseline of a SUBSCRIBE round trip.
//!
//! Joins: `joins` clients, `concurrency` at a time, each connects, joins with its own
//! token (HELLO → CHALLENGE → AUTHENTICATE → WELCOME: one token lookup), and leaves;
//! then the same again with the same tokens (each found valid before: a router that
//! keeps valid tokens answers from memory). Figures: joins/s, HELLO → WELCOME p50/p99,
//! router CPU per join, for both passes. With `--service`,
//! the same number of joins with that static principal's ticket follows, for
//! reference (no database involved).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::graphdb;
use crate::procstat::{CpuReport, CpuWindow};
use crate::report::{round, thousands, Run};
use crate::session::{Identity, Session};
use crate::stats::{Samples, Summary};
use crate::Ctx;

pub struct Params {
    pub database_url: String,
    pub users: usize,
    pub objects: usize,
    pub joins: usize,
    pub concurrency: usize,
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("graph-cold");
    run.param("users", p.users);
    run.param("objects_per_user", p.objects);
    run.param("joins", p.joins);
    run.param("join_concurrency", p.concurrency);
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

fn object(u: usize, j: usize) -> String {
    format!("cd_o{u}_{j}")
}

fn topic(u: usize, j: usize) -> String {
    format!("containers.{}.logs", object(u, j))
}

fn ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 3)
}

fn put(run: &mut Run, prefix: &str, s: Summary) {
    run.fig(&format!("{prefix}_samples"), s.count as u64);
    run.fig(&format!("{prefix}_p50_ms"), ms(s.p50));
    run.fig(&format!("{prefix}_p99_ms"), ms(s.p99));
    run.fig(&format!("{prefix}_max_ms"), ms(s.max));
}

/// One pass of `joins` as `{prefix}s` (e.g. `token_joins`), `{prefix}s_per_s`,
/// `{prefix}s_per_router_cpu_s`, the cores of the router, the generator and the rest of
/// the machine (PostgreSQL's share, mostly), and the HELLO → WELCOME times
/// (`{prefix}_p50_ms`, ...).
fn put_joins(run: &mut Run, prefix: &str, (rate, joined, cpu, errors): (f64, Summary, CpuReport, Vec<String>)) -> (f64, Summary) {
    run.fig(&format!("{prefix}s"), joined.count as u64);
    run.fig(&format!("{prefix}s_per_s"), round(rate, 1));
    run.fig(&format!("{prefix}s_per_router_cpu_s"), cpu.per_router_cpu_s(joined.count as u64).map(|x| round(x, 1)));
    run.fig(&format!("{prefix}s_router_cores"), cpu.router_cores().map(|x| round(x, 2)));
    run.fig(&format!("{prefix}s_generator_cores"), round(cpu.generator_cores(), 2));
    run.fig(&format!("{prefix}s_other_cores"), round(cpu.other_cpu_s / cpu.wall_s.max(1e-9), 2));
    put(run, prefix, joined);
    run.errors.extend(errors);
    (rate, joined)
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    if p.objects < 2 || p.users < 2 {
        return Err("graph-cold needs --users and --objects of at least 2".into());
    }
    let http = graphdb::http_addr(&ctx.url).await?;
    let pool = graphdb::connect(&p.database_url).await?;
    let t = Instant::now();
    graphdb::clear(&pool, "cd_").await?;
    graphdb::principals(&pool, "project", &["cd_p".to_owned()]).await?;
    graphdb::principals(&pool, "role", &["cd_r".to_owned()]).await?;
    let users: Vec<String> = (0..p.users).map(|u| format!("cd_u{u}")).collect();
    let joiners: Vec<String> = (0..p.joins).map(|i| format!("cd_j{i}")).collect();
    graphdb::principals(&pool, "user", &users).await?;
    graphdb::principals(&pool, "user", &joiners).await?;
    let objects: Vec<(String, String)> = (0..p.users).flat_map(|u| (0..p.objects).map(move |j| (object(u, j), "cd_p".to_owned()))).collect();
    graphdb::objects(&pool, "container", &objects).await?;
    let mut grants = vec![("cd_r".to_owned(), "cd_p".to_owned(), 1i16)];
    grants.extend(users.iter().map(|u| (u.clone(), "cd_r".to_owned(), 1)));
    grants.extend(joiners.iter().map(|u| (u.clone(), "cd_r".to_owned(), 1)));
    graphdb::grants(&pool, &grants).await?;
    let user_tokens = graphdb::tokens(&pool, &users).await?;
    let join_tokens = graphdb::tokens(&pool, &joiners).await?;
    graphdb::wait_applied(http, graphdb::last_seq(&pool).await?, Duration::from_secs(120)).await?;
    run.fig("graph_setup_s", round(t.elapsed().as_secs_f64(), 2));

    // Decisions, one at a time.
    let (mut first, mut cold, mut warm) = (Samples::default(), Samples::default(), Samples::default());
    let mut keep = Vec::new();
    for (u, token) in user_tokens.iter().enumerate() {
        let mut s = Session::open_as(&ctx.target, &ctx.opts(None, 16 * 1024), &ctx.realm, &Identity::token(token)).await?;
        for j in 0..p.objects {
            let t = Instant::now();
            s.subscribe(&topic(u, j)).await?;
            let took = t.elapsed().as_nanos() as u64;
            if j == 0 { first.push(took) } else { cold.push(took) }
        }
        if u > 0 {
            for j in 0..p.objects {
                let t = Instant::now();
                s.subscribe(&topic(u - 1, j)).await?;
                warm.push(t.elapsed().as_nanos() as u64);
            }
        }
        keep.push(s);
    }
    drop(keep);
    let (first, cold, warm) = (first.summary(), cold.summary(), warm.summary());
    put(run, "first_subscribe", first);
    put(run, "cold_subscribe", cold);
    put(run, "warm_subscribe", warm);

    // Joins with a token each.
    let tokens: Vec<Identity> = join_tokens.iter().map(|t| Identity::token(t)).collect();
    let (rate, joined) = put_joins(run, "token_join", joins(ctx, tokens, p.concurrency).await?);

    // The same tokens again: each was found valid once, so the router may answer from
    // memory (a service joining again, an HTTP bridge request with its token).
    let again: Vec<Identity> = join_tokens.iter().map(|t| Identity::token(t)).collect();
    let (again_rate, rejoined) = put_joins(run, "token_rejoin", joins(ctx, again, p.concurrency).await?);

    // For reference: the same with a static principal's ticket.
    let service = ctx.service();
    let mut reference = String::new();
    if matches!(service, Identity::Ticket { .. }) {
        let (rate, _) = put_joins(run, "ticket_join", joins(ctx, vec![service; p.joins], p.concurrency).await?);
        reference = format!("; static ticket {} joins/s", thousands(rate));
    }
    run.headline = format!(
        "SUBSCRIBE → SUBSCRIBED: object not cached p50 {:.2} ms p99 {:.2} ms; first of a user p50 {:.2} ms; cached p50 {:.2} ms; \
         token joins {} /s (HELLO → WELCOME p50 {:.2} ms, p99 {:.2} ms), again {} /s (p50 {:.2} ms){reference}",
        ms(cold.p50),
        ms(cold.p99),
        ms(first.p50),
        ms(warm.p50),
        thousands(rate),
        ms(joined.p50),
        ms(joined.p99),
        thousands(again_rate),
        ms(rejoined.p50),
    );
    if joined.count < p.joins || rejoined.count < p.joins {
        let failed = 2 * p.joins - joined.count - rejoined.count;
        run.failed = Some(format!("{failed} of {} token joins failed", 2 * p.joins));
    }
    Ok(())
}

/// `who.len()` clients, `concurrency` at a time, each joins once and leaves: joins per
/// second over the whole batch, HELLO → WELCOME times, the CPU window.
async fn joins(ctx: &Ctx, who: Vec<Identity>, concurrency: usize) -> Result<(f64, Summary, CpuReport, Vec<String>), String> {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for w in who {
        let (target, opts, realm, gate) = (ctx.target.clone(), ctx.opts(None, 4096), ctx.realm.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let s = Session::open_as(&target, &opts, &realm, &w).await?;
            Ok::<u64, String>(s.join_time.as_nanos() as u64)
        });
    }
    let mut samples = Samples::default();
    let mut errors = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok(ns) => samples.push(ns),
            Err(e) if errors.len() < 5 => errors.push(e),
            Err(_) => {}
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish(0.0);
    let s = samples.summary();
    Ok((s.count as f64 / elapsed, s, cpu, errors))
}
