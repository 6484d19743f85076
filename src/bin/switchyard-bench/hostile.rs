//! The `hostile` workload: attacks a router on loopback the way the memory-exhaustion
//! issue reports did, and measures what the attack costs the router and how the router
//! defends itself. Every scenario reports the router's VmRSS before the attack, its peak
//! during it (sampled every 50 ms by `watch::RssMonitor`), and "settled" some seconds
//! after the attacking connections are closed (so memory the allocator keeps after the
//! attack shows as the gap between settled and before), plus what happened to each
//! attacking connection: closed by the router or not, after how long, and what it
//! received first (ABORT and its reason, a WebSocket close code, a RawSocket handshake
//! error, a PONG…).
//!
//! Scenarios (sizes are options; the defaults are those of the issue reports):
//! - `ping-before-hello`: RawSocket peers send one 16 MiB PING before HELLO and never read the PONG.
//! - `partial-frame`, `partial-frames-48`: joined RawSocket sessions announce a 16 MiB
//!   frame and send half of it; `ws-partial-frames-48` does the same over WebSocket.
//! - `unread-results`: a caller asks for 1 MiB results and never reads its socket.
//! - `idle-connections`, `slow-headers`: thousands of TCP connections to the WebSocket
//!   port that send nothing, or an HTTP request one byte per second; can a fresh client
//!   still join?
//! - `burst`: a legitimate burst (48 publishers × ten 4 MiB events to one subscriber)
//!   after which memory should come back: the allocator study's control case.
//!
//! Each scenario is bounded by `--wait` and closes every connection it opened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value as Json};
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Dict, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::conn::{peek_type, Target};
use crate::procstat::cpu_seconds;
use crate::report::{round, Run};
use crate::session::{padding_args, wait_for_drain, Session};
use crate::watch::{router_end, tcp_table, RssMonitor, TCP_ESTABLISHED};
use crate::wire::{self, describe, Event, Peer, RAW_MESSAGE, RAW_PING};
use crate::Ctx;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    PingBeforeHello,
    PartialFrame,
    #[value(name = "partial-frames-48")]
    PartialFrames48,
    #[value(name = "ws-partial-frames-48")]
    WsPartialFrames48,
    UnreadResults,
    IdleConnections,
    SlowHeaders,
    Burst,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PingBeforeHello => "ping-before-hello",
            Scenario::PartialFrame => "partial-frame",
            Scenario::PartialFrames48 => "partial-frames-48",
            Scenario::WsPartialFrames48 => "ws-partial-frames-48",
            Scenario::UnreadResults => "unread-results",
            Scenario::IdleConnections => "idle-connections",
            Scenario::SlowHeaders => "slow-headers",
            Scenario::Burst => "burst",
        }
    }

    /// Attacking connections when `--peers` is not given (the issue reports' figures).
    pub fn default_peers(self) -> usize {
        match self {
            Scenario::PingBeforeHello => 10,
            Scenario::PartialFrame | Scenario::UnreadResults => 1,
            Scenario::PartialFrames48 | Scenario::WsPartialFrames48 | Scenario::Burst => 48,
            Scenario::IdleConnections | Scenario::SlowHeaders => 2000,
        }
    }

    /// When settled RSS is read when `--settle` is not given: the burst also at 30 s,
    /// to see whether memory keeps coming back after the first seconds.
    pub fn default_settle(self) -> Vec<f64> {
        match self {
            Scenario::Burst => vec![5.0, 30.0],
            _ => vec![5.0],
        }
    }
}

pub struct Params {
    pub scenario: Scenario,
    pub peers: usize,
    /// Announced payload of an attack frame (PING, half-sent message).
    pub frame_bytes: usize,
    /// How long to wait for the router to close the attacking connections.
    pub wait: Duration,
    /// Seconds after the connections are closed at which settled RSS is read.
    pub settle: Vec<f64>,
    pub result_bytes: usize,
    pub calls: usize,
    pub recv_buffer: u32,
    pub event_bytes: usize,
    pub events: usize,
    pub probe_timeout: Duration,
}

