//! `switchyard-bench`: a WAMP load generator for Switchyard and any other WAMP v2 router
//! (Crossbar for the comparison in `bench/compare.sh`). It speaks WAMP over WebSocket or
//! RawSocket with JSON, MessagePack or CBOR, runs one of four time-bounded workloads
//! (fanout, rpc, latency, scale) against a router on loopback, samples the router's and
//! its own CPU, and prints one JSON object per run on stdout and a summary on stderr.
//! `--smoke` runs all four at small sizes and fails on any error or lost event. A fifth
//! workload, `hostile`, attacks the router with misbehaving clients and measures its
//! memory (see `hostile.rs`); it is not part of `--smoke`. Three more need the
//! permission graph's PostgreSQL and a router whose realm follows it (`bench/graph.sh`):
//! `revoke` (revocation latency under load), `graph-cold` (decisions with nothing cached,
//! token joins) and `graph-fixture` (users and tokens for fanout/rpc on the graph realm,
//! see `--tokens` and `--service`); none is part of `--smoke`. Three measure the replay
//! store (`bench/replay.sh`): `replay` (history of 10,000 events to a new subscriber,
//! by `_replay` or `wamp.subscription.get_events`), `durable` (acknowledged publications
//! to durable topics: needs a realm with a `durable = true` rule) and `slow-consumer`
//! (one subscriber reading at a tenth of the rate beside fast ones); `replay` and
//! `slow-consumer` have smoke sizes (`--smoke replay`), not part of the default list.
//! `http-publish` posts to an HTTP publisher (Switchyard's bridge, Crossbar's HTTP
//! Bridge) on keep-alive connections, with WAMP subscribers counting the events.
//!
//! Modules: `conn` (transports), `session` (WAMP client), `stats` (percentiles),
//! `procstat` (/proc sampling), `report` (output), one module per workload; `wire`
//! (byte-level attacking peers) and `watch` (RSS sampler, TCP socket table) serve
//! `hostile`; `graphdb` (the graph's tables, the router's /metrics) serves `revoke`,
//! `graph-cold` (module `cold`) and `graph-fixture`.

mod cold;
mod conn;
mod durable;
mod fanout;
mod flood;
mod graphdb;
mod hostile;
mod http;
mod joins;
mod latency;
mod procstat;
mod replay;
mod report;
mod revoke;
mod rpc;
mod scale;
mod session;
mod slow;
mod stats;
mod watch;
mod wire;

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use switchyard::wamp::Serializer;

use conn::{ConnectOptions, Target};
use report::Run;

#[derive(Parser)]
#[command(
    name = "switchyard-bench",
    version,
    about = "WAMP load generator: fan-out, RPC, latency, session-scale and replay-store workloads against a router on loopback",
    after_help = "Examples:\n  switchyard-bench --url ws://127.0.0.1:8080/ws --router-pid $(pgrep -x switchyard) fanout --subscribers 100\n  switchyard-bench --rawsocket 127.0.0.1:8081 --serializer msgpack rpc --callers 16\n  switchyard-bench --smoke"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// Run every workload (or the one named) at small sizes for a few seconds; exit
    /// non-zero on any error or lost event.
    #[arg(long, global = true)]
    smoke: bool,
    #[command(subcommand)]
    workload: Option<Workload>,
}

