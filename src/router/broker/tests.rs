//! The broker's guarantees, on sessions without connections: SUBSCRIBED first, live
//! events exactly those after the attach point, history then live with no gap and no
//! duplicate, lagging subscribers caught up in order, gaps told, guards applied.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::replay::{Limits, Position, Retention, Rule};
use crate::router::handle::testing::{drain, handle, handle_with, take};
use crate::wamp::{Args, Payload};

fn store(max_events: usize) -> Arc<Store> {
    let limits = Limits { max_events, max_age: None, max_bytes: None, durable: false };
    Arc::new(Store::new(Retention::new(vec![Rule { uri: "".into(), policy: MatchPolicy::Prefix, limits }], 64 << 20)))
}

fn broker(max_events: usize) -> (Broker, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (Broker::new(metrics.clone(), store(max_events)), metrics)
}

fn publish(broker: &Broker, publisher: &SessionHandle, topic: &str) -> u64 {
    publish_n(broker, publisher, topic, 0, false)
}

/// Publishes `n` as the only argument.
fn publish_n(broker: &Broker, publisher: &SessionHandle, topic: &str, n: u64, retain: bool) -> u64 {
    let recipients = Recipients::from_options(publisher.id, &Dict::new()).unwrap();
    let payload = Args { args: Some(Payload::from_value(Serializer::Json, &Value::List(vec![Value::UInt(n)]))), kwargs: None };
    broker.publish(Publication { publisher: Some(publisher), topic, recipients, disclose: false, payload, retain, ppt: None, slot: None }).publication
}

fn subscribe(broker: &Broker, s: &Arc<SessionHandle>, uri: &str, policy: MatchPolicy, start: Start) -> Arc<Subscription> {
    subscribe_guarded(broker, s, uri, policy, start, None)
}

fn subscribe_guarded(broker: &Broker, s: &Arc<SessionHandle>, uri: &str, policy: MatchPolicy, start: Start, guard: Option<Arc<dyn Guard>>) -> Arc<Subscription> {
    let ids = IdSequence::new();
    let a = Attach { session: s, uri, policy, guard, start };
    broker.subscribe(a, &ids, |id| s.outbox.push(Message::Subscribed { request: 7, subscription: id }.encode(Serializer::Json).unwrap()).unwrap()).sub
}

fn replay(from: ReplayFrom) -> Start {
    Start { replay: Some(from), retained: false }
}

/// An EVENT as the tests look at it.
#[derive(Debug, PartialEq)]
struct Seen {
    topic: Option<String>,
    pos: u64,
    arg: u64,
    replayed: bool,
    gap: Option<u64>,
    dropped: Option<u64>,
}

fn seen(m: &Message) -> Seen {
    let Message::Event { details, payload, .. } = m else { panic!("not an EVENT: {m:?}") };
    let args = payload.args.as_ref().map(|p| p.to_value().unwrap());
    let arg = match args {
        Some(Value::List(l)) => l[0].as_u64().unwrap(),
        other => panic!("{other:?}"),
    };
    Seen {
        topic: details.get("topic").and_then(Value::as_str).map(str::to_owned),
        pos: details["_pos"].as_u64().unwrap(),
        arg,
        replayed: details.get("_replayed") == Some(&Value::Bool(true)),
        gap: details.get("_gap").and_then(Value::as_u64),
        dropped: details.get("_dropped").and_then(Value::as_u64),
    }
}

/// Everything after SUBSCRIBED, as `Seen`.
fn events(got: &[Message]) -> Vec<Seen> {
    assert!(matches!(got.first(), Some(Message::Subscribed { .. })), "SUBSCRIBED first: {got:?}");
    got[1..].iter().map(seen).collect()
}

/// A publisher writing `topic` from another thread until told to stop (and 100 more
/// after that, so some events are surely live); returns how many it published.
fn publishing(broker: Arc<Broker>, topic: &'static str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let publisher = handle(99);
        let mut n = 0;
        let mut after_stop = 0;
        while after_stop < 100 {
            if stop.load(Ordering::Relaxed) {
                after_stop += 1;
            }
            n += 1;
            publish_n(&broker, &publisher, topic, n, false);
            if n % 50 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        n
    })
}

