//! The flood workload: N sessions publish events to one topic as fast as the router
//! answers (63 unacknowledged, then one acknowledged, in a loop), for `--duration` — the noisy tenant beside a quiet realm's
//! `latency` run (`bench/tenants.sh`). A router holding the realm to
//! `publications_per_second` drops what is over the rate; the figure is what was sent.

use std::time::Instant;

use switchyard::wamp::{Dict, Message};
use tokio::task::JoinSet;

use crate::report::{round, thousands, Run};
use crate::session::{padding_args, Session};
use crate::Ctx;

pub struct Params {
    pub sessions: usize,
    pub payload: usize,
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("flood");
    run.param("sessions", p.sessions);
    run.param("payload_bytes", p.payload);
    run.param("duration_s", ctx.duration.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let topic = ctx.uri("flood");
    let args = padding_args(ctx.serializer, p.payload);
    let start = Instant::now();
    let deadline = start + ctx.duration;
    let mut floods = JoinSet::new();
    for _ in 0..p.sessions.max(1) {
        let s = Session::open(&ctx.target, &ctx.opts(None, 16 * 1024), &ctx.realm).await?;
        let (topic, args) = (topic.clone(), args.clone());
        floods.spawn(async move {
            let Session { tx, mut rx, .. } = s;
            let ser = tx.serializer;
            let ack = switchyard::wamp::dict([("acknowledge", true.into())]);
            let (mut sent, mut request) = (0u64, 0u64);
            while Instant::now() < deadline {
                // 63 unacknowledged, then one acknowledged whose answer (PUBLISHED, or
                // ERROR when over the rate) bounds what waits in our queue.
                for i in 0..64 {
                    request += 1;
                    let options = if i == 63 { ack.clone() } else { Dict::new() };
                    tx.send(&Message::Publish { request, options, topic: topic.clone(), payload: args.clone() })?;
                    sent += 1;
                }
                loop {
                    let frame = rx.next().await.map_err(|e| e.to_string())?.ok_or("the router closed a flooding connection")?;
                    match Message::decode(ser, &frame).map_err(|e| e.to_string())? {
                        Message::Published { request: r, .. } | Message::Error { request: r, .. } if r == request => break,
                        _ => {}
                    }
                }
            }
            Ok::<u64, String>(sent)
        });
    }
    let mut sent = 0;
    while let Some(r) = floods.join_next().await {
        sent += r.map_err(|e| e.to_string())??;
    }
    let per_s = sent as f64 / start.elapsed().as_secs_f64();
    run.fig("publications_sent", sent);
    run.fig("publications_sent_per_s", round(per_s, 1));
    run.headline = format!("{} publications/s sent by {} sessions", thousands(per_s), p.sessions);
    Ok(())
}
