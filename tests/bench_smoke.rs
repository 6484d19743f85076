//! `switchyard-bench --smoke` against the built router binary, over WebSocket/JSON,
//! WebSocket/MessagePack and RawSocket/MessagePack: the generator must exit 0 and print
//! one JSON object per workload with exactly the expected counts (no lost event, every
//! publication acknowledged, every call answered, every session reached).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

const ROUTER: &str = env!("CARGO_BIN_EXE_switchyard");
const BENCH: &str = env!("CARGO_BIN_EXE_switchyard-bench");

/// The smoke runs measure timing; one at a time keeps them from competing for the cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Router {
    child: Child,
    websocket: String,
    rawsocket: String,
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_router() -> Router {
    let mut child = Command::new(ROUTER)
        .args(["serve", "--listen", "127.0.0.1:0", "--rawsocket", "127.0.0.1:0"])
        .env("SWITCHYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("router starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
    Router {
        websocket: ready["websocket"].as_str().unwrap().to_owned(),
        rawsocket: ready["rawsocket"].as_str().unwrap().to_owned(),
        child,
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} is not a non-negative integer in {v}"))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

fn smoke(transport: &[&str], serializer: &str, expect_transport: &str) {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let router = start_router();
    let pid = router.child.id().to_string();
    let target: Vec<String> = match transport {
        ["ws"] => vec!["--url".into(), router.websocket.clone()],
        ["raw"] => vec!["--rawsocket".into(), router.rawsocket.clone()],
        _ => unreachable!(),
    };
    let out = Command::new(BENCH)
        .args(&target)
        .args(["--serializer", serializer, "--router-pid", &pid, "--label", "smoke", "--smoke"])
        .output()
        .expect("switchyard-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "switchyard-bench --smoke failed:\n{stderr}");

    let runs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let names: Vec<&str> = runs.iter().map(|r| r["workload"].as_str().unwrap()).collect();
    assert_eq!(names, ["fanout", "rpc", "latency", "scale"], "{stderr}");

    for r in &runs {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["errors"], Value::Array(vec![]), "{r}");
        assert_eq!(r["label"], "smoke");
        assert_eq!(r["transport"], expect_transport);
        assert_eq!(r["serializer"], serializer);
        assert_eq!(u(r, "router_pid").to_string(), pid);
        assert!(f(r, "router_cpu_s") >= 0.0, "{r}");
        assert!(f(r, "generator_cpu_s") >= 0.0, "{r}");
        assert!(r["generator_bound"].is_boolean(), "{r}");
        assert_eq!(u(r, "cores") as usize, std::thread::available_parallelism().unwrap().get());
    }

    let fanout = &runs[0];
    assert_eq!(u(&fanout["params"], "subscribers"), 10);
    assert!(u(fanout, "publications") > 0, "{fanout}");
    assert_eq!(u(fanout, "publications"), u(fanout, "publications_sent"), "{fanout}");
    assert_eq!(u(fanout, "publications_unanswered"), 0);
    assert_eq!(u(fanout, "publish_errors"), 0);
    assert_eq!(u(fanout, "events"), u(fanout, "publications") * 10, "{fanout}");
    assert_eq!(u(fanout, "expected_events"), u(fanout, "events"));
    assert_eq!(fanout["loss"], 0);
    assert_eq!(u(fanout, "unexpected_messages"), 0);
    assert!(f(fanout, "events_per_router_cpu_s") > 0.0, "{fanout}");

    let rpc = &runs[1];
    assert_eq!(u(&rpc["params"], "callers"), 4);
    assert!(u(rpc, "calls") > 0, "{rpc}");
    assert_eq!(u(rpc, "call_errors"), 0);
    assert_eq!(u(rpc, "rtt_samples"), u(rpc, "calls"));
    assert!(f(rpc, "rtt_p50_us") <= f(rpc, "rtt_p99_us") && f(rpc, "rtt_p99_us") <= f(rpc, "rtt_max_us"), "{rpc}");
    assert!(f(rpc, "calls_per_s") > 0.0);

    let latency = &runs[2];
    assert_eq!(u(&latency["params"], "rate"), 200);
    assert_eq!(u(latency, "publications"), 400, "200/s for 2 s: {latency}");
    assert_eq!(u(latency, "events"), 4000, "{latency}");
    assert_eq!(latency["loss"], 0);
    assert!(u(latency, "latency_samples") > 0 && u(latency, "latency_samples") <= 4000, "{latency}");
    assert!(f(latency, "latency_p50_us") <= f(latency, "latency_p99_us"), "{latency}");

    let scale = &runs[3];
    assert_eq!(u(&scale["params"], "sessions"), 50);
    assert_eq!(u(scale, "connected"), 50, "{scale}");
    assert_eq!(u(scale, "received"), 50, "{scale}");
    assert!(u(scale, "router_rss_after_kib") > 0);
    assert!(scale["rss_per_session_kib"].is_number(), "{scale}");
    assert!(f(scale, "shared_event_to_all_ms") >= 0.0, "{scale}");
    assert!(f(scale, "connect_rate_per_s") > 0.0);
}

#[test]
fn smoke_websocket_json() {
    smoke(&["ws"], "json", "websocket");
}

#[test]
fn smoke_websocket_msgpack() {
    smoke(&["ws"], "msgpack", "websocket");
}

#[test]
fn smoke_rawsocket_msgpack() {
    smoke(&["raw"], "msgpack", "rawsocket");
}

/// The replay store's workloads at their smoke sizes against the embedded default realm
/// (every topic stored, 1,000 events each): `replay` in both modes (1,000 events, 3
/// trials, one JSON line each) and `slow-consumer` (10 fast subscribers and a slow one,
/// 200/s for 2 s). `durable` needs PostgreSQL and is left to bench/replay.sh.
#[test]
fn smoke_replay_store_workloads() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let router = start_router();
    let pid = router.child.id().to_string();
    let bench = |args: &[&str]| -> Vec<Value> {
        let out = Command::new(BENCH)
            .args(["--url", &router.websocket, "--router-pid", &pid, "--label", "smoke", "--smoke"])
            .args(args)
            .output()
            .expect("switchyard-bench runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "switchyard-bench --smoke {args:?} failed:\n{stderr}");
        let runs: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for r in &runs {
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(r["errors"], Value::Array(vec![]), "{r}");
        }
        runs
    };

    let replay = bench(&["replay", "--mode", "replay"]);
    assert_eq!(replay.len(), 3, "one line per trial: {replay:?}");
    for (i, r) in replay.iter().enumerate() {
        assert_eq!(r["workload"], "replay");
        assert_eq!(u(r, "trial"), i as u64 + 1);
        assert_eq!(u(r, "events"), 1000, "{r}");
        assert!(f(r, "subscribe_to_subscribed_ms") <= f(r, "subscribe_to_last_event_ms"), "{r}");
    }
    let get_events = bench(&["replay", "--mode", "get-events"]);
    assert_eq!(get_events.len(), 3);
    for r in &get_events {
        assert_eq!(r["params"]["mode"], "get-events");
        assert_eq!(u(r, "events"), 1000, "{r}");
        assert!(f(r, "call_to_result_ms") <= f(r, "subscribe_to_result_ms"), "{r}");
    }

    let slow = bench(&["slow-consumer"]);
    let s = &slow[0];
    assert_eq!(s["workload"], "slow-consumer");
    assert_eq!(u(s, "publications"), 400, "200/s for 2 s: {s}");
    assert_eq!(u(s, "fast_events"), 4000, "{s}");
    assert_eq!(u(s, "slow_received"), 400, "{s}");
    for k in ["fast_disorder", "fast_gap", "fast_dropped", "slow_disorder", "slow_gap", "slow_dropped"] {
        assert_eq!(u(s, k), 0, "{k}: {s}");
    }
    assert!(f(s, "fast_latency_p50_us") <= f(s, "fast_latency_p99_us"), "{s}");
}

/// `http-publish` at its smoke size (2 keep-alive connections, 2 subscribers, 2 s)
/// against the built router's HTTP bridge: every answer a 2xx, every event received.
#[test]
fn smoke_http_publish() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let router = start_router();
    let pid = router.child.id().to_string();
    let out = Command::new(BENCH)
        .args(["--url", &router.websocket, "--router-pid", &pid, "--label", "smoke", "--smoke", "http-publish"])
        .output()
        .expect("switchyard-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "switchyard-bench --smoke http-publish failed:\n{stderr}");
    let r: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!((r["workload"].as_str(), &r["ok"], &r["errors"]), (Some("http-publish"), &Value::Bool(true), &Value::Array(vec![])), "{r}");
    assert_eq!((u(&r["params"], "connections"), u(&r["params"], "subscribers")), (2, 2));
    assert!(u(&r, "publications") > 0, "{r}");
    assert_eq!(u(&r, "events"), 2 * u(&r, "publications"), "{r}");
    assert_eq!((u(&r, "refused"), u(&r, "reconnects"), &r["loss"]), (0, 0, &Value::from(0)), "{r}");
    assert_eq!(u(&r, "latency_samples"), u(&r, "publications"), "{r}");
    assert!(f(&r, "publications_per_router_cpu_s") > 0.0, "{r}");
}