/// Both ports of the router: the scenarios choose the transport they attack.
pub struct Targets {
    pub ws_url: String,
    pub ws: SocketAddr,
    pub raw: SocketAddr,
}

/// What happened to one attacking connection.
struct Outcome {
    /// Seconds from the end of the attack on this connection to its close by the router;
    /// `None`: still open when the scenario gave up waiting.
    closed_after: Option<f64>,
    /// What it received and how it ended, in words.
    story: String,
}

/// How long a drain of what reached a peer may take once its connection is over.
const DRAIN: Duration = Duration::from_secs(5);
/// Connections being set up at once (handshakes), so a burst measures the attack, not the
/// accept queue.
const CONNECT_CONCURRENCY: usize = 64;

pub async fn run(ctx: &Ctx, targets: &Targets, p: Params) -> Run {
    let mut run = Run::new("hostile");
    run.param("scenario", p.scenario.name());
    run.param("peers", p.peers);
    run.param("wait_s", p.wait.as_secs_f64());
    run.param("settle_s", json!(p.settle));
    match p.scenario {
        Scenario::PingBeforeHello | Scenario::PartialFrame | Scenario::PartialFrames48 | Scenario::WsPartialFrames48 => {
            run.param("frame_bytes", p.frame_bytes);
        }
        Scenario::UnreadResults => {
            run.param("result_bytes", p.result_bytes);
            run.param("calls", p.calls);
            run.param("recv_buffer", p.recv_buffer);
        }
        Scenario::IdleConnections | Scenario::SlowHeaders => run.param("probe_timeout_s", p.probe_timeout.as_secs_f64()),
        Scenario::Burst => {
            run.param("event_bytes", p.event_bytes);
            run.param("events_per_publisher", p.events);
        }
    }
    let Some(pid) = ctx.router_pid else {
        run.failed = Some("hostile needs --router-pid: it measures the router's memory".into());
        return run;
    };
    let rss = match RssMonitor::start(pid) {
        Ok(m) => m,
        Err(e) => {
            run.failed = Some(e);
            return run;
        }
    };
    let cpu0 = cpu_seconds(&pid.to_string()).unwrap_or(0.0);
    run.fig("attack_transport", attack_transport(ctx, p.scenario));
    let result = match p.scenario {
        Scenario::PingBeforeHello => ping_before_hello(ctx, targets, &p, &rss, &mut run).await,
        Scenario::PartialFrame | Scenario::PartialFrames48 => partial_frames(ctx, targets, &p, &rss, &mut run, wire::Framing::RawSocket).await,
        Scenario::WsPartialFrames48 => partial_frames(ctx, targets, &p, &rss, &mut run, wire::Framing::WebSocket).await,
        Scenario::UnreadResults => unread_results(ctx, &p, &rss, &mut run).await,
        Scenario::IdleConnections => idle_connections(ctx, targets, &p, &rss, &mut run, false).await,
        Scenario::SlowHeaders => idle_connections(ctx, targets, &p, &rss, &mut run, true).await,
        Scenario::Burst => burst(ctx, &p, &rss, &mut run).await,
    };
    if let Err(e) = result {
        run.errors.push(e.clone());
        run.failed = Some(e);
    }
    finish(&mut run, &rss, pid, cpu0, p.scenario);
    run
}

