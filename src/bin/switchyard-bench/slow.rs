//! The slow-consumer workload: does one subscriber that reads slowly cost the others
//! anything, and does it still get every event? One publisher sends `rate`
//! publications per second (open loop, no acknowledgement, each carrying its send time
//! as `Arguments[0]`, as in `latency`) to one topic for `--duration` seconds. `fast`
//! subscribers read everything and record publish → receive latency. With
//! `slow_fraction` > 0 one more subscriber reads only `rate × slow_fraction` messages
//! per second while the publisher runs (its socket and then its outbox fill up; on a
//! stored topic the router marks it lagging and catches it up from the replay store),
//! then reads as fast as it can until it has every event (the drain). `slow_fraction`
//! 0: no slow subscriber (the baseline to compare the fast ones' latency with).
//!
//! The topic's store must hold the whole run (`max_events` ≥ rate × duration),
//! otherwise the slow subscriber is told `_gap`. Every subscriber checks its events:
//! `_pos` contiguous from 1, no `_gap`, no `_dropped`. Loss, disorder, a gap or a drop
//! fails the run. Figures: the fast subscribers' latency percentiles, the slow one's
//! count while publishing and after the drain, how long the drain took, and the
//! router's catch-up counters from /metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard::wamp::{Args, Dict, Message, Payload, Value};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::graphdb::{http_addr, Metrics};
use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, open_subscribers, wait_for_drain, watch_silent_publisher, Session};
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    pub fast: usize,
    pub rate: u64,
    pub slow_fraction: f64,
    pub payload: usize,
    pub warmup: Duration,
}

/// What one subscriber saw.
#[derive(Default)]
struct Sub {
    received: AtomicU64,
    /// Events whose `_pos` was not the one due.
    disorder: AtomicU64,
    gap: AtomicU64,
    dropped: AtomicU64,
    samples: Mutex<Samples>,
}

