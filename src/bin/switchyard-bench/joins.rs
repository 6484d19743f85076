//! The joins workload: C loops each open a connection, join the realm (HELLO →
//! WELCOME), say GOODBYE and close, as fast as the router lets them, for `--duration`;
//! optionally W watchers subscribe to `wamp.session.on_join` meanwhile (and `on_leave`
//! with `--leaves`), so the cost of the meta events shows as the difference between a
//! run with watchers and one without. Figures: joins/s, join time (HELLO sent → WELCOME) p50/p99, joins
//! per router CPU-second, and the meta events each watcher received.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use switchyard::wamp::{Dict, Message};
use tokio::task::JoinSet;

use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::Session;
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    pub concurrency: usize,
    pub watchers: usize,
    /// The watchers follow `wamp.session.on_leave` too.
    pub leaves: bool,
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("joins");
    run.param("concurrency", p.concurrency);
    run.param("watchers", p.watchers);
    run.param("leaves", p.leaves);
    run.param("duration_s", ctx.duration.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let seen = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for _ in 0..p.watchers {
        let mut w = Session::open(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm).await?;
        w.subscribe("wamp.session.on_join").await?;
        if p.leaves {
            w.subscribe("wamp.session.on_leave").await?;
        }
        let seen = seen.clone();
        let Session { tx, mut rx, .. } = w;
        watchers.push(tokio::spawn(async move {
            let _keep = tx;
            while let Ok(Some(_)) = rx.next().await {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    let deadline = start + ctx.duration;
    let mut loops = JoinSet::new();
    for _ in 0..p.concurrency.max(1) {
        let (target, opts, realm) = (ctx.target.clone(), ctx.opts(None, 16 * 1024), ctx.realm.clone());
        loops.spawn(async move {
            let mut times = Samples::default();
            let mut joins = 0u64;
            while Instant::now() < deadline {
                let mut s = Session::open(&target, &opts, &realm).await?;
                times.push(s.join_time.as_nanos() as u64);
                joins += 1;
                s.tx.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() })?;
                // The router's GOODBYE reply, then the close.
                let _ = s.recv().await;
            }
            Ok::<(u64, Samples), String>((joins, times))
        });
    }
    let mut times = Samples::default();
    let mut joins = 0;
    while let Some(r) = loops.join_next().await {
        let (n, mut t) = r.map_err(|e| e.to_string())??;
        joins += n;
        times.append(&mut t);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish(0.0);
    // Let the last meta events arrive before counting them.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for w in &watchers {
        w.abort();
    }
    let per_s = joins as f64 / elapsed;
    let s = times.summary();
    run.fig("joins", joins);
    run.fig("joins_per_s", round(per_s, 1));
    for (k, v) in s.to_json("join_") {
        run.figures.insert(k, v);
    }
    let per_cpu = cpu.per_router_cpu_s(joins);
    run.fig("joins_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    let events = seen.load(Ordering::Relaxed);
    run.fig("meta_events_per_watcher", if p.watchers > 0 { events / p.watchers as u64 } else { 0 });
    run.headline = format!(
        "{} joins/s, {} joins per router CPU-second, join {}{}",
        thousands(per_s),
        per_cpu.map(thousands).unwrap_or_else(|| "?".into()),
        s.human(),
        if p.watchers > 0 { format!(", {} meta events per watcher", events / p.watchers as u64) } else { String::new() }
    );
    run.cpu = Some(cpu);
    let each = if p.leaves { 2 } else { 1 };
    if p.watchers > 0 && events < each * joins * p.watchers as u64 {
        run.failed = Some(format!("watchers saw {events} meta events for {joins} joins ({each} each expected)"));
    }
    Ok(())
}