#[derive(ClapArgs, Clone)]
struct Common {
    /// WebSocket URL of the router.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// RawSocket TCP address (host:port); when given, RawSocket is used instead of --url.
    #[arg(long, global = true)]
    rawsocket: Option<String>,
    #[arg(long, global = true, default_value = "realm1")]
    realm: String,
    #[arg(long, global = true, value_enum, default_value = "json")]
    serializer: SerializerArg,
    /// PID of the router process, to measure its CPU time and memory.
    #[arg(long, global = true)]
    router_pid: Option<u32>,
    /// Name of the target in the output (e.g. switchyard, crossbar).
    #[arg(long, global = true, default_value = "router")]
    label: String,
    /// Seconds of load per run (fanout, rpc, latency).
    #[arg(long, global = true, default_value_t = 10.0)]
    duration: f64,
    /// Seconds without progress after which the end-of-run wait for outstanding events
    /// gives up (what is still missing then is reported as loss).
    #[arg(long, global = true, default_value_t = 5.0)]
    drain: f64,
    /// API tokens, one per line: subscribers and callers join with WAMP-Ticket as these
    /// users, in turn (fanout, rpc, latency). Without: anonymous.
    #[arg(long, global = true)]
    tokens: Option<std::path::PathBuf>,
    /// `AUTHID:TICKET` of a static principal: the publisher and the callee join with
    /// WAMP-Ticket as it (fanout, rpc, latency; revoke's controller). Without: anonymous.
    #[arg(long, global = true)]
    service: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SerializerArg {
    Json,
    Msgpack,
    Cbor,
}

impl From<SerializerArg> for Serializer {
    fn from(s: SerializerArg) -> Serializer {
        match s {
            SerializerArg::Json => Serializer::Json,
            SerializerArg::Msgpack => Serializer::MsgPack,
            SerializerArg::Cbor => Serializer::Cbor,
        }
    }
}

#[derive(Subcommand, Clone)]
enum Workload {
    /// One publisher, N subscribers on one topic, closed loop on delivery to every subscriber.
    Fanout {
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
        /// Publications ahead of the slowest subscriber (and unacknowledged), at most.
        #[arg(long, default_value_t = 100)]
        in_flight: usize,
        /// Encoded size of the publication's Arguments, in bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// The topic (default: one unique to the run).
        #[arg(long)]
        topic: Option<String>,
    },
    /// One callee, N callers, each with one call in flight.
    Rpc {
        #[arg(long, default_value_t = 4)]
        callers: usize,
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// The procedure (default: one unique to the run).
        #[arg(long)]
        procedure: Option<String>,
        /// Callees sharing the registration.
        #[arg(long, default_value_t = 1)]
        callees: usize,
        /// Their invocation policy (roundrobin, random, first, last); needed for more
        /// than one callee.
        #[arg(long)]
        invoke: Option<String>,
    },
    /// Sessions joining and leaving in closed loops; optional watchers of the session
    /// meta events.
    Joins {
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Sessions subscribed to wamp.session.on_join meanwhile.
        #[arg(long, default_value_t = 0)]
        watchers: usize,
        /// The watchers also subscribe to wamp.session.on_leave.
        #[arg(long)]
        leaves: bool,
    },
    /// N sessions publishing as fast as the router answers: the noisy tenant.
    Flood {
        #[arg(long, default_value_t = 4)]
        sessions: usize,
        #[arg(long, default_value_t = 100)]
        payload: usize,
    },
    /// HTTP POSTs of `{"topic", "args"}` on keep-alive connections, each a closed loop,
    /// to Switchyard's `POST /publish` or Crossbar's HTTP Bridge publisher (`--http-url`);
    /// WAMP subscribers count the events. Publications per second and per router CPU-second.
    HttpPublish {
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        subscribers: usize,
        /// Bytes of the padding string in `args`.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// The publisher's URL (default: http://<--url's host:port>/publish).
        #[arg(long)]
        http_url: Option<String>,
    },
    /// Publications at a fixed rate carrying their send time; publish→event latency.
    Latency {
        /// Publications per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Seconds at the start whose samples are left out of the percentiles.
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
    },
    /// N idle sessions, each subscribed to its own topic and one shared topic: router
    /// memory per session, connect rate, and one shared event's time to reach all.
    Scale {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Generator processes to spread the sessions over (this binary, re-executed).
        #[arg(long, default_value_t = 1)]
        procs: usize,
        /// Source addresses 127.0.0.1 … 127.0.0.K to spread connections over (more
        /// ephemeral ports); 1 lets the kernel choose.
        #[arg(long, default_value_t = 1)]
        source_ips: u8,
        /// Session handshakes in progress at once, per process.
        #[arg(long, default_value_t = 64)]
        connect_concurrency: usize,
        /// Seconds to wait for the shared event to reach every session.
        #[arg(long, default_value_t = 30.0)]
        event_timeout: f64,
        /// Internal: run as one of the `--procs` helper processes.
        #[arg(long, hide = true)]
        child: bool,
        #[arg(long, hide = true, default_value_t = 0)]
        proc_index: usize,
        #[arg(long, hide = true, default_value = "")]
        run_id: String,
    },
    /// Misbehaving clients from the memory-exhaustion reports: the router's RSS before,
    /// at peak and settled after the attack, and how the router treated the attackers.
    /// Needs --router-pid.
    Hostile {
        #[arg(long, value_enum)]
        scenario: hostile::Scenario,
        /// Attacking connections (per scenario by default: ping-before-hello 10,
        /// partial-frame 1, partial-frames-48 and ws-partial-frames-48 48,
        /// unread-results 1 caller, idle-connections and slow-headers 2000, burst 48
        /// publishers).
        #[arg(long)]
        peers: Option<usize>,
        /// Announced payload of an attack frame, in bytes. The default, 2^24 - 1, is the
        /// largest length the three length octets of a RawSocket header carry.
        #[arg(long, default_value_t = (1 << 24) - 1)]
        frame_bytes: usize,
        /// Seconds to wait for the router to close the attacking connections.
        #[arg(long, default_value_t = 90.0)]
        wait: f64,
        /// Seconds after the attacking connections are closed at which the settled RSS
        /// is read, comma-separated (default 5; burst: 5,30).
        #[arg(long, value_delimiter = ',')]
        settle: Vec<f64>,
        /// unread-results: size of each result, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        result_bytes: usize,
        /// unread-results: calls the caller sends.
        #[arg(long, default_value_t = 100)]
        calls: usize,
        /// unread-results: the caller's socket receive buffer (SO_RCVBUF), in bytes.
        #[arg(long, default_value_t = 4096)]
        recv_buffer: u32,
        /// burst: size of each event, in bytes.
        #[arg(long, default_value_t = 4 << 20)]
        event_bytes: usize,
        /// burst: events per publisher.
        #[arg(long, default_value_t = 10)]
        events: usize,
        /// idle-connections, slow-headers: seconds a fresh client has to get WELCOME.
        #[arg(long, default_value_t = 2.0)]
        probe_timeout: f64,
    },
    /// Revocation latency: users holding graph-protected subscriptions under a stream of
    /// events lose their permission one committed change at a time; COMMIT →
    /// UNSUBSCRIBED, and any event that still reaches them. Needs --service (the
    /// controller that publishes) and a router whose --realm follows --database-url.
    Revoke {
        #[command(flatten)]
        db: DatabaseArg,
        /// User sessions, each with its own token.
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Subscriptions per user (containers of its group's project).
        #[arg(long, default_value_t = 5)]
        subscriptions_per_user: usize,
        /// Users per group (one project and one role each).
        #[arg(long, default_value_t = 5)]
        users_per_group: usize,
        /// Publications per second, spread over every topic.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Permission changes, one committed transaction each, each ending one user's
        /// path to its containers.
        #[arg(long, default_value_t = 200)]
        changes: usize,
        /// Milliseconds between the starts of two changes.
        #[arg(long, default_value_t = 30)]
        spacing_ms: u64,
        /// Seconds of publishing before the first change.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Seconds after the last change to wait for the revocations still missing.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Decisions with nothing cached (SUBSCRIBE → SUBSCRIBED on an object not yet
    /// loaded), and joins/s with API tokens (with --service: also with a static ticket).
    GraphCold {
        #[command(flatten)]
        db: DatabaseArg,
        /// Users subscribing one after another.
        #[arg(long, default_value_t = 50)]
        users: usize,
        /// Objects each user subscribes to first.
        #[arg(long, default_value_t = 100)]
        objects: usize,
        /// Token joins (one token and user each).
        #[arg(long, default_value_t = 5000)]
        joins: usize,
        /// Joins in progress at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Not a measurement: writes the graph that fanout/rpc use on a graph realm (users
    /// with read on one container through a role and a project) and their tokens.
    GraphFixture {
        #[command(flatten)]
        db: DatabaseArg,
        /// The container (an id starting with `ab_`).
        #[arg(long, default_value = "ab_obj")]
        object: String,
        #[arg(long, default_value_t = 200)]
        users: usize,
        /// Where to write the tokens, one per line (for --tokens).
        #[arg(long)]
        tokens_out: std::path::PathBuf,
    },
    /// A topic's history to a new subscriber: SUBSCRIBE → last history EVENT (`--mode
    /// replay`, `_replay: {"last": N}`) or CALL → RESULT of wamp.subscription.get_events
    /// (`--mode get-events`); one JSON line per trial. The realm must keep ≥ N events per topic.
    Replay {
        /// Events stored first, then asked for by every trial.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Trials, each a fresh session.
        #[arg(long, default_value_t = 20)]
        trials: usize,
        #[arg(long, value_enum, default_value = "replay")]
        mode: replay::Mode,
    },
    /// Acknowledged publications to durable topics (PUBLISHED after commit), several
    /// publishers with a window of outstanding acknowledgements each; events/s and
    /// the router's and PostgreSQL's CPU. The realm needs a `durable = true` rule.
    Durable {
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Topics the publications are spread over, round robin.
        #[arg(long, default_value_t = 1)]
        topics: usize,
        /// Unacknowledged publications per publisher, at most.
        #[arg(long, default_value_t = 1000)]
        window: usize,
        #[arg(long, default_value_t = 100)]
        payload: usize,
    },
    /// A fixed publication rate to fast subscribers and one slow one (reading at
    /// rate × slow-fraction, then draining): the fast ones' latency, and whether the slow
    /// one gets every event in order. --slow-fraction 0: no slow subscriber (baseline).
    SlowConsumer {
        #[arg(long, default_value_t = 99)]
        fast: usize,
        /// Publications per second.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        /// The slow subscriber's reading rate as a fraction of `rate`; 0: none.
        #[arg(long, default_value_t = 0.1)]
        slow_fraction: f64,
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Seconds at the start whose samples are left out of the percentiles.
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
    },
}

#[derive(ClapArgs, Clone)]
struct DatabaseArg {
    /// PostgreSQL URL of the permission graph the router follows.
    #[arg(long, env = "SWITCHYARD_DATABASE_URL")]
    database_url: String,
}

/// What every workload needs to know about the target.
pub struct Ctx {
    pub target: Target,
    /// The WebSocket URL (its HTTP port serves /metrics).
    pub url: String,
    /// `--tokens`: the users subscribers and callers join as, in turn.
    pub users: Vec<session::Identity>,
    /// `--service`: who publishers and callees join as.
    pub service: session::Identity,
    pub serializer: Serializer,
    pub realm: String,
    pub label: String,
    pub router_pid: Option<u32>,
    pub duration: Duration,
    pub drain: Duration,
    /// The original command-line arguments shared with helper processes.
    pub common_args: Vec<String>,
}

impl Ctx {
    pub fn opts(&self, source: Option<IpAddr>, read_buffer: usize) -> ConnectOptions {
        ConnectOptions { serializer: self.serializer, source, read_buffer }
    }

    /// The identity of the `i`th subscriber or caller.
    pub fn user(&self, i: usize) -> session::Identity {
        if self.users.is_empty() {
            session::Identity::Anonymous
        } else {
            self.users[i % self.users.len()].clone()
        }
    }

    pub fn service(&self) -> session::Identity {
        self.service.clone()
    }

    /// A topic or procedure URI unique to this run (valid under strict URI rules).
    pub fn uri(&self, what: &str) -> String {
        static RUN: AtomicU64 = AtomicU64::new(0);
        format!("bench.{what}.r{}_{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed))
    }
}

fn common_args(c: &Common) -> Vec<String> {
    let mut v = vec!["--url".into(), c.url.clone(), "--realm".into(), c.realm.clone(), "--label".into(), c.label.clone()];
    if let Some(r) = &c.rawsocket {
        v.extend(["--rawsocket".into(), r.clone()]);
    }
    v.extend([
        "--serializer".into(),
        Serializer::from(c.serializer).name().to_owned(),
        "--duration".into(),
        c.duration.to_string(),
        "--drain".into(),
        c.drain.to_string(),
    ]);
    v
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let c = &cli.common;
    let target = match Target::resolve(&c.url, c.rawsocket.as_deref()).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let smoke_duration = Duration::from_secs(2);
    let users = match &c.tokens {
        None => Vec::new(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::trim).filter(|l| !l.is_empty()).map(session::Identity::token).collect(),
            Err(e) => {
                eprintln!("--tokens {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    if c.tokens.is_some() && users.is_empty() {
        eprintln!("--tokens: the file holds no token");
        return ExitCode::from(2);
    }
    let ctx = Ctx {
        target,
        url: c.url.clone(),
        users,
        service: c.service.as_deref().map(session::Identity::parse).unwrap_or_default(),
        serializer: c.serializer.into(),
        realm: c.realm.clone(),
        label: c.label.clone(),
        router_pid: c.router_pid,
        duration: if cli.smoke { smoke_duration } else { Duration::from_secs_f64(c.duration.max(0.1)) },
        drain: Duration::from_secs_f64(c.drain.max(0.1)),
        common_args: common_args(c),
    };
    if let Some(pid) = ctx.router_pid {
        if let Err(e) = procstat::cpu_seconds(&pid.to_string()) {
            eprintln!("--router-pid {pid}: {e}");
            return ExitCode::from(2);
        }
    }

    let workloads: Vec<Workload> = match (&cli.workload, cli.smoke) {
        (Some(w), false) => vec![w.clone()],
        (Some(w), true) => vec![smoke_size(w)],
        (None, true) => vec![
            Workload::Fanout { subscribers: 10, in_flight: 20, payload: 100, topic: None },
            Workload::Rpc { callers: 4, payload: 100, procedure: None, callees: 1, invoke: None },
            Workload::Latency { rate: 200, subscribers: 10, payload: 100, warmup: 0.2 },
            smoke_size(&Workload::Scale {
                sessions: 50,
                procs: 1,
                source_ips: 1,
                connect_concurrency: 64,
                event_timeout: 10.0,
                child: false,
                proc_index: 0,
                run_id: String::new(),
            }),
        ],
        (None, false) => {
            eprintln!("name a workload (fanout, rpc, latency, scale, joins, flood, http-publish, hostile, revoke, graph-cold, graph-fixture, replay, durable, slow-consumer) or pass --smoke; --help for more");
            return ExitCode::from(2);
        }
    };

    let mut all_ok = true;
    for w in workloads {
        let runs: Vec<Run> = match w {
            Workload::Fanout { subscribers, in_flight, payload, topic } => {
                vec![fanout::run(&ctx, fanout::Params { subscribers, in_flight: in_flight.max(1), payload, topic }).await]
            }
            Workload::Rpc { callers, payload, procedure, callees, invoke } => {
                vec![rpc::run(&ctx, rpc::Params { callers: callers.max(1), payload, procedure, callees: callees.max(1), invoke }).await]
            }
            Workload::Replay { events, payload, trials, mode } => {
                replay::run(&ctx, replay::Params { events: events.max(1), payload, trials: trials.max(1), mode }).await
            }
            Workload::Durable { publishers, topics, window, payload } => {
                let p = durable::Params { publishers: publishers.max(1), topics: topics.max(1), window: window.max(1), payload };
                vec![durable::run(&ctx, p).await]
            }
            Workload::SlowConsumer { fast, rate, slow_fraction, payload, warmup } => {
                let p = slow::Params {
                    fast,
                    rate: rate.max(1),
                    slow_fraction: slow_fraction.clamp(0.0, 1.0),
                    payload,
                    warmup: Duration::from_secs_f64(warmup.max(0.0)),
                };
                vec![slow::run(&ctx, p).await]
            }
            Workload::Revoke { db, users, subscriptions_per_user, users_per_group, rate, changes, spacing_ms, warmup, timeout } => {
                let p = revoke::Params {
                    database_url: db.database_url,
                    users: users.max(1),
                    per_user: subscriptions_per_user.max(1),
                    group: users_per_group.max(1),
                    rate: rate.max(1),
                    changes,
                    spacing: Duration::from_millis(spacing_ms),
                    warmup: Duration::from_secs_f64(warmup.max(0.0)),
                    timeout: Duration::from_secs_f64(timeout.max(0.1)),
                };
                vec![revoke::run(&ctx, p).await]
            }
            Workload::GraphCold { db, users, objects, joins, concurrency } => {
                vec![cold::run(&ctx, cold::Params { database_url: db.database_url, users, objects, joins, concurrency }).await]
            }
            Workload::GraphFixture { db, object, users, tokens_out } => {
                if !object.starts_with("ab_") {
                    eprintln!("--object must start with ab_ (the fixture's ids, deleted and written anew on each run)");
                    return ExitCode::from(2);
                }
                return match graphdb::fixture(&db.database_url, &object, users, &tokens_out).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("graph-fixture: {e}");
                        ExitCode::from(1)
                    }
                };
            }
            Workload::Joins { concurrency, watchers, leaves } => vec![joins::run(&ctx, joins::Params { concurrency, watchers, leaves }).await],
            Workload::Flood { sessions, payload } => vec![flood::run(&ctx, flood::Params { sessions, payload }).await],
            Workload::HttpPublish { connections, subscribers, payload, http_url } => {
                vec![http::run(&ctx, http::Params { connections, subscribers, payload, http_url }).await]
            }
            Workload::Latency { rate, subscribers, payload, warmup } => {
                vec![latency::run(&ctx, latency::Params { rate: rate.max(1), subscribers, payload, warmup: Duration::from_secs_f64(warmup.max(0.0)) }).await]
            }
            Workload::Scale { sessions, procs, source_ips, connect_concurrency, event_timeout, child, proc_index, run_id } => {
                let p = scale::Params {
                    sessions,
                    procs: procs.max(1),
                    source_ips: source_ips.max(1),
                    connect_concurrency: connect_concurrency.max(1),
                    event_timeout: Duration::from_secs_f64(event_timeout.max(0.1)),
                    proc_index,
                    run_id,
                };
                if child {
                    return scale::child(&ctx, p).await;
                }
                vec![scale::run(&ctx, p).await]
            }
            Workload::Hostile {
                scenario,
                peers,
                frame_bytes,
                wait,
                settle,
                result_bytes,
                calls,
                recv_buffer,
                event_bytes,
                events,
                probe_timeout,
            } => {
                if ctx.router_pid.is_none() {
                    eprintln!("hostile needs --router-pid: it measures the router's memory");
                    return ExitCode::from(2);
                }
                let targets = match hostile_targets(c).await {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(2);
                    }
                };
                let p = hostile::Params {
                    scenario,
                    peers: peers.unwrap_or(scenario.default_peers()).max(1),
                    frame_bytes: frame_bytes.min(1 << 24),
                    wait: Duration::from_secs_f64(wait.max(0.1)),
                    settle: if settle.is_empty() { scenario.default_settle() } else { settle },
                    result_bytes,
                    calls,
                    recv_buffer,
                    event_bytes,
                    events,
                    probe_timeout: Duration::from_secs_f64(probe_timeout.max(0.1)),
                };
                vec![hostile::run(&ctx, &targets, p).await]
            }
        };
        for run in runs {
            run.print(&ctx);
            all_ok &= run.ok();
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Both ports of the router for `hostile`: the WebSocket URL, and the RawSocket address
/// (`--rawsocket`, else the default 127.0.0.1:8081), whichever transport `--rawsocket`
/// selects for the other workloads.
async fn hostile_targets(c: &Common) -> Result<hostile::Targets, String> {
    let ws = Target::resolve(&c.url, None).await?;
    let raw = Target::resolve(&c.url, Some(c.rawsocket.as_deref().unwrap_or("127.0.0.1:8081"))).await?;
    Ok(hostile::Targets { ws_url: c.url.clone(), ws: ws.addr(), raw: raw.addr() })
}

/// The smoke-test size of a workload named on the command line.
fn smoke_size(w: &Workload) -> Workload {
    match w.clone() {
        Workload::Fanout { in_flight, payload, topic, .. } => Workload::Fanout { subscribers: 10, in_flight, payload, topic },
        Workload::Rpc { payload, procedure, callees, invoke, .. } => Workload::Rpc { callers: 4, payload, procedure, callees, invoke },
        Workload::Latency { payload, .. } => Workload::Latency { rate: 200, subscribers: 10, payload, warmup: 0.2 },
        Workload::Scale { procs, source_ips, connect_concurrency, child, proc_index, run_id, .. } => Workload::Scale {
            sessions: 50,
            procs,
            source_ips,
            connect_concurrency,
            event_timeout: 10.0,
            child,
            proc_index,
            run_id,
        },
        Workload::Replay { payload, mode, .. } => Workload::Replay { events: 1000, payload, trials: 3, mode },
        Workload::SlowConsumer { payload, .. } => Workload::SlowConsumer { fast: 10, rate: 200, slow_fraction: 0.1, payload, warmup: 0.2 },
        Workload::Joins { watchers, leaves, .. } => Workload::Joins { concurrency: 2, watchers: watchers.min(1), leaves },
        Workload::Flood { payload, .. } => Workload::Flood { sessions: 2, payload },
        Workload::HttpPublish { payload, http_url, .. } => Workload::HttpPublish { connections: 2, subscribers: 2, payload, http_url },
        other @ (Workload::Durable { .. } | Workload::Hostile { .. } | Workload::Revoke { .. } | Workload::GraphCold { .. } | Workload::GraphFixture { .. }) => other,
    }
}
