//! The durable workload: sustained acknowledged publications to durable topics (a realm
//! whose `[replay]` rule has `durable = true`, so PUBLISHED is sent only once the event is
//! committed to PostgreSQL). `publishers` sessions each keep up to `window` publications
//! unacknowledged, spread round robin over `topics` topics, for `--duration` seconds;
//! then every acknowledgement is awaited. No subscriber: this measures the store.
//!
//! Figures: publications acknowledged per second (first PUBLISH → last PUBLISHED), the
//! acknowledgement latency (PUBLISH written → PUBLISHED read), the router's
//! `replay_durable_committed_events` before and after (its rate, and a check that every
//! acknowledged event was counted as committed), the highest `replay_durable_queue`
//! seen (scraped every 250 ms), and the CPU of the router and of every process named
//! `postgres` on the machine (its backends do the INSERTs). Any ERROR answering a
//! publication, or a publication left unanswered, fails the run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard::wamp::{dict, Message};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::graphdb::{http_addr, Metrics};
use crate::procstat::{cpu_seconds_named, CpuWindow};
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, padding_args, wait_for_drain, Session};
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    pub publishers: usize,
    pub topics: usize,
    pub window: usize,
    pub payload: usize,
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    closed: AtomicU64,
    last_ack: Mutex<Option<Instant>>,
    first_error: Mutex<Option<String>>,
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("durable");
    run.param("publishers", p.publishers);
    run.param("topics", p.topics);
    run.param("window", p.window);
    run.param("payload_bytes", p.payload);
    run.param("duration_s", ctx.duration.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let http = http_addr(&ctx.url).await?;
    let before = Metrics::scrape(http).await?;
    if before.get("replay_durable_online") < 1.0 {
        return Err(format!("the realm's durable store is not online (replay_durable_online {})", before.get("replay_durable_online")));
    }
    let base = ctx.uri("durable");
    let topics: Arc<Vec<String>> = Arc::new((0..p.topics).map(|i| format!("{base}.t{i}")).collect());
    let shared = Arc::new(Shared::default());
    let mut all_samples: Vec<Arc<Mutex<Samples>>> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));

    let mut sessions = Vec::with_capacity(p.publishers);
    for _ in 0..p.publishers {
        sessions.push(Session::open_as(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm, &ctx.service()).await?);
    }
    let args = padding_args(ctx.serializer, p.payload);
    let options = dict([("acknowledge", true.into())]);
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let pg0 = cpu_seconds_named("postgres");
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut readers = JoinSet::new();
    for (i, s) in sessions.into_iter().enumerate() {
        let Session { tx, mut rx, .. } = s;
        let window = Arc::new(Semaphore::new(p.window));
        let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let samples: Arc<Mutex<Samples>> = Arc::default();
        all_samples.push(samples.clone());
        {
            let (shared, window, sent_at, samples, ser) = (shared.clone(), window.clone(), sent_at.clone(), samples.clone(), ctx.serializer);
            readers.spawn(async move {
                loop {
                    let frame = match rx.next().await {
                        Ok(Some(f)) => f,
                        Ok(None) | Err(_) => {
                            shared.closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    };
                    let now = Instant::now();
                    match Message::decode(ser, &frame) {
                        Ok(Message::Published { request, .. }) => {
                            if let Some(t) = sent_at.lock().unwrap().remove(&request) {
                                samples.lock().unwrap().push(now.duration_since(t).as_nanos() as u64);
                            }
                            shared.acked.fetch_add(1, Ordering::Relaxed);
                            *shared.last_ack.lock().unwrap() = Some(now);
                        }
                        other => {
                            if let Ok(Message::Error { request, .. }) = &other {
                                sent_at.lock().unwrap().remove(request);
                            }
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                            let what = other.map(|m| describe_error(&m)).unwrap_or_else(|e| e.to_string());
                            shared.first_error.lock().unwrap().get_or_insert(format!("publisher received {what}"));
                        }
                    }
                    window.add_permits(1);
                }
            });
        }
        let (shared, topics, stop, args, options, publishers) = (shared.clone(), topics.clone(), stop.clone(), args.clone(), options.clone(), p.publishers);
        tasks.spawn(async move {
            let mut request = 0u64;
            let mut k = i;
            while !stop.load(Ordering::Relaxed) {
                let Ok(permit) = window.acquire().await else { break };
                permit.forget();
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                request += 1;
                let topic = topics[k % topics.len()].clone();
                k += publishers;
                let msg = Message::Publish { request, options: options.clone(), topic, payload: args.clone() };
                let frame = msg.encode(tx.serializer).map_err(|e| e.to_string())?;
                sent_at.lock().unwrap().insert(request, Instant::now());
                tx.send_frame(frame)?;
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(tx)
        });
    }

    // The writer's queue, every 250 ms while publishing.
    let mut max_queue = 0f64;
    let deadline = start + ctx.duration;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250).min(deadline.saturating_duration_since(Instant::now()))).await;
        if let Ok(m) = Metrics::scrape(http).await {
            max_queue = max_queue.max(m.get("replay_durable_queue"));
        }
        if shared.closed.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let publish_window = start.elapsed();
    let mut keep = Vec::new();
    while let Some(r) = tasks.join_next().await {
        keep.push(r.map_err(|e| e.to_string())??);
    }
    let sent = shared.sent.load(Ordering::Relaxed);
    let answered = |s: &Shared| s.acked.load(Ordering::Relaxed) + s.errors.load(Ordering::Relaxed);
    wait_for_drain(|| answered(&shared), |&a| a >= sent, ctx.drain).await;
    let cpu = cpu.finish(0.0);
    let pg_cpu = cpu_seconds_named("postgres") - pg0;
    let after = Metrics::scrape(http).await?;
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    drop(keep);

    let acked = shared.acked.load(Ordering::Relaxed);
    let errors = shared.errors.load(Ordering::Relaxed);
    let last_ack = shared.last_ack.lock().unwrap().unwrap_or(start);
    let elapsed = last_ack.duration_since(start).as_secs_f64().max(1e-9);
    let committed = after.get("replay_durable_committed_events") - before.get("replay_durable_committed_events");
    let failed_rows = after.get("replay_durable_failed_events") - before.get("replay_durable_failed_events");
    let mut samples = Samples::default();
    for s in &all_samples {
        samples.append(&mut s.lock().unwrap());
    }
    let summary = samples.summary();
    run.fig("publications_sent", sent);
    run.fig("publications", acked);
    run.fig("publish_errors", errors);
    run.fig("publications_unanswered", sent.saturating_sub(acked + errors));
    run.fig("publish_window_s", round(publish_window.as_secs_f64(), 3));
    run.fig("elapsed_s", round(elapsed, 3));
    run.fig("acked_per_s", round(acked as f64 / elapsed, 1));
    run.fig("committed_events", committed);
    run.fig("committed_per_s", round(committed / elapsed, 1));
    run.fig("durable_failed_events", failed_rows);
    run.fig("max_durable_queue", max_queue);
    run.fig("postgres_cpu_s", round(pg_cpu, 3));
    run.fig("postgres_cores", round(pg_cpu / cpu.wall_s.max(1e-9), 3));
    // `other_cores` counts PostgreSQL, which is part of this workload.
    run.fig("other_cores_besides_postgres", round(((cpu.other_cpu_s - pg_cpu) / cpu.wall_s.max(1e-9)).max(0.0), 3));
    for (k, v) in summary.to_json("ack_") {
        run.figures.insert(k, v);
    }
    let per_cpu = cpu.per_router_cpu_s(acked);
    run.fig("events_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    run.headline = format!(
        "{} acknowledged publications/s to {} topic(s) ({} committed/s), ack {}, postgres {:.2} cores",
        thousands(acked as f64 / elapsed),
        p.topics,
        thousands(committed / elapsed),
        summary.human(),
        pg_cpu / cpu.wall_s.max(1e-9)
    );
    run.cpu = Some(cpu);
    if let Some(e) = shared.first_error.lock().unwrap().take() {
        run.errors.push(e);
    }
    if shared.closed.load(Ordering::Relaxed) > 0 {
        run.errors.push(format!("{} publisher connections closed by the router", shared.closed.load(Ordering::Relaxed)));
    }
    if acked == 0 {
        run.failed = Some("no publication was acknowledged".into());
    } else if acked + errors < sent {
        run.failed = Some(format!("{} of {sent} publications never answered", sent - acked - errors));
    } else if errors > 0 {
        run.failed = Some(format!("{errors} publications answered with an ERROR"));
    } else if committed < acked as f64 {
        run.failed = Some(format!("{acked} publications acknowledged but only {committed} events counted as committed"));
    }
    Ok(())
}
