//! The latency workload: one publisher sends publications at a fixed rate (open loop,
//! no acknowledgement), each carrying its send time (nanoseconds since the run's start,
//! taken just before it is queued for writing) as `Arguments[0]`; N subscribers decode
//! every EVENT and record now − send time. Figures: publish→event latency p50/p90/p99/
//! p99.9/max over all subscribers (samples of the first `--warmup` seconds left out),
//! the publication rate achieved, and loss = publications × N − events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard::wamp::{Args, Dict, Message, Payload, Value};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, open_subscribers, wait_for_drain, watch_silent_publisher, Session};
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    pub rate: u64,
    pub subscribers: usize,
    pub payload: usize,
    pub warmup: Duration,
}

#[derive(Default)]
struct Sub {
    received: AtomicU64,
    samples: Mutex<Samples>,
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("latency");
    run.param("rate", p.rate);
    run.param("subscribers", p.subscribers);
    run.param("payload_bytes", p.payload);
    run.param("duration_s", ctx.duration.as_secs_f64());
    run.param("warmup_s", p.warmup.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let topic = ctx.uri("latency");
    let ser = ctx.serializer;
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let subs: Vec<Arc<Sub>> = (0..p.subscribers).map(|_| Arc::new(Sub::default())).collect();
    // Send times are measured from `base`; the warm-up ends `warmup` after it.
    let base = Instant::now();
    let warmup_ns = Arc::new(AtomicU64::new(u64::MAX));

    let mut keep = Vec::new();
    let mut readers = JoinSet::new();
    for (i, s) in open_subscribers(ctx, &topic, p.subscribers).await?.into_iter().enumerate() {
        let Session { tx, mut rx, .. } = s;
        keep.push(tx);
        let (sub, errors, warmup_ns) = (subs[i].clone(), errors.clone(), warmup_ns.clone());
        readers.spawn(async move {
            loop {
                let frame = match rx.next().await {
                    Ok(Some(f)) => f,
                    Ok(None) | Err(_) => {
                        errors.lock().unwrap().push("the router closed a subscriber's connection".into());
                        break;
                    }
                };
                let now = base.elapsed().as_nanos() as u64;
                match Message::decode(ser, &frame) {
                    Ok(Message::Event { payload, .. }) => {
                        let sent = payload
                            .args
                            .as_ref()
                            .and_then(|a| a.to_value().ok())
                            .and_then(|v| v.as_list().and_then(|l| l.first().and_then(Value::as_u64)));
                        match sent {
                            Some(t) => {
                                if t >= warmup_ns.load(Ordering::Relaxed) {
                                    // Uncontended: only this task and the final read take it.
                                    sub.samples.lock().unwrap().push(now.saturating_sub(t));
                                }
                                sub.received.fetch_add(1, Ordering::Relaxed);
                            }
                            None => errors.lock().unwrap().push("an EVENT without the send time".into()),
                        }
                    }
                    Ok(other) => errors.lock().unwrap().push(format!("subscriber received {}", describe_error(&other))),
                    Err(e) => errors.lock().unwrap().push(format!("subscriber cannot decode: {e}")),
                }
            }
        });
    }

    let Session { tx, rx: prx, .. } = Session::open_as(&ctx.target, &ctx.opts(None, 16 * 1024), &ctx.realm, &ctx.service()).await?;
    readers.spawn(watch_silent_publisher(prx, ser, errors.clone()));

    // Padding so that the Arguments are about `payload` bytes: [t, "xxx…"].
    let pad = "x".repeat(p.payload.saturating_sub(16));
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    let start_ns = base.elapsed().as_nanos() as u64;
    warmup_ns.store(start_ns + p.warmup.as_nanos() as u64, Ordering::Relaxed);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sent: u64 = 0;
    let mut max_behind: u64 = 0;
    let total = (ctx.duration.as_secs_f64() * p.rate as f64).round() as u64;
    while sent < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * p.rate as f64) as u64 + 1).min(total);
        max_behind = max_behind.max(due.saturating_sub(sent));
        while sent < due {
            sent += 1;
            let t = base.elapsed().as_nanos() as u64;
            let args = Payload::from_value(ser, &Value::List(vec![Value::UInt(t), Value::Str(pad.clone())]));
            let msg = Message::Publish { request: sent, options: Dict::new(), topic: topic.clone(), payload: Args { args: Some(args), kwargs: None } };
            tx.send(&msg)?;
        }
    }
    let publish_window = start.elapsed().as_secs_f64();

    let expected = sent * p.subscribers as u64;
    let received = || subs.iter().map(|s| s.received.load(Ordering::Relaxed)).sum::<u64>();
    wait_for_drain(received, |&n| n >= expected, ctx.drain).await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish(0.0);
    readers.abort_all();
    while readers.join_next().await.is_some() {}

    let events = received();
    let mut all = Samples::default();
    for s in &subs {
        all.append(&mut s.samples.lock().unwrap());
    }
    let summary = all.summary();
    let loss = expected as i64 - events as i64;
    run.fig("publications", sent);
    run.fig("events", events);
    run.fig("expected_events", expected);
    run.fig("loss", loss);
    run.fig("publish_window_s", round(publish_window, 3));
    run.fig("elapsed_s", round(elapsed, 3));
    run.fig("achieved_rate", round(sent as f64 / publish_window, 1));
    run.fig("max_publisher_backlog", max_behind);
    run.fig("events_per_s", round(events as f64 / elapsed, 1));
    for (k, v) in summary.to_json("latency_") {
        run.figures.insert(k, v);
    }
    let per_cpu = cpu.per_router_cpu_s(events);
    run.fig("events_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    run.headline = format!(
        "{} publications/s achieved, publish→event {}, loss {loss}, {} events per router CPU-second",
        thousands(sent as f64 / publish_window),
        summary.human(),
        per_cpu.map(thousands).unwrap_or_else(|| "?".into())
    );
    run.cpu = Some(cpu);
    let mut errs = errors.lock().unwrap();
    let n = errs.len();
    errs.truncate(5);
    run.errors.append(&mut errs);
    if n > 5 {
        run.errors.push(format!("… {} errors in all", n));
    }
    if loss != 0 {
        run.failed = Some(format!("{loss} of {expected} events not received within the drain time"));
    } else if summary.count == 0 {
        run.failed = Some("no latency sample".into());
    }
    drop(keep);
    Ok(())
}