impl Sub {
    /// Checks one EVENT's details against the position due; returns the next one due.
    fn check(&self, details: &Dict, due: u64, errors: &Mutex<Vec<String>>, who: &str) -> u64 {
        let pos = details.get("_pos").and_then(Value::as_u64);
        if pos != Some(due) && self.disorder.fetch_add(1, Ordering::Relaxed) == 0 {
            errors.lock().unwrap().push(format!("{who} subscriber: _pos {pos:?} where {due} was due"));
        }
        if let Some(g) = details.get("_gap") {
            self.gap.fetch_add(g.as_u64().unwrap_or(1), Ordering::Relaxed);
            errors.lock().unwrap().push(format!("{who} subscriber: _gap {g:?} at _pos {pos:?}"));
        }
        if let Some(d) = details.get("_dropped") {
            self.dropped.fetch_add(d.as_u64().unwrap_or(1), Ordering::Relaxed);
            errors.lock().unwrap().push(format!("{who} subscriber: _dropped {d:?} at _pos {pos:?}"));
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        pos.unwrap_or(due) + 1
    }
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("slow-consumer");
    run.param("fast", p.fast);
    run.param("rate", p.rate);
    run.param("slow_fraction", p.slow_fraction);
    run.param("slow_subscriber", p.slow_fraction > 0.0);
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
    let topic = ctx.uri("slow");
    let ser = ctx.serializer;
    let http = http_addr(&ctx.url).await.ok();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let base = Instant::now();
    let warmup_ns = Arc::new(AtomicU64::new(u64::MAX));
    let fast: Vec<Arc<Sub>> = (0..p.fast).map(|_| Arc::new(Sub::default())).collect();
    let slow = Arc::new(Sub::default());
    let publishing_done = Arc::new(AtomicBool::new(false));

    let mut keep = Vec::new();
    let mut readers = JoinSet::new();
    for (i, s) in open_subscribers(ctx, &topic, p.fast).await?.into_iter().enumerate() {
        let Session { tx, mut rx, .. } = s;
        keep.push(tx);
        let (sub, errors, warmup_ns) = (fast[i].clone(), errors.clone(), warmup_ns.clone());
        readers.spawn(async move {
            let mut due = 1;
            loop {
                let frame = match rx.next().await {
                    Ok(Some(f)) => f,
                    Ok(None) | Err(_) => {
                        errors.lock().unwrap().push("the router closed a fast subscriber's connection".into());
                        break;
                    }
                };
                let now = base.elapsed().as_nanos() as u64;
                match Message::decode(ser, &frame) {
                    Ok(Message::Event { payload, details, .. }) => {
                        let sent = payload
                            .args
                            .as_ref()
                            .and_then(|a| a.to_value().ok())
                            .and_then(|v| v.as_list().and_then(|l| l.first().and_then(Value::as_u64)));
                        if let Some(t) = sent.filter(|t| *t >= warmup_ns.load(Ordering::Relaxed)) {
                            sub.samples.lock().unwrap().push(now.saturating_sub(t));
                        }
                        due = sub.check(&details, due, &errors, "a fast");
                    }
                    Ok(other) => errors.lock().unwrap().push(format!("fast subscriber received {}", describe_error(&other))),
                    Err(e) => errors.lock().unwrap().push(format!("fast subscriber cannot decode: {e}")),
                }
            }
        });
    }

    // The slow subscriber: one read every 1 / (rate × fraction) s while the publisher
    // runs, then as fast as it can.
    let mut slow_drained_at: Option<Arc<Mutex<Option<Instant>>>> = None;
    if p.slow_fraction > 0.0 {
        let mut s = Session::open(&ctx.target, &ctx.opts(None, 16 * 1024), &ctx.realm).await?;
        s.subscribe(&topic).await?;
        let Session { tx, mut rx, .. } = s;
        keep.push(tx);
        let period = Duration::from_secs_f64(1.0 / (p.rate as f64 * p.slow_fraction));
        let (sub, errors, done) = (slow.clone(), errors.clone(), publishing_done.clone());
        let last = Arc::new(Mutex::new(None));
        slow_drained_at = Some(last.clone());
        readers.spawn(async move {
            let mut due = 1;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                if !done.load(Ordering::Relaxed) {
                    tick.tick().await;
                }
                let frame = match rx.next().await {
                    Ok(Some(f)) => f,
                    Ok(None) | Err(_) => {
                        errors.lock().unwrap().push("the router closed the slow subscriber's connection".into());
                        break;
                    }
                };
                match Message::decode(ser, &frame) {
                    Ok(Message::Event { details, .. }) => {
                        due = sub.check(&details, due, &errors, "the slow");
                        *last.lock().unwrap() = Some(Instant::now());
                    }
                    Ok(other) => errors.lock().unwrap().push(format!("slow subscriber received {}", describe_error(&other))),
                    Err(e) => errors.lock().unwrap().push(format!("slow subscriber cannot decode: {e}")),
                }
            }
        });
    }

    let Session { tx, rx: prx, .. } = Session::open_as(&ctx.target, &ctx.opts(None, 16 * 1024), &ctx.realm, &ctx.service()).await?;
    readers.spawn(watch_silent_publisher(prx, ser, errors.clone()));