/// Figures every scenario has, and the human headline.
fn finish(run: &mut Run, rss: &RssMonitor, pid: u32, cpu0: f64, scenario: Scenario) {
    let gone = rss.gone();
    run.fig("router_alive", gone.is_none());
    if let Some(e) = &gone {
        run.failed = Some(format!("the router process died during the run ({e})"));
    }
    run.fig("router_cpu_s", cpu_seconds(&pid.to_string()).ok().map(|c| round(c - cpu0, 2)));
    run.fig("elapsed_s", round(rss.elapsed_s(), 1));
    run.fig("router_rss_trace_kib", json!(rss.trace().iter().map(|(t, k)| json!([t, k])).collect::<Vec<_>>()));
    let kib = |k: &str| run.figures.get(k).and_then(Json::as_u64);
    let mib = |k: Option<u64>| k.map(|k| format!("{:.0} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "?".into());
    let fig = |k: &str| run.figures.get(k).cloned().unwrap_or(Json::Null);
    let what = if scenario == Scenario::Burst {
        format!("{} publications, {} events received, {} reported dropped", fig("publications"), fig("events_received"), fig("dropped_reported"))
    } else {
        format!(
            "{}/{} attacking connections closed by the router (after s: {})",
            fig("closed_by_router"),
            fig("connections"),
            fig("close_after_s")
        )
    };
    run.headline = format!(
        "{}: router RSS before {}, peak {}, settled {}; {what}",
        scenario.name(),
        mib(kib("router_rss_before_kib")),
        mib(kib("router_rss_peak_kib")),
        mib(kib("router_rss_settled_kib")),
    );
}

/// What the attack goes through (the common `transport` field names `--url` or
/// `--rawsocket`, which only some scenarios follow).
fn attack_transport(ctx: &Ctx, scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::PingBeforeHello | Scenario::PartialFrame | Scenario::PartialFrames48 => "rawsocket",
        Scenario::WsPartialFrames48 => "websocket",
        Scenario::IdleConnections | Scenario::SlowHeaders => "tcp to the websocket port",
        Scenario::UnreadResults | Scenario::Burst => ctx.target.transport(),
    }
}

// ---- shared steps ---------------------------------------------------------------------

fn rss_before(rss: &RssMonitor, run: &mut Run) {
    run.fig("router_rss_before_kib", rss.now());
    rss.take_peak();
}

/// Reads settled RSS at each point (seconds after the connections were closed).
async fn settle(rss: &RssMonitor, run: &mut Run, points: &[f64]) {
    let closed_at = tokio::time::Instant::now();
    let (mut by, mut lazy) = (Map::new(), Map::new());
    let mut points = points.to_vec();
    points.sort_by(f64::total_cmp);
    for s in &points {
        tokio::time::sleep_until(closed_at + Duration::from_secs_f64(s.max(0.0))).await;
        by.insert(format!("{s}"), json!(rss.now()));
        lazy.insert(format!("{s}"), json!(rss.lazy_free()));
    }
    run.fig("router_rss_settled_kib", by.values().next().cloned().unwrap_or(Json::Null));
    run.fig("router_rss_settled_kib_by_s", Json::Object(by));
    run.fig("router_lazyfree_settled_kib_by_s", Json::Object(lazy));
}

/// Connections closed by the router, when, and the distinct stories with their counts.
fn record_outcomes(run: &mut Run, outcomes: &[Outcome]) {
    let mut closed: Vec<f64> = outcomes.iter().filter_map(|o| o.closed_after).collect();
    closed.sort_by(f64::total_cmp);
    run.fig("connections", outcomes.len());
    run.fig("closed_by_router", closed.len());
    run.fig("still_open_at_end", outcomes.len() - closed.len());
    let summary = match (closed.first(), closed.last()) {
        (Some(min), Some(max)) => json!({"min": round(*min, 2), "median": round(closed[closed.len() / 2], 2), "max": round(*max, 2)}),
        _ => Json::Null,
    };
    run.fig("close_after_s", summary);
    let mut stories: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes {
        *stories.entry(&o.story).or_default() += 1;
    }
    run.fig("outcomes", json!(stories));
}

/// What a peer received, collapsed: `ping 0 B ×3, ABORT wamp.error.…, EOF`.
#[derive(Default)]
struct Seen {
    items: Vec<(String, u64)>,
}

impl Seen {
    fn add(&mut self, what: String) {
        match self.items.last_mut() {
            Some((last, n)) if *last == what => *n += 1,
            _ => self.items.push((what, 1)),
        }
    }

    fn story(mut self, end: String, pending: usize) -> String {
        if pending > 0 {
            self.add(format!("{} of an unfinished frame", human_bytes(pending)));
        }
        self.add(end);
        let parts: Vec<String> = self.items.into_iter().map(|(w, n)| if n > 1 { format!("{w} ×{n}") } else { w }).collect();
        parts.join(", ")
    }
}

/// Sizes rounded to a bucket, so stories of peers that got a few bytes more or less
/// still count as one outcome.
fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 {
        format!("~{} MiB", (n + (1 << 19)) >> 20)
    } else if n >= 1 << 10 {
        format!("~{} KiB", (n + 512) >> 10)
    } else {
        format!("{n} B")
    }
}

