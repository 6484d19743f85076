//! The revocation workload: how long a permission withdrawn in PostgreSQL takes to end
//! the subscriptions that depended on it, under load, and whether any event slips
//! through after the end.
//!
//! The graph (ids under `rv_`, written by the generator as the platform would): `G =
//! users / group` projects `rv_p<k>`, each owning `per_user` containers `rv_c<k>_<j>`
//! and shared at read with role `rv_r<k>`. User `rv_u<i>` belongs to group `k = i mod G`
//! and reaches its project either as a member of the role (grant user → role) or by a
//! direct share (grant user → project), alternately by `i / G`. Every user joins with
//! its own API token (WAMP-Ticket, `subscription_revocation` announced) and subscribes
//! to `containers.<id>.logs` of its group's `per_user` containers: `users × per_user`
//! live subscriptions, each decided by the graph.
//!
//! Load: the controller (`--service`) publishes at `rate` per second with
//! acknowledgement, round robin over every container's topic, each publication
//! carrying its number. After `warmup`, `changes` users lose their path, one committed
//! transaction each (`delete from grants where tail_id = … and head_id = …`), one every
//! `spacing`; each such change ends that user's `per_user` subscriptions.
//!
//! Figures, per revoked subscription: COMMIT returned → `[UNSUBSCRIBED, 0, {subscription,
//! reason}]` received (p50/p99/max), and the events it still got: received after the
//! UNSUBSCRIBED at all, whose PUBLISHED reached the controller after the UNSUBSCRIBED
//! reached the subscriber, and (the strict form) whose PUBLISH was sent after it. Also
//! revocations missing or not expected, events lost on subscriptions that were never
//! revoked, the router's CPU during the changes and its counters (`/metrics`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard::wamp::{dict, Args, Message, Payload, Value};
use tokio::task::JoinSet;

use crate::graphdb::{self, Metrics};
use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::{describe_error, Identity, Session};
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    pub database_url: String,
    pub users: usize,
    pub per_user: usize,
    pub group: usize,
    pub rate: u64,
    pub changes: usize,
    pub spacing: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
}

