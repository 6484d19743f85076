//! The scale workload: N concurrent idle sessions, each subscribed to a topic of its own
//! and to one shared topic. Figures: the router's resident memory per session (VmRSS
//! after all sessions are up, minus before, divided by N), the connect rate (sessions
//! connected, joined and subscribed twice, per second), and the time one event published
//! on the shared topic takes to reach all N (publish → last subscriber's receipt, wall
//! clock, so it can be compared across processes).
//!
//! With `--procs P` the sessions are spread over P helper processes (this binary,
//! re-executed with `scale --child`), which report on stdout in JSON lines: `ready` once
//! their sessions are up, `events` once the shared event reached them all (or the
//! timeout passed); they exit when the parent closes their stdin.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Args, Message};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::conn::{peek_type, Sender};
use crate::procstat::{self, CpuWindow};
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, Session, SETUP_TIMEOUT};
use crate::Ctx;

pub struct Params {
    pub sessions: usize,
    pub procs: usize,
    pub source_ips: u8,
    pub connect_concurrency: usize,
    pub event_timeout: Duration,
    pub proc_index: usize,
    pub run_id: String,
}

/// Read buffer of an idle session's socket.
const IDLE_READ_BUFFER: usize = 4 * 1024;

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// The sessions of one process.
struct Group {
    keep: Vec<Sender>,
    readers: JoinSet<()>,
    connected: usize,
    errors: Vec<String>,
    connect_s: f64,
    received: Arc<AtomicU64>,
    first_ns: Arc<AtomicU64>,
    last_ns: Arc<AtomicU64>,
    all_in: Arc<Notify>,
}

fn topics(run_id: &str) -> (String, String) {
    (format!("bench.scale.{run_id}.shared"), format!("bench.scale.{run_id}.own"))
}

async fn connect_group(ctx: &Ctx, p: &Params) -> Group {
    let (shared_topic, own_prefix) = topics(&p.run_id);
    let loopback_v4 = matches!(ctx.target.addr().ip(), IpAddr::V4(ip) if ip.is_loopback());
    let received = Arc::new(AtomicU64::new(0));
    let first_ns = Arc::new(AtomicU64::new(u64::MAX));
    let last_ns = Arc::new(AtomicU64::new(0));
    let all_in = Arc::new(Notify::new());
    let mut g = Group {
        keep: Vec::with_capacity(p.sessions),
        readers: JoinSet::new(),
        connected: 0,
        errors: Vec::new(),
        connect_s: 0.0,
        received: received.clone(),
        first_ns: first_ns.clone(),
        last_ns: last_ns.clone(),
        all_in: all_in.clone(),
    };
    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(p.connect_concurrency));
    let mut setup = JoinSet::new();
    for i in 0..p.sessions {
        let source = (p.source_ips > 1 && loopback_v4)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + ((i + p.proc_index) % usize::from(p.source_ips)) as u8)));
        let (target, opts, realm, gate) = (ctx.target.clone(), ctx.opts(source, IDLE_READ_BUFFER), ctx.realm.clone(), gate.clone());
        let (shared_topic, own) = (shared_topic.clone(), format!("{own_prefix}.s{}_{i}", p.proc_index));
        setup.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let mut s = Session::open(&target, &opts, &realm).await?;
            s.subscribe(&own).await?;
            s.subscribe(&shared_topic).await?;
            Ok::<Session, String>(s)
        });
    }
    let total = p.sessions as u64;
    while let Some(r) = setup.join_next().await {
        match r.map_err(|e| e.to_string()).and_then(|x| x) {
            Ok(Session { tx, mut rx, .. }) => {
                g.connected += 1;
                g.keep.push(tx);
                let ser = ctx.serializer;
                let (received, first_ns, last_ns, all_in) = (received.clone(), first_ns.clone(), last_ns.clone(), all_in.clone());
                g.readers.spawn(async move {
                    let mut seen = false;
                    while let Ok(Some(frame)) = rx.next().await {
                        if !seen && peek_type(ser, &frame) == Some(code::EVENT) {
                            seen = true;
                            let t = unix_ns();
                            first_ns.fetch_min(t, Ordering::Relaxed);
                            last_ns.fetch_max(t, Ordering::Relaxed);
                            if received.fetch_add(1, Ordering::Relaxed) + 1 == total {
                                all_in.notify_one();
                            }
                        }
                    }
                });
            }
            Err(e) => {
                if g.errors.len() < 10 {
                    g.errors.push(e);
                }
            }
        }
    }
    g.connect_s = start.elapsed().as_secs_f64();
    g
}