#[tokio::test]
async fn every_event_of_a_stored_topic_carries_its_position() {
    let (broker, _) = broker(10);
    let (publisher, s) = (handle(1), handle(2));
    subscribe(&broker, &s, "a.b", MatchPolicy::Exact, Start::default());
    subscribe(&broker, &s, "a.", MatchPolicy::Prefix, Start::default());
    publish_n(&broker, &publisher, "a.b", 1, false);
    publish_n(&broker, &publisher, "a.c", 2, false);
    publish_n(&broker, &publisher, "a.b", 3, false);
    let got = drain(&s).await;
    let ev: Vec<_> = got.iter().filter(|m| matches!(m, Message::Event { .. })).map(seen).map(|e| (e.topic, e.pos, e.arg)).collect();
    let t = |s: &str| Some(s.to_owned());
    assert_eq!(ev, vec![(None, 1, 1), (t("a.b"), 1, 1), (t("a.c"), 1, 2), (None, 2, 3), (t("a.b"), 2, 3)]);
}

/// Live events are exactly those after the attach point, and the history up to it is
/// what `get_events` returns: together, every event once, in order, while a publisher
/// writes concurrently.
#[tokio::test]
async fn history_up_to_the_attach_point_and_live_after_it_make_every_event_once() {
    let (broker, _) = broker(100_000);
    let broker = Arc::new(broker);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = publishing(broker.clone(), "t", stop.clone());
    while broker.store().last_seq().0 < 100 {
        tokio::task::yield_now().await;
    }
    let s = handle_with(2, 1 << 20);
    let sub = subscribe(&broker, &s, "t", MatchPolicy::Exact, Start::default());
    stop.store(true, Ordering::Relaxed);
    let total = writer.join().unwrap();
    let history = broker.history(s.id, sub.id, &HistoryQuery::default()).unwrap();
    let live = events(&drain(&s).await);
    let mut all: Vec<u64> = history.events.iter().map(|e| e.pos.0).collect();
    assert!(!all.is_empty() && !live.is_empty(), "history {} live {}", all.len(), live.len());
    all.extend(live.iter().map(|e| e.pos));
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
}

/// `_replay {"last": N}` while a publisher writes: SUBSCRIBED, the last N as history
/// (`_replayed`), then live, no gap, no duplicate; the same for a pattern.
#[tokio::test]
async fn replay_last_n_then_live_with_no_gap_and_no_duplicate() {
    for policy in [MatchPolicy::Exact, MatchPolicy::Prefix] {
        let (broker, metrics) = broker(100_000);
        let broker = Arc::new(broker);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = publishing(broker.clone(), "r.t", stop.clone());
        while broker.store().last_seq().0 < 300 {
            tokio::task::yield_now().await;
        }
        // An outbox of 64: history and the live events behind it go through catch-up.
        let s = handle_with(2, 64);
        let uri = if policy == MatchPolicy::Exact { "r.t" } else { "r." };
        subscribe(&broker, &s, uri, policy, replay(ReplayFrom::Last(100)));
        stop.store(true, Ordering::Relaxed);
        let total = writer.join().unwrap();
        let got = events(&drain(&s).await);
        let positions: Vec<u64> = got.iter().map(|e| e.pos).collect();
        let first = positions[0];
        assert_eq!(positions, (first..=total).collect::<Vec<_>>(), "{policy:?}");
        let replayed = got.iter().take_while(|e| e.replayed).count();
        assert_eq!(replayed, 100, "{policy:?}");
        assert!(got[100..].iter().all(|e| !e.replayed && e.gap.is_none()));
        assert_eq!(metrics.events_replayed.get(), 100);
    }
}

#[tokio::test]
async fn replay_after_a_position_resumes_and_a_position_no_longer_retained_is_a_gap() {
    let (broker, _) = broker(50);
    let p = handle(1);
    for n in 1..=80 {
        publish_n(&broker, &p, "x", n, false);
    }
    // Resume after 70: 71..80.
    let s = handle(2);
    subscribe(&broker, &s, "x", MatchPolicy::Exact, replay(ReplayFrom::AfterPos(Position(70))));
    let got = events(&drain(&s).await);
    assert_eq!(got.iter().map(|e| e.pos).collect::<Vec<_>>(), (71..=80).collect::<Vec<_>>());
    assert_eq!(got[0].gap, None);
    // Resume after 10: 11..30 were evicted (the store keeps 31..80).
    let s = handle(3);
    subscribe(&broker, &s, "x", MatchPolicy::Exact, replay(ReplayFrom::AfterPos(Position(10))));
    let got = events(&drain(&s).await);
    assert_eq!(got.iter().map(|e| e.pos).collect::<Vec<_>>(), (31..=80).collect::<Vec<_>>());
    assert_eq!(got[0].gap, Some(20));
    assert!(got[1..].iter().all(|e| e.gap.is_none()));
    // Last 60 of a topic that keeps 50: 10 no longer retained.
    let s = handle(4);
    subscribe(&broker, &s, "x", MatchPolicy::Exact, replay(ReplayFrom::Last(60)));
    let got = events(&drain(&s).await);
    assert_eq!((got.len(), got[0].pos, got[0].gap), (50, 31, Some(10)));
    // After the newest: nothing yet, then live.
    let s = handle(5);
    subscribe(&broker, &s, "x", MatchPolicy::Exact, replay(ReplayFrom::AfterPos(Position(80))));
    publish_n(&broker, &p, "x", 81, false);
    let got = events(&drain(&s).await);
    assert_eq!(got, vec![Seen { topic: None, pos: 81, arg: 81, replayed: false, gap: None, dropped: None }]);
}

