//! The replay workload: how long a new subscriber waits for a topic's history. A
//! publisher first stores `events` publications of about `payload` bytes on a topic of
//! its own (acknowledged, 1,000 in flight; the realm must keep at least `events` per
//! topic). Then each trial opens a fresh session and asks for the whole history:
//!
//! - `--mode replay`: `SUBSCRIBE.Options._replay = {"last": events}`; timed from the
//!   SUBSCRIBE written to the last history EVENT read (and to SUBSCRIBED, and to the
//!   first EVENT).
//! - `--mode get-events`: a plain SUBSCRIBE, then `CALL wamp.subscription.get_events
//!   (subscription, events)`; timed from the CALL written to the RESULT read (the list),
//!   and from the SUBSCRIBE written to the RESULT.
//!
//! The clock stops on the frame's arrival: frames are kept undecoded while timing and
//! checked afterwards (every event present once, `_pos` contiguous and ending at the
//! topic's last position, `_replayed` set, no `_gap`). One JSON line per trial; a trial
//! that misses or misorders an event fails the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Args, Dict, Message, Value};
use tokio::sync::Semaphore;

use crate::conn::peek_type;
use crate::procstat::CpuWindow;
use crate::report::{round, Run};
use crate::session::{describe_error, padding_args, Session};
use crate::Ctx;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `SUBSCRIBE.Options._replay = {"last": N}`: history as EVENTs.
    Replay,
    /// SUBSCRIBE, then `wamp.subscription.get_events(subscription, N)`: history as one RESULT.
    GetEvents,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Replay => "replay",
            Mode::GetEvents => "get-events",
        }
    }
}

pub struct Params {
    pub events: usize,
    pub payload: usize,
    pub trials: usize,
    pub mode: Mode,
}

/// How long one trial may take before it is reported as failed.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Ctx, p: Params) -> Vec<Run> {
    let topic = ctx.uri("replay");
    let base = |trial: usize| {
        let mut run = Run::new("replay");
        run.param("mode", p.mode.name());
        run.param("events", p.events);
        run.param("payload_bytes", p.payload);
        run.param("trials", p.trials);
        run.fig("trial", trial);
        run
    };
    // The history, once for every trial.
    let last_pos = match fill(ctx, &topic, p.events, p.payload).await {
        Ok(()) => p.events as u64,
        Err(e) => {
            let mut run = base(0);
            run.failed = Some(format!("storing the history: {e}"));
            return vec![run];
        }
    };
    let mut runs = Vec::with_capacity(p.trials);
    for trial in 1..=p.trials {
        let mut run = base(trial);
        let result = match tokio::time::timeout(TRIAL_TIMEOUT, trial_once(ctx, &p, &topic, last_pos, &mut run)).await {
            Ok(r) => r,
            Err(_) => Err(format!("trial not finished within {} s", TRIAL_TIMEOUT.as_secs())),
        };
        if let Err(e) = result {
            run.failed = Some(e);
        }
        runs.push(run);
    }
    runs
}

/// Publishes `n` events of about `payload` bytes to `topic`, acknowledged, at most
/// 1,000 unacknowledged; returns once every one is acknowledged.
pub async fn fill(ctx: &Ctx, topic: &str, n: usize, payload: usize) -> Result<(), String> {
    let Session { tx, mut rx, .. } = Session::open_as(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm, &ctx.service()).await?;
    let window = Arc::new(Semaphore::new(1000));
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let (window, acked, ser) = (window.clone(), acked.clone(), ctx.serializer);
        tokio::spawn(async move {
            while (acked.load(Ordering::Relaxed) as usize) < n {
                let frame = rx.next().await.map_err(|e| e.to_string())?.ok_or("the router closed the publisher's connection")?;
                if peek_type(ser, &frame) != Some(code::PUBLISHED) {
                    let what = Message::decode(ser, &frame).map(|m| describe_error(&m)).unwrap_or_else(|e| e.to_string());
                    return Err(format!("publisher received {what}"));
                }
                acked.fetch_add(1, Ordering::Relaxed);
                window.add_permits(1);
            }
            Ok::<(), String>(())
        })
    };
    let args = padding_args(ctx.serializer, payload);
    let options = dict([("acknowledge", true.into())]);
    for request in 1..=n as u64 {
        window.acquire().await.map_err(|e| e.to_string())?.forget();
        tx.send(&Message::Publish { request, options: options.clone(), topic: topic.to_owned(), payload: args.clone() })?;
    }
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .map_err(|_| "publications not acknowledged within 60 s".to_owned())?
        .map_err(|e| e.to_string())?
}

fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0, 3)
}