/// Reads what the router sends until the connection ends or `deadline`. Returns the
/// seconds from `since` to the end (None: still open) and the story.
async fn observe(peer: &mut Peer, since: Instant, deadline: tokio::time::Instant) -> (Option<f64>, String) {
    let mut seen = Seen::default();
    loop {
        let Ok(event) = tokio::time::timeout_at(deadline, peer.next()).await else {
            return (None, seen.story("still open".into(), peer.pending()));
        };
        match event {
            Event::Eof | Event::Error(_) => {
                let end = describe(peer.serializer, &event);
                return (Some(since.elapsed().as_secs_f64()), seen.story(end, peer.pending()));
            }
            other => seen.add(describe(peer.serializer, &other)),
        }
    }
}

/// Polls the kernel's socket table until the router has closed its end of every
/// connection (its socket left ESTABLISHED or is gone) or `wait` has passed since the
/// last attack ended. For peers that do not read, the only way to see the close.
/// Returns, per peer, the seconds from its attack to the close, and the largest send
/// queue the router's ends held at once (kernel memory, not in the router's RSS).
async fn watch_router_ends(router: SocketAddr, peers: &[(SocketAddr, Instant)], wait: Duration) -> (Vec<Option<f64>>, u64) {
    let mut closed: Vec<Option<f64>> = vec![None; peers.len()];
    let mut max_queue = 0u64;
    let last = peers.iter().map(|(_, t)| *t).max().unwrap_or_else(Instant::now);
    while closed.iter().any(Option::is_none) && last.elapsed() < wait {
        let table = tcp_table();
        let mut queue = 0;
        for (i, (client, since)) in peers.iter().enumerate() {
            match router_end(&table, router, *client) {
                Some(e) if e.state == TCP_ESTABLISHED => queue += e.tx_queue,
                Some(e) => {
                    queue += e.tx_queue;
                    closed[i].get_or_insert(since.elapsed().as_secs_f64());
                }
                None => {
                    closed[i].get_or_insert(since.elapsed().as_secs_f64());
                }
            }
        }
        max_queue = max_queue.max(queue);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (closed, max_queue)
}

/// Waits for every task: the values of those that succeeded (in completion order) and
/// the errors of the others.
async fn join_all<T: 'static>(mut set: JoinSet<Result<T, String>>) -> (Vec<T>, Vec<String>) {
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(v)) => ok.push(v),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(format!("task failed: {e}")),
        }
    }
    (ok, errors)
}

fn note_errors(run: &mut Run, what: &str, errors: Vec<String>) {
    if errors.is_empty() {
        return;
    }
    run.fig(&format!("{what}_errors"), errors.len());
    let mut distinct: Vec<String> = errors;
    distinct.sort();
    distinct.dedup();
    for e in distinct.into_iter().take(5) {
        run.errors.push(format!("{what}: {e}"));
    }
}

// ---- scenario 1: ping-before-hello -----------------------------------------------------