#[tokio::test]
async fn replay_after_a_publication_and_since_a_time() {
    let (broker, _) = broker(100);
    let p = handle(1);
    let mut ids = Vec::new();
    for n in 1..=10 {
        ids.push(publish_n(&broker, &p, if n % 2 == 0 { "m.even" } else { "m.odd" }, n, false));
    }
    let s = handle(2);
    subscribe(&broker, &s, "m.", MatchPolicy::Prefix, replay(ReplayFrom::AfterPublication(PublicationId(ids[5]))));
    let got = events(&drain(&s).await);
    assert_eq!(got.iter().map(|e| e.arg).collect::<Vec<_>>(), vec![7, 8, 9, 10], "merged across topics in publication order");
    assert_eq!(got[0].topic.as_deref(), Some("m.odd"));
    let s = handle(3);
    subscribe(&broker, &s, "m.", MatchPolicy::Prefix, replay(ReplayFrom::Since(SystemTime::now() + Duration::from_secs(60))));
    publish_n(&broker, &p, "m.odd", 11, false);
    assert_eq!(events(&drain(&s).await).iter().map(|e| e.arg).collect::<Vec<_>>(), vec![11]);
    let s = handle(4);
    subscribe(&broker, &s, "m.", MatchPolicy::Prefix, replay(ReplayFrom::Since(SystemTime::UNIX_EPOCH)));
    assert_eq!(events(&drain(&s).await).iter().map(|e| e.arg).collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());
}

/// A subscriber that stops reading is not dropped from: it lags, and once it reads
/// again it gets every event in order, then live ones.
#[tokio::test]
async fn a_lagging_subscriber_is_caught_up_in_order() {
    let (broker, metrics) = broker(10_000);
    let (p, slow) = (handle(1), handle_with(2, 16));
    subscribe(&broker, &slow, "l", MatchPolicy::Exact, Start::default());
    for n in 1..=1000 {
        publish_n(&broker, &p, "l", n, false);
    }
    assert_eq!(metrics.subscribers_lagged.get(), 1);
    let first = take(&slow, 40).await;
    for n in 1001..=1100 {
        publish_n(&broker, &p, "l", n, false);
    }
    let mut got = events(&first);
    got.extend(drain(&slow).await.iter().map(seen));
    assert_eq!(got.iter().map(|e| e.pos).collect::<Vec<_>>(), (1..=1100).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.gap.is_none() && e.dropped.is_none() && !e.replayed));
    assert_eq!(metrics.events_dropped_full.get(), 0);
    assert_eq!(metrics.events_caught_up.get(), 1100 - 15);
    // Live again: the next event goes straight to the outbox.
    publish_n(&broker, &p, "l", 1101, false);
    assert_eq!(slow.outbox.len(), 1);
    assert!(!slow.outbox.is_lagging());
}

#[tokio::test]
async fn what_the_store_evicted_before_a_lagging_subscriber_got_it_is_told_as_a_gap() {
    let (broker, metrics) = broker(100);
    let (p, slow) = (handle(1), handle_with(2, 16));
    subscribe(&broker, &slow, "g", MatchPolicy::Exact, Start::default());
    for n in 1..=1000 {
        publish_n(&broker, &p, "g", n, false);
    }
    let got = events(&drain(&slow).await);
    // 15 fit beside SUBSCRIBED; 16..900 were evicted; 901..1000 are caught up.
    assert_eq!(got.len(), 15 + 100);
    assert_eq!(got[14].pos, 15);
    assert_eq!((got[15].pos, got[15].gap), (901, Some(885)));
    assert_eq!(got.last().map(|e| e.pos), Some(1000));
    assert_eq!(metrics.events_gap.get(), 885);
}