async fn trial_once(ctx: &Ctx, p: &Params, topic: &str, last_pos: u64, run: &mut Run) -> Result<(), String> {
    let mut s = Session::open(&ctx.target, &ctx.opts(None, 256 * 1024), &ctx.realm).await?;
    let ser = ctx.serializer;
    let n = p.events;
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let request = s.request();
    match p.mode {
        Mode::Replay => {
            let options = dict([("_replay", Value::Dict(dict([("last", Value::UInt(n as u64))])))]);
            let sub = Message::Subscribe { request, options, topic: topic.to_owned() };
            let frame = sub.encode(ser).map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            s.tx.send_frame(frame)?;
            let mut subscribed = None;
            let mut first_event = None;
            let mut events: Vec<Bytes> = Vec::with_capacity(n);
            let mut subscription = 0;
            while events.len() < n {
                let frame = s.rx.next().await.map_err(|e| format!("read: {e}"))?.ok_or("the router closed the connection")?;
                match peek_type(ser, &frame) {
                    Some(code::EVENT) => {
                        first_event.get_or_insert_with(|| t0.elapsed());
                        events.push(frame);
                    }
                    Some(code::SUBSCRIBED) if subscribed.is_none() => {
                        subscribed = Some(t0.elapsed());
                        if let Ok(Message::Subscribed { subscription: id, .. }) = Message::decode(ser, &frame) {
                            subscription = id;
                        }
                    }
                    _ => {
                        let what = Message::decode(ser, &frame).map(|m| describe_error(&m)).unwrap_or_else(|e| e.to_string());
                        return Err(format!("expected SUBSCRIBED and EVENTs, got {what}"));
                    }
                }
            }
            let last = t0.elapsed();
            let cpu = cpu.finish(0.0);
            let bytes: usize = events.iter().map(|f| f.len()).sum();
            run.fig("subscribe_to_subscribed_ms", subscribed.map(ms));
            run.fig("subscribe_to_first_event_ms", first_event.map(ms));
            run.fig("subscribe_to_last_event_ms", ms(last));
            run.fig("history_bytes", bytes);
            run.fig("events", events.len());
            run.headline = format!("{n} events in {:.1} ms (SUBSCRIBE → last EVENT)", last.as_secs_f64() * 1000.0);
            run.cpu = Some(cpu);
            if subscribed.is_none() {
                return Err("no SUBSCRIBED before the history".into());
            }
            // Checked after the clock stopped.
            for (pos, f) in (last_pos + 1 - n as u64..).zip(&events) {
                let Ok(Message::Event { subscription: sid, details, .. }) = Message::decode(ser, f) else {
                    return Err("an EVENT that does not decode".into());
                };
                if sid != subscription {
                    return Err(format!("an EVENT for subscription {sid}, expected {subscription}"));
                }
                check_details(&details, pos, true)?;
            }
        }
        Mode::GetEvents => {
            let frame = Message::Subscribe { request, options: Dict::new(), topic: topic.to_owned() }.encode(ser).map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            s.tx.send_frame(frame)?;
            let subscription = match s.recv().await? {
                Message::Subscribed { subscription, .. } => subscription,
                other => return Err(format!("expected SUBSCRIBED, got {}", describe_error(&other))),
            };
            let subscribed = t0.elapsed();
            let call_request = s.request();
            let args = Args {
                args: Some(switchyard::wamp::Payload::from_value(ser, &Value::List(vec![Value::UInt(subscription), Value::UInt(n as u64)]))),
                kwargs: None,
            };
            let call = Message::Call { request: call_request, options: Dict::new(), procedure: "wamp.subscription.get_events".into(), payload: args };
            let frame = call.encode(ser).map_err(|e| e.to_string())?;
            let t1 = Instant::now();
            s.tx.send_frame(frame)?;
            let frame = s.rx.next().await.map_err(|e| format!("read: {e}"))?.ok_or("the router closed the connection")?;
            let call_to_result = t1.elapsed();
            let total = t0.elapsed();
            let cpu = cpu.finish(0.0);
            run.fig("subscribe_to_subscribed_ms", ms(subscribed));
            run.fig("call_to_result_ms", ms(call_to_result));
            run.fig("subscribe_to_result_ms", ms(total));
            run.fig("result_bytes", frame.len());
            run.headline = format!(
                "{n} events in {:.1} ms (CALL → RESULT), {:.1} ms from SUBSCRIBE",
                call_to_result.as_secs_f64() * 1000.0,
                total.as_secs_f64() * 1000.0
            );
            run.cpu = Some(cpu);
            let payload = match Message::decode(ser, &frame).map_err(|e| e.to_string())? {
                Message::Result { request: r, payload, .. } if r == call_request => payload,
                other => return Err(format!("expected RESULT, got {}", describe_error(&other))),
            };
            let list = payload.args.as_ref().ok_or("RESULT without arguments")?.to_value().map_err(|e| e.to_string())?;
            let entries = list.as_list().and_then(|l| l.first()).and_then(Value::as_list).ok_or("RESULT's first argument is not a list")?;
            run.fig("events", entries.len());
            if entries.len() != n {
                return Err(format!("{} events in the RESULT, expected {n}", entries.len()));
            }
            for (pos, e) in (last_pos + 1 - n as u64..).zip(entries) {
                let d = e.as_dict().ok_or("a history entry that is not a dict")?;
                check_details(d, pos, false)?;
            }
        }
    }
    s.tx.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.normal".into() })?;
    Ok(())
}

/// One history event: position `pos`, no `_gap`, and for EVENTs `_replayed`.
fn check_details(d: &Dict, pos: u64, replayed: bool) -> Result<(), String> {
    let got = d.get("_pos").and_then(Value::as_u64);
    if got != Some(pos) {
        return Err(format!("history out of order: _pos {got:?} where {pos} was due"));
    }
    if let Some(g) = d.get("_gap") {
        return Err(format!("_gap {g:?} at _pos {pos}"));
    }
    if replayed && d.get("_replayed").and_then(Value::as_bool) != Some(true) {
        return Err(format!("history EVENT without _replayed at _pos {pos}"));
    }
    Ok(())
}