/// Each peer completes the RawSocket handshake announcing 16 MiB, sends one PING of
/// `frame_bytes` before HELLO, and reads nothing: the router must buffer the PING,
/// build the PONG and find nobody reading it.
async fn ping_before_hello(ctx: &Ctx, t: &Targets, p: &Params, rss: &RssMonitor, run: &mut Run) -> Result<(), String> {
    rss_before(rss, run);
    let mut set = JoinSet::new();
    for _ in 0..p.peers {
        let (addr, ser, n) = (t.raw, ctx.serializer, p.frame_bytes);
        set.spawn(async move {
            let mut peer = Peer::rawsocket(addr, ser, 15, None).await?;
            peer.send_partial(RAW_PING, n, n).await?;
            Ok::<_, String>((peer, Instant::now()))
        });
    }
    let (peers, errors) = join_all(set).await;
    let refused = errors.len();
    note_errors(run, "attack", errors);
    let ends: Vec<(SocketAddr, Instant)> = peers.iter().map(|(p, t)| (p.local, *t)).collect();
    let (closed, max_queue) = watch_router_ends(t.raw, &ends, p.wait).await;
    run.fig("router_rss_peak_kib", rss.take_peak());
    run.fig("router_send_queue_max_bytes", max_queue);
    let mut outcomes = drain_stories(peers, closed).await;
    outcomes.extend((0..refused).map(|_| Outcome { closed_after: Some(0.0), story: "attack failed (see errors)".into() }));
    record_outcomes(run, &outcomes);
    settle(rss, run, &p.settle).await;
    Ok(())
}

/// Reads, for at most `DRAIN`, what reached each (non-reading) peer, then closes them.
/// The close time comes from the socket table, not from these reads.
async fn drain_stories(peers: Vec<(Peer, Instant)>, closed: Vec<Option<f64>>) -> Vec<Outcome> {
    let mut set = JoinSet::new();
    for ((mut peer, since), closed_after) in peers.into_iter().zip(closed) {
        set.spawn(async move {
            let (_, story) = observe(&mut peer, since, tokio::time::Instant::now() + DRAIN).await;
            (peer, Outcome { closed_after, story })
        });
    }
    let mut keep = Vec::new();
    let mut outcomes = Vec::new();
    while let Some(Ok((peer, o))) = set.join_next().await {
        keep.push(peer);
        outcomes.push(o);
    }
    drop(keep); // every attacking connection closed at once, before settling
    outcomes
}

// ---- scenarios 2 and 3: half-sent frames -------------------------------------------------

/// Joined sessions each announce a frame of `frame_bytes` and send half of it, then
/// nothing: the router must hold the half frame until it gives up on the connection.
async fn partial_frames(ctx: &Ctx, t: &Targets, p: &Params, rss: &RssMonitor, run: &mut Run, framing: wire::Framing) -> Result<(), String> {
    rss_before(rss, run);
    let (peers, errors) = join_peers(ctx, t, p.peers, framing).await;
    note_errors(run, "join", errors);
    if peers.is_empty() {
        return Err("no attacking session joined".into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.fig("router_rss_joined_kib", rss.now());

    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut set = JoinSet::new();
    for mut peer in peers {
        let (sent_tx, n, wait) = (sent_tx.clone(), p.frame_bytes, p.wait);
        set.spawn(async move {
            let r = peer.send_partial(RAW_MESSAGE, n, n / 2).await;
            let failed = r.is_err();
            let _ = sent_tx.send(r);
            drop(sent_tx); // the main task counts the attacks done by the senders gone
            let since = Instant::now();
            if failed {
                return (peer, Outcome { closed_after: Some(0.0), story: "attack failed (see errors)".into() });
            }
            let (closed_after, story) = observe(&mut peer, since, tokio::time::Instant::now() + wait).await;
            (peer, Outcome { closed_after, story })
        });
    }
    drop(sent_tx);
    let mut errors = Vec::new();
    while let Some(r) = sent_rx.recv().await {
        errors.extend(r.err());
    }
    note_errors(run, "attack", errors);
    // Give the router time to read what the kernel accepted, then: the cost of holding.
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.fig("router_rss_held_kib", rss.now());

    let mut keep = Vec::new();
    let mut outcomes = Vec::new();
    while let Some(r) = set.join_next().await {
        let (peer, o) = r.map_err(|e| e.to_string())?;
        keep.push(peer);
        outcomes.push(o);
    }
    run.fig("router_rss_peak_kib", rss.take_peak());
    drop(keep);
    record_outcomes(run, &outcomes);
    settle(rss, run, &p.settle).await;
    Ok(())
}

/// Connects and joins `n` byte-level peers, `CONNECT_CONCURRENCY` at a time.
async fn join_peers(ctx: &Ctx, t: &Targets, n: usize, framing: wire::Framing) -> (Vec<Peer>, Vec<String>) {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (gate, ser, realm, raw, ws, url) = (gate.clone(), ctx.serializer, ctx.realm.clone(), t.raw, t.ws, t.ws_url.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut peer = match framing {
                wire::Framing::RawSocket => Peer::rawsocket(raw, ser, 15, None).await?,
                wire::Framing::WebSocket => Peer::websocket(ws, &url, ser, None).await?,
            };
            peer.join(&realm).await?;
            Ok::<Peer, String>(peer)
        });
    }
    join_all(set).await
}

