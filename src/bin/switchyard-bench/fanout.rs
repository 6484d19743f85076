//! The fan-out workload: one publisher, N subscribers on one topic. Closed loop: the
//! publisher sends PUBLISH with `acknowledge: true` and keeps at most `in_flight`
//! publications ahead of the slowest subscriber (and at most `in_flight` unacknowledged),
//! so it measures what every subscriber receives, not how fast a router can queue or
//! drop. Subscribers only count EVENTs (their type is peeked, not
//! decoded). After `--duration` the publisher stops, waits for its acknowledgements, and
//! the run waits until every subscriber has every event (or nothing arrives for
//! `--drain` seconds). Figures: events/s (sum over subscribers), publications/s, events
//! per router CPU-second, and loss = publications × N − events received.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Message};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::conn::peek_type;
use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, open_subscribers, padding_args, wait_for_drain, Session};
use crate::Ctx;

pub struct Params {
    pub subscribers: usize,
    pub in_flight: usize,
    pub payload: usize,
    /// The topic; default: one unique to the run.
    pub topic: Option<String>,
}

/// Counters shared by the reader tasks.
#[derive(Default)]
struct Shared {
    acked: AtomicU64,
    publish_errors: AtomicU64,
    unexpected: AtomicU64,
    /// Sum of `EVENT.Details._dropped` (Switchyard's count of events it dropped for a
    /// subscriber whose outbox was full).
    dropped_reported: AtomicU64,
    closed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn error(&self, e: String) {
        let mut f = self.first_error.lock().unwrap();
        if f.is_none() {
            *f = Some(e);
        }
    }
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("fanout");
    run.param("subscribers", p.subscribers);
    run.param("in_flight", p.in_flight);
    run.param("payload_bytes", p.payload);
    run.param("duration_s", ctx.duration.as_secs_f64());
    match measure(ctx, &p, &mut run).await {
        Ok(()) => run,
        Err(e) => {
            run.failed = Some(e.clone());
            run.errors.push(e);
            run
        }
    }
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let topic = p.topic.clone().unwrap_or_else(|| ctx.uri("fanout"));
    let shared = Arc::new(Shared::default());
    let mut readers = JoinSet::new();