/// Sessions joining and subscribing at once during setup.
const SETUP_CONCURRENCY: usize = 50;
/// Publishing goes on this long after the last expected revocation arrived, so that
/// events that would slip through have the time to.
const TAIL: Duration = Duration::from_secs(1);

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("revoke");
    run.param("users", p.users);
    run.param("subscriptions_per_user", p.per_user);
    run.param("users_per_group", p.group);
    run.param("rate", p.rate);
    run.param("changes", p.changes);
    run.param("spacing_ms", p.spacing.as_millis() as u64);
    run.param("warmup_s", p.warmup.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

fn user_id(i: usize) -> String {
    format!("rv_u{i}")
}

fn container_id(k: usize, j: usize) -> String {
    format!("rv_c{k}_{j}")
}

/// The graph's shape, and the grant each change deletes.
struct Shape {
    groups: usize,
    per_user: usize,
    users: usize,
}

impl Shape {
    fn group_of(&self, user: usize) -> usize {
        user % self.groups
    }

    /// The head of the user's one grant: its group's role or project.
    fn path_of(&self, user: usize) -> String {
        let k = self.group_of(user);
        if (user / self.groups).is_multiple_of(2) {
            format!("rv_r{k}")
        } else {
            format!("rv_p{k}")
        }
    }

    /// Container index (into the publisher's round robin) of the user's `j`th topic.
    fn container(&self, user: usize, j: usize) -> usize {
        self.group_of(user) * self.per_user + j
    }

    fn containers(&self) -> usize {
        self.groups * self.per_user
    }

    fn topic(&self, c: usize) -> String {
        format!("containers.{}.logs", container_id(c / self.per_user, c % self.per_user))
    }

    /// The users that lose their path, spread over the groups and both kinds of path.
    fn revoked(&self, changes: usize) -> Vec<usize> {
        (0..changes).map(|c| c * self.users / changes).collect()
    }
}

async fn build_graph(pool: &sqlx::PgPool, s: &Shape) -> Result<Vec<String>, String> {
    graphdb::clear(pool, "rv_").await?;
    let projects: Vec<String> = (0..s.groups).map(|k| format!("rv_p{k}")).collect();
    let roles: Vec<String> = (0..s.groups).map(|k| format!("rv_r{k}")).collect();
    let users: Vec<String> = (0..s.users).map(user_id).collect();
    graphdb::principals(pool, "project", &projects).await?;
    graphdb::principals(pool, "role", &roles).await?;
    graphdb::principals(pool, "user", &users).await?;
    let containers: Vec<(String, String)> =
        (0..s.groups).flat_map(|k| (0..s.per_user).map(move |j| (container_id(k, j), format!("rv_p{k}")))).collect();
    graphdb::objects(pool, "container", &containers).await?;
    let mut grants: Vec<(String, String, i16)> = (0..s.groups).map(|k| (roles[k].clone(), projects[k].clone(), 1)).collect();
    grants.extend((0..s.users).map(|i| (users[i].clone(), s.path_of(i), 1)));
    graphdb::grants(pool, &grants).await?;
    graphdb::tokens(pool, &users).await
}

/// What one subscriber session saw.
#[derive(Default)]
struct Seen {
    /// (subscription, publication number, received at ns).
    events: Vec<(u64, u64, u64)>,
    /// subscription → UNSUBSCRIBED received at ns.
    revoked: HashMap<u64, u64>,
    errors: Vec<String>,
    closed: bool,
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    if p.changes > p.users {
        return Err(format!("--changes {} exceeds --users {}: each change revokes a different user", p.changes, p.users));
    }
    let service = ctx.service();
    if matches!(service, Identity::Anonymous) {
        return Err("revoke needs --service AUTHID:TICKET: the controller that publishes the logs".into());
    }
    let shape = Shape { groups: p.users.div_ceil(p.group.max(1)), per_user: p.per_user.max(1), users: p.users };
    let http = graphdb::http_addr(&ctx.url).await?;
    let pool = graphdb::connect(&p.database_url).await?;

    let t = Instant::now();
    let tokens = build_graph(&pool, &shape).await?;
    graphdb::wait_applied(http, graphdb::last_seq(&pool).await?, Duration::from_secs(120)).await?;
    run.fig("graph_setup_s", round(t.elapsed().as_secs_f64(), 2));

    // Subscribers: every user, each on its group's containers.
    let base = Instant::now();
    let ns = move || base.elapsed().as_nanos() as u64;
    let t = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    let mut setup = JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let topics: Vec<(usize, String)> = (0..shape.per_user).map(|j| shape.container(i, j)).map(|c| (c, shape.topic(c))).collect();
        let (target, opts, realm, gate, who) = (ctx.target.clone(), ctx.opts(None, 16 * 1024), ctx.realm.clone(), gate.clone(), Identity::token(token));
        setup.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut s = Session::open_as(&target, &opts, &realm, &who).await.map_err(|e| format!("user {i}: {e}"))?;
            let mut subs = HashMap::new();
            for (c, topic) in topics {
                subs.insert(s.subscribe(&topic).await.map_err(|e| format!("user {i}: {e}"))?, c);
            }
            Ok::<_, String>((i, s, subs))
        });
    }
    let mut sessions: Vec<Option<(Session, HashMap<u64, usize>)>> = (0..p.users).map(|_| None).collect();
    while let Some(r) = setup.join_next().await {
        let (i, s, subs) = r.map_err(|e| e.to_string())??;
        sessions[i] = Some((s, subs));
    }
    run.fig("subscribe_setup_s", round(t.elapsed().as_secs_f64(), 2));

    let mut readers = JoinSet::new();
    let mut keep = Vec::new();
    let mut seen: Vec<Arc<Mutex<Seen>>> = Vec::new();
    let mut subs_of: Vec<HashMap<u64, usize>> = Vec::new();
    let unsubscribed = Arc::new(AtomicU64::new(0));
    let ser = ctx.serializer;
    for (s, subs) in sessions.into_iter().flatten() {
        let Session { tx, mut rx, .. } = s;
        keep.push(tx);
        subs_of.push(subs);
        let mine = Arc::new(Mutex::new(Seen::default()));
        seen.push(mine.clone());
        let unsubscribed = unsubscribed.clone();
        readers.spawn(async move {
            loop {
                let frame = match rx.next().await {
                    Ok(Some(f)) => f,
                    Ok(None) | Err(_) => {
                        mine.lock().unwrap().closed = true;
                        return;
                    }
                };
                let at = ns();
                match Message::decode(ser, &frame) {
                    Ok(Message::Event { subscription, payload, .. }) => {
                        let n = payload.args.as_ref().and_then(|a| a.to_value().ok()).and_then(|v| v.as_list().and_then(|l| l.first().and_then(Value::as_u64)));
                        let mut m = mine.lock().unwrap();
                        match n {
                            Some(n) => m.events.push((subscription, n, at)),
                            None => m.errors.push("an EVENT without its publication number".into()),
                        }
                    }
                    Ok(Message::Unsubscribed { request: 0, details: Some(d) }) => {
                        let sub = d.get("subscription").and_then(Value::as_u64);
                        let reason = d.get("reason").and_then(Value::as_str).unwrap_or_default().to_owned();
                        let mut m = mine.lock().unwrap();
                        match sub {
                            Some(sub) => {
                                m.revoked.insert(sub, at);
                                unsubscribed.fetch_add(1, Ordering::Relaxed);
                            }
                            None => m.errors.push("UNSUBSCRIBED 0 without its subscription".into()),
                        }
                        if reason != "wamp.error.not_authorized" {
                            m.errors.push(format!("revoked with reason {reason:?}"));
                        }
                    }
                    Ok(other) => mine.lock().unwrap().errors.push(format!("subscriber received {}", describe_error(&other))),
                    Err(e) => mine.lock().unwrap().errors.push(format!("subscriber cannot decode: {e}")),
                }
            }
        });
    }
    if seen.len() != p.users {
        return Err(format!("{} of {} users subscribed", seen.len(), p.users));
    }

    // The controller and its acknowledgements (publication n: PUBLISH request n).
    let publisher = Session::open_as(&ctx.target, &ctx.opts(None, 64 * 1024), &ctx.realm, &service).await?;
    let Session { tx: ptx, rx: mut prx, .. } = publisher;
    let capacity = (p.rate as f64 * (p.warmup + p.spacing * p.changes as u32 + p.timeout + TAIL * 2).as_secs_f64()) as usize + 1024;
    let acked_at: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; capacity + 1]));
    let publish_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    {
        let (acked_at, publish_errors, acked) = (acked_at.clone(), publish_errors.clone(), acked.clone());
        readers.spawn(async move {
            loop {
                let frame = match prx.next().await {
                    Ok(Some(f)) => f,
                    Ok(None) | Err(_) => {
                        publish_errors.lock().unwrap().push("the router closed the controller's connection".into());
                        return;
                    }
                };
                let at = ns();
                match Message::decode(ser, &frame) {
                    Ok(Message::Published { request, .. }) => {
                        if let Some(slot) = acked_at.lock().unwrap().get_mut(request as usize) {
                            *slot = at;
                        }
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(other) => publish_errors.lock().unwrap().push(format!("controller received {}", describe_error(&other))),
                    Err(e) => publish_errors.lock().unwrap().push(format!("controller cannot decode: {e}")),
                }
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let containers = shape.containers();
    let topics: Vec<String> = (0..containers).map(|c| shape.topic(c)).collect();
    let publish_start = Instant::now();
    let publishing = {
        let (stop, rate) = (stop.clone(), p.rate.max(1));
        tokio::spawn(async move {
            let mut sent_at: Vec<u64> = vec![0];
            let options = dict([("acknowledge", true.into())]);
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) && (n as usize) < capacity {
                tick.tick().await;
                let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(capacity as u64);
                while n < due {
                    n += 1;
                    let topic = topics[(n as usize - 1) % topics.len()].clone();
                    let payload = Args { args: Some(Payload::from_value(ser, &Value::List(vec![Value::UInt(n)]))), kwargs: None };
                    sent_at.push(ns());
                    if ptx.send(&Message::Publish { request: n, options: options.clone(), topic, payload }).is_err() {
                        return (sent_at, ptx);
                    }
                }
            }
            (sent_at, ptx)
        })
    };

    // Warm-up, then the changes, one committed transaction each.
    tokio::time::sleep(p.warmup).await;
    let before = Metrics::scrape(http).await?;
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let changes_start = Instant::now();
    let revoked_users = shape.revoked(p.changes);
    let mut committed_at = Vec::with_capacity(p.changes);
    let mut commit_time = Samples::default();
    for (c, &user) in revoked_users.iter().enumerate() {
        tokio::time::sleep_until(tokio::time::Instant::from_std(changes_start + p.spacing * c as u32)).await;
        let began = Instant::now();
        let mut tx = pool.begin().await.map_err(|e| format!("begin: {e}"))?;
        let deleted = sqlx::query("delete from grants where tail_id = $1 and head_id = $2")
            .bind(user_id(user))
            .bind(shape.path_of(user))
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("delete: {e}"))?
            .rows_affected();
        tx.commit().await.map_err(|e| format!("commit: {e}"))?;
        committed_at.push(ns());
        commit_time.push(began.elapsed().as_nanos() as u64);
        if deleted != 1 {
            return Err(format!("change {c}: deleted {deleted} grants of {}, expected 1", user_id(user)));
        }
    }
    let changes_s = changes_start.elapsed().as_secs_f64();
    let expected = (p.changes * shape.per_user) as u64;
    let wait_start = Instant::now();
    while unsubscribed.load(Ordering::Relaxed) < expected && wait_start.elapsed() < p.timeout {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(TAIL).await;
    stop.store(true, Ordering::Relaxed);
    let (sent_at, ptx) = publishing.await.map_err(|e| e.to_string())?;
    let publish_s = publish_start.elapsed().as_secs_f64();
    let sent = sent_at.len() as u64 - 1;
    crate::session::wait_for_drain(|| acked.load(Ordering::Relaxed), |&a| a >= sent, ctx.drain).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = cpu.finish(0.0);
    let after = Metrics::scrape(http).await?;
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    drop((keep, ptx));

    // Which subscription each change should end.
    let mut change_of: HashMap<usize, usize> = HashMap::new();
    for (c, &u) in revoked_users.iter().enumerate() {
        change_of.insert(u, c);
    }
    let acked_at = acked_at.lock().unwrap().clone();
    let mut acked_per_container = vec![0u64; containers];
    for n in 1..=sent as usize {
        if acked_at.get(n).is_some_and(|&t| t > 0) {
            acked_per_container[(n - 1) % containers] += 1;
        }
    }
    let mut latency = Samples::default();
    let mut early = 0u64; // UNSUBSCRIBED before our COMMIT returned
    let (mut missing, mut unexpected) = (0u64, 0u64);
    let (mut after_unsub, mut acked_after, mut sent_after) = (0u64, 0u64, 0u64);
    let mut lost_on_kept = 0i64;
    let mut errors: Vec<String> = Vec::new();
    let mut closed = 0;
    for (i, seen) in seen.iter().enumerate() {
        let seen = seen.lock().unwrap();
        closed += usize::from(seen.closed);
        errors.extend(seen.errors.iter().take(3).cloned());
        let mut per_sub: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
        for &(sub, n, at) in &seen.events {
            per_sub.entry(sub).or_default().push((n, at));
        }
        for (&sub, &container) in &subs_of[i] {
            let events = per_sub.remove(&sub).unwrap_or_default();
            let revoked = seen.revoked.get(&sub).copied();
            match (change_of.get(&i), revoked) {
                (Some(&c), Some(at)) => {
                    let commit = committed_at[c];
                    if at < commit {
                        early += 1;
                    }
                    latency.push(at.saturating_sub(commit));
                    for &(n, got) in &events {
                        after_unsub += u64::from(got > at);
                        acked_after += u64::from(acked_at.get(n as usize).is_some_and(|&a| a > at));
                        sent_after += u64::from(sent_at.get(n as usize).is_some_and(|&s| s > at));
                    }
                }
                (Some(_), None) => missing += 1,
                (None, Some(_)) => unexpected += 1,
                (None, None) => lost_on_kept += acked_per_container[container] as i64 - events.len() as i64,
            }
        }
        if !per_sub.is_empty() {
            errors.push(format!("user {i} got events on {} subscriptions it does not hold", per_sub.len()));
        }
    }

    let s = latency.summary();
    run.fig("subscriptions", (p.users * shape.per_user) as u64);
    run.fig("topics", containers as u64);
    run.fig("publications", sent);
    run.fig("publications_acked", acked.load(Ordering::Relaxed));
    run.fig("publish_rate_achieved", round(sent as f64 / publish_s, 1));
    run.fig("changes_window_s", round(changes_s, 3));
    let cs = commit_time.summary();
    run.fig("commit_p50_us", round(cs.p50 as f64 / 1e3, 1));
    run.fig("commit_max_us", round(cs.max as f64 / 1e3, 1));
    run.fig("revocations_expected", expected);
    for (k, v) in s.to_json("revoke_") {
        run.figures.insert(k, v);
    }
    run.fig("revoke_p50_ms", round(s.p50 as f64 / 1e6, 2));
    run.fig("revoke_p99_ms", round(s.p99 as f64 / 1e6, 2));
    run.fig("revoke_max_ms", round(s.max as f64 / 1e6, 2));
    run.fig("revocations_before_commit_returned", early);
    run.fig("revocations_missing", missing);
    run.fig("revocations_unexpected", unexpected);
    run.fig("events_after_unsubscribed", after_unsub);
    run.fig("events_acked_after_unsubscribed", acked_after);
    run.fig("events_sent_after_unsubscribed", sent_after);
    run.fig("events_lost_on_kept_subscriptions", lost_on_kept);
    for m in ["subscriptions_revoked", "events_filtered", "events_held", "authorization_waits", "events_delivered"] {
        run.fig(&format!("router_{m}"), after.get(m) - before.get(m));
    }
    run.headline = format!(
        "COMMIT → UNSUBSCRIBED p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} revocations ({missing} missing, {unexpected} unexpected); \
         events after UNSUBSCRIBED {after_unsub}, acknowledged after it {acked_after}; {} publications/s",
        s.p50 as f64 / 1e6,
        s.p99 as f64 / 1e6,
        s.max as f64 / 1e6,
        s.count,
        thousands(sent as f64 / publish_s),
    );
    run.cpu = Some(cpu);
    errors.extend(publish_errors.lock().unwrap().iter().take(3).cloned());
    if closed > 0 {
        errors.push(format!("{closed} subscriber connections closed by the router"));
    }
    errors.truncate(10);
    run.errors.extend(errors);
    if missing > 0 || unexpected > 0 {
        run.failed = Some(format!("{missing} revocations missing, {unexpected} unexpected"));
    } else if after_unsub > 0 || acked_after > 0 {
        run.failed = Some(format!("{after_unsub} events after UNSUBSCRIBED, {acked_after} acknowledged after it"));
    } else if lost_on_kept != 0 {
        run.failed = Some(format!("{lost_on_kept} events lost on subscriptions that were never revoked"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_revoke_distinct_users_by_both_kinds_of_path() {
        let shape = Shape { groups: 200, per_user: 5, users: 1000 };
        let users = shape.revoked(200);
        let distinct: std::collections::HashSet<_> = users.iter().collect();
        assert_eq!(distinct.len(), 200);
        assert!(users.iter().any(|&u| shape.path_of(u).starts_with("rv_r")));
        assert!(users.iter().any(|&u| shape.path_of(u).starts_with("rv_p")));
        // Five users per group, each group's containers distinct.
        assert_eq!(shape.container(7, 4), 7 * 5 + 4);
        assert_eq!(shape.container(207, 4), shape.container(7, 4));
        assert_eq!(shape.topic(7 * 5 + 4), "containers.rv_c7_4.logs");
    }
}