// ---- scenario 4: unread-results ----------------------------------------------------------

/// A callee answers every call with a `result_bytes` result; a caller with a small
/// receive buffer sends `calls` CALLs and never reads. The router must queue the results
/// it cannot write and, at its write timeout or outbox cap, close the caller.
async fn unread_results(ctx: &Ctx, p: &Params, rss: &RssMonitor, run: &mut Run) -> Result<(), String> {
    rss_before(rss, run);
    let procedure = ctx.uri("hostile.big_result");
    let mut callee = Session::open(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm).await?;
    callee.register(&procedure).await?;
    let answered = Arc::new(AtomicU64::new(0));
    let callee_task = tokio::spawn(serve_big_results(callee, padding_args(ctx.serializer, p.result_bytes), answered.clone()));

    let mut caller = match &ctx.target {
        Target::RawSocket { addr } => Peer::rawsocket(*addr, ctx.serializer, 15, Some(p.recv_buffer)).await?,
        Target::WebSocket { url, addr } => Peer::websocket(*addr, url, ctx.serializer, Some(p.recv_buffer)).await?,
    };
    caller.join(&ctx.realm).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.fig("router_rss_joined_kib", rss.now());

    for request in 1..=p.calls as u64 {
        let call = Message::Call { request, options: Dict::new(), procedure: procedure.clone(), payload: Default::default() };
        caller.send(&call).await?;
    }
    let since = Instant::now();
    let (closed, max_queue) = watch_router_ends(ctx.target.addr(), &[(caller.local, since)], p.wait).await;
    run.fig("router_rss_peak_kib", rss.take_peak());
    run.fig("router_send_queue_max_bytes", max_queue);
    run.fig("calls_answered_by_callee", answered.load(Ordering::Relaxed));
    let outcomes = drain_stories(vec![(caller, since)], closed).await;
    callee_task.abort();
    let _ = callee_task.await; // drops the callee's connection
    record_outcomes(run, &outcomes);
    settle(rss, run, &p.settle).await;
    Ok(())
}