    let metrics0 = match http {
        Some(a) => Metrics::scrape(a).await.ok(),
        None => None,
    };
    let pad = "x".repeat(p.payload.saturating_sub(16));
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    warmup_ns.store(base.elapsed().as_nanos() as u64 + p.warmup.as_nanos() as u64, Ordering::Relaxed);
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
            tx.send(&Message::Publish { request: sent, options: Dict::new(), topic: topic.clone(), payload: Args { args: Some(args), kwargs: None } })?;
        }
    }
    let publish_window = start.elapsed().as_secs_f64();
    // Let the fast ones take the last publications before the slow one speeds up.
    let fast_expected = sent * p.fast as u64;
    let fast_received = || fast.iter().map(|s| s.received.load(Ordering::Relaxed)).sum::<u64>();
    wait_for_drain(fast_received, |&n| n >= fast_expected, ctx.drain).await;
    let slow_during = slow.received.load(Ordering::Relaxed);
    let drain_start = Instant::now();
    publishing_done.store(true, Ordering::Relaxed);
    if p.slow_fraction > 0.0 {
        wait_for_drain(|| slow.received.load(Ordering::Relaxed), |&n| n >= sent, ctx.drain).await;
    }
    let drained = slow_drained_at.as_ref().and_then(|l| *l.lock().unwrap()).map(|t| t.saturating_duration_since(drain_start).as_secs_f64());
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish(0.0);
    let metrics1 = match http {
        Some(a) => Metrics::scrape(a).await.ok(),
        None => None,
    };
    readers.abort_all();
    while readers.join_next().await.is_some() {}

    let events = fast_received();
    let mut all = Samples::default();
    for s in &fast {
        all.append(&mut s.samples.lock().unwrap());
    }
    let summary = all.summary();
    let loss = fast_expected as i64 - events as i64;
    let sum = |f: fn(&Sub) -> &AtomicU64| fast.iter().map(|s| f(s).load(Ordering::Relaxed)).sum::<u64>();
    run.fig("publications", sent);
    run.fig("achieved_rate", round(sent as f64 / publish_window, 1));
    run.fig("max_publisher_backlog", max_behind);
    run.fig("publish_window_s", round(publish_window, 3));
    run.fig("elapsed_s", round(elapsed, 3));
    run.fig("fast_events", events);
    run.fig("fast_expected_events", fast_expected);
    run.fig("fast_loss", loss);
    run.fig("fast_disorder", sum(|s| &s.disorder));
    run.fig("fast_gap", sum(|s| &s.gap));
    run.fig("fast_dropped", sum(|s| &s.dropped));
    for (k, v) in summary.to_json("fast_latency_") {
        run.figures.insert(k, v);
    }
    let slow_received = slow.received.load(Ordering::Relaxed);
    if p.slow_fraction > 0.0 {
        run.fig("slow_received_while_publishing", slow_during);
        run.fig("slow_received", slow_received);
        run.fig("slow_loss", sent as i64 - slow_received as i64);
        run.fig("slow_disorder", slow.disorder.load(Ordering::Relaxed));
        run.fig("slow_gap", slow.gap.load(Ordering::Relaxed));
        run.fig("slow_dropped", slow.dropped.load(Ordering::Relaxed));
        run.fig("slow_drain_s", drained.map(|d| round(d, 3)));
    }
    if let (Some(m0), Some(m1)) = (&metrics0, &metrics1) {
        for name in ["subscribers_lagged", "events_caught_up", "events_gap", "events_dropped_outbox_full", "events_dropped_budget"] {
            run.fig(name, m1.get(name) - m0.get(name));
        }
    }
    let per_cpu = cpu.per_router_cpu_s(events + slow_received);
    run.fig("events_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    run.headline = format!(
        "{} publications/s to {} fast{}; fast publish→event {}; loss {loss}{}",
        thousands(sent as f64 / publish_window),
        p.fast,
        if p.slow_fraction > 0.0 { " + 1 slow" } else { "" },
        summary.human(),
        if p.slow_fraction > 0.0 {
            format!(
                "; slow: {slow_during} while publishing, {slow_received} of {sent} after a drain of {:.2} s",
                drained.unwrap_or(f64::NAN)
            )
        } else {
            String::new()
        }
    );
    run.cpu = Some(cpu);
    let mut errs = errors.lock().unwrap();
    let n = errs.len();
    errs.truncate(5);
    run.errors.append(&mut errs);
    if n > 5 {
        run.errors.push(format!("… {n} errors in all"));
    }
    if loss != 0 {
        run.failed = Some(format!("fast subscribers: {loss} of {fast_expected} events not received"));
    } else if p.slow_fraction > 0.0 && slow_received != sent {
        run.failed = Some(format!("the slow subscriber received {slow_received} of {sent} events"));
    } else if summary.count == 0 {
        run.failed = Some("no latency sample".into());
    }
    drop(keep);
    Ok(())
}