#[tokio::test]
async fn a_topic_without_a_store_still_drops_and_says_so() {
    let metrics = Arc::new(Metrics::new());
    let broker = Broker::new(metrics.clone(), Arc::new(Store::new(Retention::none())));
    let (p, slow) = (handle(1), handle_with(2, 4));
    subscribe(&broker, &slow, "d", MatchPolicy::Exact, Start::default());
    for _ in 0..10 {
        publish(&broker, &p, "d");
    }
    let got = drain(&slow).await;
    assert_eq!(got.len(), 4);
    assert_eq!(metrics.events_dropped_full.get(), 7);
    publish(&broker, &p, "d");
    let Message::Event { details, .. } = &drain(&slow).await[0] else { panic!() };
    assert_eq!(details.get("_dropped"), Some(&Value::UInt(7)));
    assert_eq!(details.get("_pos"), None);
}

#[tokio::test]
async fn get_events_applies_the_spec_filters_to_the_callers_history() {
    let (broker, _) = broker(100);
    let p = handle(1);
    let mut ids = Vec::new();
    for n in 1..=10 {
        ids.push(publish_n(&broker, &p, "h", n, false));
    }
    let s = handle(2);
    let sub = subscribe(&broker, &s, "h", MatchPolicy::Exact, Start::default());
    publish_n(&broker, &p, "h", 11, false);
    let q = |q: HistoryQuery| broker.history(s.id, sub.id, &q).unwrap().events.iter().map(|e| e.pos.0).collect::<Vec<_>>();
    assert_eq!(q(HistoryQuery::default()), (1..=10).collect::<Vec<_>>(), "up to the attach point only");
    assert_eq!(q(HistoryQuery { limit: Some(3), ..Default::default() }), vec![8, 9, 10]);
    assert_eq!(q(HistoryQuery { limit: Some(3), reverse: true, ..Default::default() }), vec![10, 9, 8]);
    let after = Some(PublicationId(ids[3]));
    let before = Some(PublicationId(ids[6]));
    assert_eq!(q(HistoryQuery { after_publication: after, before_publication: before, ..Default::default() }), vec![5, 6]);
    let gone = broker.history(s.id, sub.id, &HistoryQuery { after_publication: Some(PublicationId(12345)), ..Default::default() }).unwrap();
    assert_eq!((gone.events.len(), gone.gap), (10, 0), "nothing evicted yet: nothing can be missing");
    let other = handle(3);
    assert_eq!(broker.history(other.id, sub.id, &HistoryQuery::default()).unwrap_err(), super::super::error::WampError::NoSuchSubscription(sub.id.0));
}