/// The callee: YIELDs `result` to every INVOCATION until its connection ends.
async fn serve_big_results(callee: Session, result: switchyard::wamp::Args, answered: Arc<AtomicU64>) {
    let Session { tx, mut rx, .. } = callee;
    while let Ok(Some(frame)) = rx.next().await {
        if let Ok(Message::Invocation { request, .. }) = Message::decode(tx.serializer, &frame) {
            if tx.send(&Message::Yield { request, options: Dict::new(), payload: result.clone() }).is_err() {
                return;
            }
            answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---- scenario 5: idle connections and slow headers ---------------------------------------

/// `peers` TCP connections to the WebSocket port that send nothing (or, `slow`, an
/// HTTP upgrade request one byte per second); meanwhile a fresh client must still be
/// able to connect, join and get WELCOME within `probe_timeout`.
async fn idle_connections(ctx: &Ctx, t: &Targets, p: &Params, rss: &RssMonitor, run: &mut Run, slow: bool) -> Result<(), String> {
    rss_before(rss, run);
    let stop = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (up_tx, mut up_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let closed = Arc::new(AtomicUsize::new(0));
    let request = Arc::new(slow_request(&t.ws_url, ctx.serializer.subprotocol()));
    let mut set = JoinSet::new();
    for _ in 0..p.peers {
        let (gate, up_tx, stop, closed, addr) = (gate.clone(), up_tx.clone(), stop.clone(), closed.clone(), t.ws);
        let request = if slow { Some(request.clone()) } else { None };
        set.spawn(async move {
            let permit = gate.acquire_owned().await;
            let stream = wire::tcp(addr, None).await;
            drop(permit);
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let _ = up_tx.send(Err(e.clone()));
                    return None;
                }
            };
            let _ = up_tx.send(Ok(()));
            drop(up_tx); // the main task counts the connections up by the senders gone
            let outcome = hold_idle(stream, request, stop).await;
            if outcome.closed_after.is_some() {
                closed.fetch_add(1, Ordering::Relaxed);
            }
            Some(outcome)
        });
    }
    drop(up_tx);
    let mut errors = Vec::new();
    let mut connected = 0usize;
    while let Some(r) = up_rx.recv().await {
        match r {
            Ok(()) => connected += 1,
            Err(e) => errors.push(e),
        }
    }
    let all_up = Instant::now();
    run.fig("connected", connected);
    note_errors(run, "connect", errors);
    tokio::time::sleep(Duration::from_secs(1)).await;
    run.fig("router_rss_held_kib", rss.now());
    run.fig("probe_after_connect", probe(ctx, t, p.probe_timeout).await);

    while closed.load(Ordering::Relaxed) < connected && all_up.elapsed() < p.wait {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.fig("probe_at_end", probe(ctx, t, p.probe_timeout).await);
    run.fig("router_rss_peak_kib", rss.take_peak());
    stop.cancel();
    let mut outcomes = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(Some(o)) = r {
            outcomes.push(o);
        }
    }
    record_outcomes(run, &outcomes);
    settle(rss, run, &p.settle).await;
    Ok(())
}

/// A WebSocket upgrade request for the router's path, complete and well-formed, for a
/// peer that sends it one byte per second.
fn slow_request(url: &str, subprotocol: &str) -> Vec<u8> {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    )
    .into_bytes()
}

/// Holds one idle (or slow) connection until the router closes it or `stop`. The close
/// time is counted from the connect; the story is the first line the router sent, if any.
async fn hold_idle(mut stream: tokio::net::TcpStream, request: Option<Arc<Vec<u8>>>, stop: CancellationToken) -> Outcome {
    let since = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut sent = 0usize;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => {
                let end = match r {
                    Ok(0) => "EOF".to_owned(),
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        continue;
                    }
                    Err(e) => format!("read error: {e}"),
                };
                let first = String::from_utf8_lossy(&got).lines().next().map(str::to_owned);
                let story = match first {
                    Some(line) => format!("{line:?}, {end}"),
                    None => format!("nothing, {end}"),
                };
                let story = if request.is_some() { format!("after {sent} bytes of the request: {story}") } else { story };
                return Outcome { closed_after: Some(since.elapsed().as_secs_f64()), story };
            }
            _ = tick.tick(), if request.as_ref().is_some_and(|r| sent < r.len()) => {
                let r = request.as_ref().unwrap();
                if stream.write_all(&r[sent..sent + 1]).await.is_ok() {
                    sent += 1;
                }
            }
            _ = stop.cancelled() => {
                return Outcome { closed_after: None, story: "still open".into() };
            }
        }
    }
}

/// A fresh WebSocket client connects and joins: `{ok, ms}` or `{ok: false, error}`.
async fn probe(ctx: &Ctx, t: &Targets, timeout: Duration) -> Json {
    let target = Target::WebSocket { url: t.ws_url.clone(), addr: t.ws };
    let start = Instant::now();
    match tokio::time::timeout(timeout, Session::open(&target, &ctx.opts(None, 16 * 1024), &ctx.realm)).await {
        Ok(Ok(_session)) => json!({"ok": true, "ms": round(start.elapsed().as_secs_f64() * 1000.0, 1)}),
        Ok(Err(e)) => json!({"ok": false, "ms": round(start.elapsed().as_secs_f64() * 1000.0, 1), "error": e}),
        Err(_) => json!({"ok": false, "error": format!("no WELCOME within {:?}", timeout)}),
    }
}

