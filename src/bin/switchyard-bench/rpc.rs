//! The RPC workload: one callee registers an echo procedure (YIELD returns the
//! INVOCATION's Arguments unchanged), or several share it under an invocation policy
//! (`--callees 4 --invoke roundrobin`); N callers each keep exactly one CALL in flight
//! for `--duration`. Figures: calls/s, round-trip p50/p90/p99/max (CALL sent → RESULT
//! received, every call recorded), calls per router CPU-second.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use switchyard::wamp::message::code;
use switchyard::wamp::{dict, Dict, Message};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::conn::peek_type;
use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, padding_args, Session};
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    pub callers: usize,
    pub payload: usize,
    /// The procedure; default: one unique to the run.
    pub procedure: Option<String>,
    /// Callees sharing the registration (1: a plain registration).
    pub callees: usize,
    /// `REGISTER.Options.invoke` of every callee, when sharing.
    pub invoke: Option<String>,
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("rpc");
    run.param("callers", p.callers);
    run.param("payload_bytes", p.payload);
    if p.callees > 1 || p.invoke.is_some() {
        run.param("callees", p.callees);
        run.param("invoke", p.invoke.clone().unwrap_or_else(|| "single".into()));
    }
    run.param("duration_s", ctx.duration.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

struct CallerResult {
    rtt: Samples,
    calls: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let procedure = p.procedure.clone().unwrap_or_else(|| ctx.uri("rpc.echo"));

    // The callees: each answers every INVOCATION at once.
    let ser = ctx.serializer;
    let callee_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut callee_tasks = Vec::new();
    let options = p.invoke.as_ref().map(|i| dict([("invoke", i.as_str().into())])).unwrap_or_default();
    for _ in 0..p.callees.max(1) {
        let mut callee = Session::open_as(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm, &ctx.service()).await?;
        callee.register_with(&procedure, options.clone()).await?;
        let Session { tx: ctx_tx, rx: mut crx, .. } = callee;
        let callee_error = callee_error.clone();
        callee_tasks.push(tokio::spawn(async move {
            let note = |e: String| {
                callee_error.lock().unwrap().get_or_insert(e);
            };
            loop {
                match crx.next().await {
                    Ok(Some(frame)) => match Message::decode(ser, &frame) {
                        Ok(Message::Invocation { request, payload, .. }) => {
                            if ctx_tx.send(&Message::Yield { request, options: Dict::new(), payload }).is_err() {
                                return note("callee connection closed".into());
                            }
                        }
                        Ok(other) => note(format!("callee received {}", describe_error(&other))),
                        Err(e) => note(format!("callee cannot decode: {e}")),
                    },
                    Ok(None) | Err(_) => return note("the router closed the callee's connection".into()),
                }
            }
        }));
    }

    // Callers: connect all, then start together.
    let barrier = Arc::new(Barrier::new(p.callers + 1));
    let args = padding_args(ctx.serializer, p.payload);
    let mut callers = JoinSet::new();
    let duration = ctx.duration;
    for i in 0..p.callers {
        let (target, opts, realm, procedure, barrier, args, who) =
            (ctx.target.clone(), ctx.opts(None, 16 * 1024), ctx.realm.clone(), procedure.clone(), barrier.clone(), args.clone(), ctx.user(i));
        callers.spawn(async move {
            let s = Session::open_as(&target, &opts, &realm, &who).await;
            barrier.wait().await;
            let mut s = s?;
            let mut r = CallerResult { rtt: Samples::default(), calls: 0, errors: 0, first_error: None };
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                let request = s.request();
                let t0 = Instant::now();
                s.tx.send(&Message::Call { request, options: Dict::new(), procedure: procedure.clone(), payload: args.clone() })?;
                loop {
                    let frame = s.rx.next().await.map_err(|e| e.to_string())?.ok_or("the router closed a caller's connection")?;
                    match peek_type(ser, &frame) {
                        Some(code::RESULT) => {
                            r.rtt.push(t0.elapsed().as_nanos() as u64);
                            r.calls += 1;
                            break;
                        }
                        _ => {
                            let m = Message::decode(ser, &frame).map_err(|e| e.to_string())?;
                            match &m {
                                Message::Error { request: q, .. } if *q == request => {
                                    r.errors += 1;
                                    r.first_error.get_or_insert_with(|| describe_error(&m));
                                    break;
                                }
                                _ => {
                                    r.first_error.get_or_insert_with(|| format!("caller received {}", describe_error(&m)));
                                }
                            }
                        }
                    }
                }
            }
            Ok::<CallerResult, String>(r)
        });
    }
    barrier.wait().await;
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    let mut rtt = Samples::default();
    let (mut calls, mut errors) = (0u64, 0u64);
    while let Some(res) = callers.join_next().await {
        match res.map_err(|e| e.to_string())? {
            Ok(mut r) => {
                rtt.append(&mut r.rtt);
                calls += r.calls;
                errors += r.errors;
                if let Some(e) = r.first_error {
                    if run.errors.len() < 10 {
                        run.errors.push(e);
                    }
                }
            }
            Err(e) => run.errors.push(e),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish(0.0);
    for t in &callee_tasks {
        t.abort();
    }
    if let Some(e) = callee_error.lock().unwrap().take() {
        run.errors.push(e);
    }

    let s = rtt.summary();
    run.fig("calls", calls);
    run.fig("call_errors", errors);
    run.fig("elapsed_s", round(elapsed, 3));
    let per_s = calls as f64 / elapsed;
    run.fig("calls_per_s", round(per_s, 1));
    for (k, v) in s.to_json("rtt_") {
        run.figures.insert(k, v);
    }
    let per_cpu = cpu.per_router_cpu_s(calls);
    run.fig("calls_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    run.headline = format!(
        "{} calls/s, {} calls per router CPU-second, round trip {}",
        thousands(per_s),
        per_cpu.map(thousands).unwrap_or_else(|| "?".into()),
        s.human()
    );
    run.cpu = Some(cpu);
    if calls == 0 {
        run.failed = Some("no call completed".into());
    } else if errors > 0 {
        run.failed = Some(format!("{errors} calls failed"));
    }
    Ok(())
}