#[derive(Debug)]
struct Only(&'static str, Admit);
impl Guard for Only {
    fn admits(&self, topic: &str) -> Admit {
        if topic == self.0 { Admit::Yes } else { self.1 }
    }
}

#[tokio::test]
async fn a_guard_filters_or_holds_each_event_and_counts_it() {
    let (broker, metrics) = broker(10);
    let (publisher, filtered, held) = (handle(1), handle(2), handle(3));
    subscribe_guarded(&broker, &filtered, "c.", MatchPolicy::Prefix, Start::default(), Some(Arc::new(Only("c.mine", Admit::No))));
    subscribe_guarded(&broker, &held, "c.", MatchPolicy::Prefix, Start::default(), Some(Arc::new(Only("c.mine", Admit::Hold))));
    for topic in ["c.mine", "c.other", "c.mine", "c.other"] {
        publish(&broker, &publisher, topic);
    }
    for s in [&filtered, &held] {
        let topics: Vec<_> = events(&drain(s).await).into_iter().map(|e| e.topic).collect();
        assert_eq!(topics, vec![Some("c.mine".to_owned()), Some("c.mine".to_owned())]);
    }
    // The held subscriber lags from the first held event (a stored topic): its second
    // c.mine came from the store, and it waits for c.other to be decidable.
    assert_eq!((metrics.events_filtered.get(), metrics.events_held.get(), metrics.events_delivered.get()), (2, 1, 3));
    assert_eq!(metrics.events_caught_up.get(), 1);
    assert!(held.outbox.is_lagging());
}

/// A guard that cannot decide while `away` is set (the permission database is gone).
#[derive(Debug)]
struct Outage(Arc<AtomicBool>);
impl Guard for Outage {
    fn admits(&self, _topic: &str) -> Admit {
        if self.0.load(Ordering::Relaxed) { Admit::Hold } else { Admit::Yes }
    }
}

/// Events held while the permission cannot be decided are delivered, in order, once it
/// can; on a stored topic nothing is lost to an outage of the permission database.
#[tokio::test]
async fn events_held_during_an_outage_are_caught_up_when_it_ends() {
    let (broker, metrics) = broker(100);
    let away = Arc::new(AtomicBool::new(false));
    let (p, s) = (handle(1), handle(2));
    subscribe_guarded(&broker, &s, "o", MatchPolicy::Exact, Start::default(), Some(Arc::new(Outage(away.clone()))));
    publish_n(&broker, &p, "o", 1, false);
    away.store(true, Ordering::Relaxed);
    for n in 2..=5 {
        publish_n(&broker, &p, "o", n, false);
    }
    assert_eq!(events(&drain(&s).await).iter().map(|e| e.arg).collect::<Vec<_>>(), vec![1]);
    assert!(s.outbox.is_lagging());
    away.store(false, Ordering::Relaxed);
    // The writer's lag tick.
    s.outbox.refill();
    publish_n(&broker, &p, "o", 6, false);
    let got: Vec<_> = drain(&s).await.iter().map(seen).map(|e| (e.arg, e.pos)).collect();
    assert_eq!(got, (2..=6).map(|n| (n, n)).collect::<Vec<_>>());
    assert!(!s.outbox.is_lagging());
    assert_eq!(metrics.events_held.get(), 1);
}

/// History is authorized like live events: a pattern subscriber's history holds only
/// the objects its guard admits.
#[tokio::test]
async fn history_and_replay_are_filtered_by_the_guard() {
    let (broker, _) = broker(10);
    let p = handle(1);
    for (n, topic) in ["c.mine", "c.other", "c.mine"].into_iter().enumerate() {
        publish_n(&broker, &p, topic, n as u64, false);
    }
    let s = handle(2);
    let guard: Option<Arc<dyn Guard>> = Some(Arc::new(Only("c.mine", Admit::No)));
    let sub = subscribe_guarded(&broker, &s, "c.", MatchPolicy::Prefix, replay(ReplayFrom::Last(10)), guard);
    let got = events(&drain(&s).await);
    assert_eq!(got.iter().map(|e| e.arg).collect::<Vec<_>>(), vec![0, 2]);
    let h = broker.history(s.id, sub.id, &HistoryQuery::default()).unwrap();
    assert_eq!(h.events.iter().map(|e| &*e.topic).collect::<Vec<_>>(), vec!["c.mine", "c.mine"]);
}

#[tokio::test]
async fn a_retained_event_follows_subscribed_when_asked_for() {
    let (broker, _) = broker(10);
    let p = handle(1);
    publish_n(&broker, &p, "state", 1, true);
    publish_n(&broker, &p, "state", 2, false);
    let s = handle(2);
    subscribe(&broker, &s, "state", MatchPolicy::Exact, Start { replay: None, retained: true });
    let got = drain(&s).await;
    let Message::Event { details, payload, .. } = &got[1] else { panic!("{got:?}") };
    assert_eq!(details.get("retained"), Some(&Value::Bool(true)));
    assert_eq!(payload.args.as_ref().unwrap().to_value().unwrap(), Value::List(vec![Value::UInt(1)]));
    let quiet = handle(3);
    subscribe(&broker, &quiet, "state", MatchPolicy::Exact, Start::default());
    assert_eq!(drain(&quiet).await.len(), 1, "only SUBSCRIBED without get_retained");
}

#[tokio::test]
async fn a_publisher_excluded_from_its_own_event_does_not_get_it_from_history_either() {
    let (broker, _) = broker(10);
    let me = handle(1);
    publish_n(&broker, &me, "own", 1, false);
    subscribe(&broker, &me, "own", MatchPolicy::Exact, replay(ReplayFrom::Last(10)));
    assert_eq!(drain(&me).await.len(), 1, "SUBSCRIBED only");
}

/// Random interleavings of publications, subscriptions with and without history, and
/// readers that read a little at a time, against a plain model: per subscriber and
/// topic, positions strictly increase, every position from where its subscription
/// starts to the topic's last is either received or counted in a `_gap` (eviction from
/// a small store), nothing is duplicated, SUBSCRIBED comes first and history before
/// live events.
mod interleavings {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const TOPICS: [&str; 3] = ["p.a", "p.b", "p.c"];

    #[derive(Debug, Clone)]
    enum Op {
        Publish(usize),
        /// (session, what: 0..3 exact topic, 3 the prefix "p."; history)
        Subscribe(usize, usize, Option<u64>),
        Read(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..TOPICS.len()).prop_map(Op::Publish),
            1 => (0..4usize, 0..4usize, proptest::option::of(0..12u64)).prop_map(|(s, w, h)| Op::Subscribe(s, w, h)),
            3 => (0..4usize, 1..6usize).prop_map(|(s, n)| Op::Read(s, n)),
        ]
    }

    /// Where a subscriber's history starts, per topic (the model's answer).
    struct Expect {
        pattern: bool,
        start: BTreeMap<&'static str, u64>,
    }

    fn heads(broker: &Broker) -> BTreeMap<&'static str, u64> {
        TOPICS
            .iter()
            .map(|t| {
                let g = broker.store().lock(t);
                (*t, g.log(t).map_or(0, |l| l.head().0))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn every_position_is_received_once_or_told_as_a_gap(ops in proptest::collection::vec(op(), 1..120)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let (broker, _) = broker(8);
                let publisher = handle(100);
                let sessions: Vec<_> = (0..4).map(|i| handle_with(i as u64 + 1, 4)).collect();
                let mut expect: Vec<Option<Expect>> = (0..4).map(|_| None).collect();
                let mut got: Vec<Vec<Message>> = vec![Vec::new(); 4];
                let mut n = 0;
                for op in ops {
                    match op {
                        Op::Publish(t) => {
                            n += 1;
                            publish_n(&broker, &publisher, TOPICS[t], n, false);
                        }
                        Op::Subscribe(s, what, history) if expect[s].is_none() => {
                            let h = heads(&broker);
                            let (uri, policy) = if what < 3 { (TOPICS[what], MatchPolicy::Exact) } else { ("p.", MatchPolicy::Prefix) };
                            let start: BTreeMap<_, _> = TOPICS
                                .iter()
                                .map(|t| {
                                    let head = h[t];
                                    let from = match history {
                                        None => head + 1,
                                        Some(last) if policy == MatchPolicy::Exact => (head + 1).saturating_sub(last).max(1),
                                        // Patterns: everything since the epoch.
                                        Some(_) => 1,
                                    };
                                    (*t, from)
                                })
                                .collect();
                            let replay = history.map(|last| if policy == MatchPolicy::Exact { ReplayFrom::Last(last) } else { ReplayFrom::Since(SystemTime::UNIX_EPOCH) });
                            subscribe(&broker, &sessions[s], uri, policy, Start { replay, retained: false });
                            expect[s] = Some(Expect { pattern: policy != MatchPolicy::Exact, start: if what < 3 { start.into_iter().filter(|(t, _)| *t == TOPICS[what]).collect() } else { start } });
                        }
                        Op::Subscribe(..) => {}
                        Op::Read(s, k) => got[s].extend(take(&sessions[s], k).await),
                    }
                }
                let end = heads(&broker);
                for s in 0..4 {
                    got[s].extend(drain(&sessions[s]).await);
                    let Some(e) = &expect[s] else {
                        assert!(got[s].is_empty());
                        continue;
                    };
                    let evs = events(&got[s]);
                    let first_live = evs.iter().position(|e| !e.replayed).unwrap_or(evs.len());
                    assert!(evs[first_live..].iter().all(|e| !e.replayed), "history first");
                    let mut last: BTreeMap<String, u64> = BTreeMap::new();
                    let mut received = 0u64;
                    let mut gaps = 0u64;
                    for ev in &evs {
                        let topic = ev.topic.clone().unwrap_or_else(|| e.start.keys().next().unwrap().to_string());
                        let from = e.start[topic.as_str()];
                        let prev = *last.get(&topic).unwrap_or(&(from - 1));
                        assert!(ev.pos > prev, "{topic}: {} after {prev}", ev.pos);
                        if !e.pattern {
                            assert_eq!(ev.pos, prev + 1 + ev.gap.unwrap_or(0), "{topic}: contiguous but for the told gap");
                        }
                        last.insert(topic, ev.pos);
                        received += 1;
                        gaps += ev.gap.unwrap_or(0);
                        assert_eq!(ev.dropped, None, "stored topics never drop");
                    }
                    let wanted: u64 = e.start.iter().map(|(t, from)| (end[t] + 1).saturating_sub(*from)).sum();
                    assert_eq!(received + gaps, wanted, "session {s}: received {received} + gap {gaps}");
                }
            });
        }
    }
}