// ---- the allocator control: a legitimate burst --------------------------------------------

/// `peers` publishers each publish `events` events of `event_bytes` (acknowledged, one
/// at a time) to one subscriber that reads everything; then everyone disconnects.
/// Nothing here is hostile: the memory the burst took should come back.
async fn burst(ctx: &Ctx, p: &Params, rss: &RssMonitor, run: &mut Run) -> Result<(), String> {
    rss_before(rss, run);
    let topic = ctx.uri("hostile.burst");
    let mut subscriber = Session::open(&ctx.target, &ctx.opts(None, 256 * 1024), &ctx.realm).await?;
    subscriber.subscribe(&topic).await?;
    let (received, dropped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let Session { tx: sub_tx, rx: mut sub_rx, .. } = subscriber;
    let reader = {
        let (received, dropped, ser) = (received.clone(), dropped.clone(), ctx.serializer);
        tokio::spawn(async move {
            while let Ok(Some(frame)) = sub_rx.next().await {
                if peek_type(ser, &frame) != Some(code::EVENT) {
                    continue;
                }
                received.fetch_add(1, Ordering::Relaxed);
                // `_dropped` is in Details, near the start: no need to scan 4 MiB.
                let head = &frame[..frame.len().min(512)];
                if head.windows(8).any(|w| w == b"_dropped") {
                    if let Ok(Message::Event { details, .. }) = Message::decode(ser, &frame) {
                        dropped.fetch_add(details.get("_dropped").and_then(|v| v.as_u64()).unwrap_or(0), Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let gate = Arc::new(Semaphore::new(16));
    let mut set = JoinSet::new();
    for _ in 0..p.peers {
        let (gate, target, opts, realm) = (gate.clone(), ctx.target.clone(), ctx.opts(None, 64 * 1024), ctx.realm.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            Session::open(&target, &opts, &realm).await
        });
    }
    let (publishers, errors) = join_all(set).await;
    note_errors(run, "join", errors);
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.fig("router_rss_joined_kib", rss.now());
    run.fig("publishers", publishers.len());

    let args = padding_args(ctx.serializer, p.event_bytes);
    let start = Instant::now();
    let mut set = JoinSet::new();
    for s in publishers {
        set.spawn(publish_burst(s, topic.clone(), args.clone(), p.events, p.wait));
    }
    let (done, errors) = join_all(set).await;
    note_errors(run, "publish", errors);
    let acked: u64 = done.iter().map(|(_, n)| n).sum();
    wait_for_drain(
        || received.load(Ordering::Relaxed) + dropped.load(Ordering::Relaxed),
        |&n| n >= acked,
        ctx.drain,
    )
    .await;
    run.fig("burst_s", round(start.elapsed().as_secs_f64(), 2));
    run.fig("publications", acked);
    run.fig("events_received", received.load(Ordering::Relaxed));
    run.fig("dropped_reported", dropped.load(Ordering::Relaxed));
    run.fig("router_rss_peak_kib", rss.take_peak());
    reader.abort();
    let _ = reader.await;
    drop(sub_tx);
    drop(done);
    settle(rss, run, &p.settle).await;
    Ok(())
}

/// Publishes `n` events, each waiting for its PUBLISHED, and returns the session (to be
/// closed with the others) and how many were acknowledged.
async fn publish_burst(mut s: Session, topic: String, args: switchyard::wamp::Args, n: usize, wait: Duration) -> Result<(Session, u64), String> {
    let options = dict([("acknowledge", true.into())]);
    let mut acked = 0;
    for _ in 0..n {
        let request = s.request();
        s.tx.send(&Message::Publish { request, options: options.clone(), topic: topic.clone(), payload: args.clone() })?;
        match tokio::time::timeout(wait, s.recv()).await.map_err(|_| "no PUBLISHED in time".to_owned())?? {
            Message::Published { .. } => acked += 1,
            other => return Err(format!("expected PUBLISHED, got {}", crate::session::describe_error(&other))),
        }
    }
    Ok((s, acked))
}