    // Subscribers, connected a few at a time.
    let counters: Vec<Arc<AtomicU64>> = (0..p.subscribers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    // Woken by every delivered event, so the publisher can wait for the slowest subscriber.
    let delivered = Arc::new(Notify::new());
    let mut keep = Vec::with_capacity(p.subscribers); // senders: keep the connections open
    for (i, s) in open_subscribers(ctx, &topic, p.subscribers).await?.into_iter().enumerate() {
        let counter = counters[i].clone();
        let Session { tx, mut rx, .. } = s;
        keep.push(tx);
        let ser = ctx.serializer;
        let (shared, delivered) = (shared.clone(), delivered.clone());
        readers.spawn(async move {
            loop {
                match rx.next().await {
                    Ok(Some(frame)) => {
                        if peek_type(ser, &frame) == Some(code::EVENT) {
                            counter.fetch_add(1, Ordering::Relaxed);
                            delivered.notify_one();
                            if frame.windows(8).any(|w| w == b"_dropped") {
                                if let Ok(Message::Event { details, .. }) = Message::decode(ser, &frame) {
                                    let n = details.get("_dropped").and_then(|v| v.as_u64()).unwrap_or(0);
                                    shared.dropped_reported.fetch_add(n, Ordering::Relaxed);
                                }
                            }
                        } else {
                            shared.unexpected.fetch_add(1, Ordering::Relaxed);
                            let what = Message::decode(ser, &frame).map(|m| describe_error(&m)).unwrap_or_else(|e| e.to_string());
                            shared.error(format!("subscriber received {what}"));
                        }
                    }
                    Ok(None) | Err(_) => {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
    }

    // The publisher.
    let Session { tx, rx: mut prx, .. } = Session::open_as(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm, &ctx.service()).await?;
    let window = Arc::new(Semaphore::new(p.in_flight));
    {
        let (shared, window, ser) = (shared.clone(), window.clone(), ctx.serializer);
        readers.spawn(async move {
            loop {
                match prx.next().await {
                    Ok(Some(frame)) => {
                        match peek_type(ser, &frame) {
                            Some(code::PUBLISHED) => {
                                shared.acked.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                                let what = Message::decode(ser, &frame).map(|m| describe_error(&m)).unwrap_or_else(|e| e.to_string());
                                shared.error(format!("publisher received {what}"));
                            }
                        }
                        window.add_permits(1);
                    }
                    Ok(None) | Err(_) => {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        shared.error("the router closed the publisher's connection".into());
                        return;
                    }
                }
            }
        });
    }

    let args = padding_args(ctx.serializer, p.payload);
    let options = dict([("acknowledge", true.into())]);
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + ctx.duration;
    let mut sent: u64 = 0;
    let slowest = |c: &[Arc<AtomicU64>]| c.iter().map(|x| x.load(Ordering::Relaxed)).min().unwrap_or(u64::MAX);
    'publishing: loop {
        while sent >= slowest(&counters).saturating_add(p.in_flight as u64) {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break 'publishing,
                _ = delivered.notified() => {}
                // A subscriber whose connection closed never catches up: the drain below
                // then reports the loss.
                _ = tokio::time::sleep(ctx.drain) => break 'publishing,
            }
        }
        let permit = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break 'publishing,
            p = window.acquire() => p.map_err(|e| e.to_string())?,
        };
        permit.forget();
        sent += 1;
        let msg = Message::Publish { request: sent, options: options.clone(), topic: topic.clone(), payload: args.clone() };
        tx.send(&msg)?;
        if shared.closed.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    let publish_window = start.elapsed();

    // Every acknowledgement, then every event (or no progress for --drain).
    let answered = |s: &Shared| s.acked.load(Ordering::Relaxed) + s.publish_errors.load(Ordering::Relaxed);
    let received = |c: &[Arc<AtomicU64>]| c.iter().map(|x| x.load(Ordering::Relaxed)).sum::<u64>();
    let subscribers = p.subscribers as u64;
    wait_for_drain(
        || (answered(&shared), received(&counters), shared.acked.load(Ordering::Relaxed)),
        |&(answered, received, acked)| answered >= sent && received >= acked * subscribers,
        ctx.drain,
    )
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish(0.0);

    let acked = shared.acked.load(Ordering::Relaxed);
    let events = received(&counters);
    let expected = acked * p.subscribers as u64;
    let loss = expected as i64 - events as i64;
    let unanswered = sent - answered(&shared).min(sent);
    run.fig("publications", acked);
    run.fig("publications_sent", sent);
    run.fig("publications_unanswered", unanswered);
    run.fig("publish_errors", shared.publish_errors.load(Ordering::Relaxed));
    run.fig("events", events);
    run.fig("expected_events", expected);
    run.fig("loss", loss);
    run.fig("unexpected_messages", shared.unexpected.load(Ordering::Relaxed));
    run.fig("dropped_reported", shared.dropped_reported.load(Ordering::Relaxed));
    run.fig("publish_window_s", round(publish_window.as_secs_f64(), 3));
    run.fig("elapsed_s", round(elapsed, 3));
    let pubs_per_s = acked as f64 / elapsed;
    let events_per_s = events as f64 / elapsed;
    run.fig("publications_per_s", round(pubs_per_s, 1));
    run.fig("events_per_s", round(events_per_s, 1));
    let per_cpu = cpu.per_router_cpu_s(events);
    run.fig("events_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    run.headline = format!(
        "{} events/s ({} publications/s), {} events per router CPU-second, loss {loss}",
        thousands(events_per_s),
        thousands(pubs_per_s),
        per_cpu.map(thousands).unwrap_or_else(|| "?".into()),
    );
    run.cpu = Some(cpu);

    if let Some(e) = shared.first_error.lock().unwrap().take() {
        run.errors.push(e);
    }
    if shared.closed.load(Ordering::Relaxed) > 0 {
        run.errors.push(format!("{} connections closed by the router during the run", shared.closed.load(Ordering::Relaxed)));
    }
    if loss != 0 {
        let dropped = shared.dropped_reported.load(Ordering::Relaxed);
        let why = if dropped > 0 { format!("; the router reported {dropped} of them dropped (EVENT.Details._dropped)") } else { String::new() };
        run.failed = Some(format!("{loss} of {expected} events not received ({events} received){why}"));
    } else if acked == 0 {
        run.failed = Some("no publication was acknowledged".into());
    } else if unanswered > 0 {
        run.failed = Some(format!("{unanswered} publications never acknowledged"));
    }
    readers.abort_all();
    drop(keep);
    Ok(())
}