impl Group {
    /// Waits until every session has the shared event, or `timeout`.
    async fn wait_events(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async {
            while (self.received.load(Ordering::Relaxed) as usize) < self.connected {
                let n = self.all_in.notified();
                if self.received.load(Ordering::Relaxed) as usize >= self.connected {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), n).await;
            }
        })
        .await;
    }
}

/// A helper process's part: connect, report, wait for the event, report, wait for EOF.
pub async fn child(ctx: &Ctx, p: Params) -> ExitCode {
    let g = connect_group(ctx, &p).await;
    let ready = json!({"child": "ready", "connected": g.connected, "connect_s": g.connect_s, "errors": g.errors});
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{ready}").and_then(|_| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    drop(out);
    g.wait_events(p.event_timeout).await;
    let first = g.first_ns.load(Ordering::Relaxed);
    let events = json!({
        "child": "events",
        "received": g.received.load(Ordering::Relaxed),
        "first_ns": (first != u64::MAX).then_some(first),
        "last_ns": g.last_ns.load(Ordering::Relaxed),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{events}").and_then(|_| out.flush());
    drop(out);
    // Stay connected until the parent is done measuring.
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    ExitCode::SUCCESS
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("scale");
    run.param("sessions", p.sessions);
    run.param("procs", p.procs);
    run.param("source_ips", p.source_ips);
    run.param("connect_concurrency", p.connect_concurrency);
    if let Err(e) = measure(ctx, p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

struct Helper {
    child: Child,
    ready: Option<serde_json::Value>,
    events: Option<serde_json::Value>,
}

async fn measure(ctx: &Ctx, mut p: Params, run: &mut Run) -> Result<(), String> {
    p.run_id = ctx.uri("scale").replace("bench.scale.", "");
    let per_proc = p.sessions.div_ceil(p.procs);
    if let Some(limit) = procstat::open_files_limit() {
        if per_proc as u64 + 64 > limit {
            return Err(format!(
                "{per_proc} sessions in one process need more descriptors than its limit of {limit}: \
                 raise it (ulimit -n $(ulimit -Hn)) or spread the sessions (--procs)"
            ));
        }
    }
    let router = ctx.router_pid.map(|p| p.to_string());
    let rss_before = match &router {
        Some(pid) => Some(procstat::rss_kib(pid)?),
        None => None,
    };
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();

    // Connect: in this process, or in helpers.
    let mut local: Option<Group> = None;
    let mut helpers: Vec<Helper> = Vec::new();
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<(usize, Option<serde_json::Value>)>();
    let (connected, connect_s) = if p.procs == 1 {
        let g = connect_group(ctx, &p).await;
        run.errors.extend(g.errors.iter().cloned());
        let r = (g.connected, g.connect_s);
        local = Some(g);
        r
    } else {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        for k in 0..p.procs {
            let n = p.sessions / p.procs + usize::from(k < p.sessions % p.procs);
            let mut cmd = Command::new(&exe);
            cmd.args(&ctx.common_args).args([
                "scale".to_owned(),
                "--child".into(),
                "--sessions".into(),
                n.to_string(),
                "--proc-index".into(),
                k.to_string(),
                "--source-ips".into(),
                p.source_ips.to_string(),
                "--connect-concurrency".into(),
                p.connect_concurrency.to_string(),
                "--event-timeout".into(),
                p.event_timeout.as_secs_f64().to_string(),
                "--run-id".into(),
                p.run_id.clone(),
            ]);
            let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().map_err(|e| format!("cannot start a helper: {e}"))?;
            let stdout = child.stdout.take().unwrap();
            let tx = lines_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let v = serde_json::from_str(&line).ok();
                    if tx.send((k, v)).is_err() {
                        return;
                    }
                }
                let _ = tx.send((k, None));
            });
            helpers.push(Helper { child, ready: None, events: None });
        }
        while helpers.iter().any(|h| h.ready.is_none()) {
            let (k, v) = tokio::time::timeout(SETUP_TIMEOUT * 5, lines.recv())
                .await
                .map_err(|_| "helpers did not connect in time".to_owned())?
                .ok_or("helper output ended")?;
            let v = v.ok_or_else(|| format!("helper {k} exited before its sessions were up"))?;
            helpers[k].ready = Some(v);
        }
        let mut connected = 0;
        for h in &helpers {
            let r = h.ready.as_ref().unwrap();
            connected += r["connected"].as_u64().unwrap_or(0) as usize;
            for e in r["errors"].as_array().into_iter().flatten() {
                if run.errors.len() < 10 {
                    run.errors.push(e.as_str().unwrap_or_default().to_owned());
                }
            }
        }
        (connected, start.elapsed().as_secs_f64())
    };

    // Memory once the sessions are up and settled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = match &router {
        Some(pid) => Some(procstat::rss_kib(pid)?),
        None => None,
    };

    // One event on the shared topic.
    let (shared_topic, _) = topics(&p.run_id);
    let mut publisher = Session::open(&ctx.target, &ctx.opts(None, 16 * 1024), &ctx.realm).await?;
    let request = publisher.request();
    let t0 = unix_ns();
    publisher.tx.send(&Message::Publish {
        request,
        options: dict([("acknowledge", true.into())]),
        topic: shared_topic,
        payload: Args::NONE,
    })?;
    let ack = tokio::time::timeout(p.event_timeout, publisher.recv()).await.map_err(|_| "no PUBLISHED in time".to_owned())??;
    if !matches!(ack, Message::Published { .. }) {
        run.errors.push(format!("publisher received {}", describe_error(&ack)));
    }
    let (received, last_ns) = match &local {
        Some(g) => {
            g.wait_events(p.event_timeout).await;
            (g.received.load(Ordering::Relaxed) as usize, g.last_ns.load(Ordering::Relaxed))
        }
        None => {
            while helpers.iter().any(|h| h.events.is_none()) {
                let (k, v) = tokio::time::timeout(p.event_timeout + Duration::from_secs(10), lines.recv())
                    .await
                    .map_err(|_| "helpers did not report the event in time".to_owned())?
                    .ok_or("helper output ended")?;
                helpers[k].events = Some(v.ok_or_else(|| format!("helper {k} exited early"))?);
            }
            let received = helpers.iter().map(|h| h.events.as_ref().unwrap()["received"].as_u64().unwrap_or(0) as usize).sum();
            let last = helpers.iter().map(|h| h.events.as_ref().unwrap()["last_ns"].as_u64().unwrap_or(0)).max().unwrap_or(0);
            (received, last)
        }
    };
    let helper_cpu: f64 = helpers.iter().map(|h| procstat::cpu_seconds(&h.child.id().to_string()).unwrap_or(0.0)).sum();
    let cpu = cpu.finish(helper_cpu);

    // Teardown: helpers exit when their stdin closes.
    drop(publisher);
    for h in &mut helpers {
        drop(h.child.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for h in &mut helpers {
        loop {
            match h.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = h.child.kill();
                    let _ = h.child.wait();
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    drop(local);
    let fanout_s = (received > 0 && last_ns >= t0).then(|| (last_ns - t0) as f64 / 1e9);

    run.fig("connected", connected);
    run.fig("connect_s", round(connect_s, 3));
    let rate = connected as f64 / connect_s.max(1e-9);
    run.fig("connect_rate_per_s", round(rate, 1));
    run.fig("router_rss_before_kib", rss_before);
    run.fig("router_rss_after_kib", rss_after);
    let per_session = match (rss_before, rss_after) {
        (Some(b), Some(a)) if connected > 0 => Some((a as f64 - b as f64) / connected as f64),
        _ => None,
    };
    run.fig("rss_per_session_kib", per_session.map(|x| round(x, 2)));
    run.fig("received", received);
    run.fig("shared_event_to_all_ms", fanout_s.map(|s| round(s * 1000.0, 3)));
    run.headline = format!(
        "{connected} sessions at {} sessions/s, router RSS {} KiB per session, shared event reached {received} in {}",
        thousands(rate),
        per_session.map(|x| format!("{x:.1}")).unwrap_or_else(|| "?".into()),
        fanout_s.map(|s| format!("{:.1} ms", s * 1000.0)).unwrap_or_else(|| "?".into())
    );
    run.cpu = Some(cpu);
    if connected < p.sessions {
        run.failed = Some(format!("only {connected} of {} sessions connected", p.sessions));
    } else if received < connected {
        run.failed = Some(format!("the shared event reached {received} of {connected} sessions"));
    }
    Ok(())
}
