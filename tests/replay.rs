//! The replay store over the wire, with our own client (stock clients cannot send
//! `_replay` or read `_pos`/`_gap` everywhere; the interop suites cover what they can):
//! positions, `_replay` with a concurrent publisher, lagging readers caught up, gaps
//! told, `get_events`, resuming after a lost connection, and what WELCOME announces.

mod common;

use std::time::Duration;

use common::{args_of, call, expect_error_for, metric, start, Client};
use switchyard::config::{ReplayConfig, TopicRetention};
use switchyard::wamp::message::code;
use switchyard::wamp::uri::MatchPolicy;
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

fn ack() -> Dict {
    dict([("acknowledge", true.into())])
}

/// Every topic stored, keeping `max_events`.
fn keep(max_events: usize) -> ReplayConfig {
    let rule = TopicRetention { uri: String::new(), policy: MatchPolicy::Prefix, max_events, max_age: None, max_bytes: None, durable: false };
    ReplayConfig { topics: vec![rule], ..ReplayConfig::store_everything() }
}

/// An EVENT's (counter argument, _pos, _replayed, _gap, _dropped).
fn event(m: &Message) -> (u64, u64, bool, Option<u64>, Option<u64>) {
    let Message::Event { details, payload, .. } = m else { panic!("expected EVENT, got {m:?}") };
    let n = args_of(payload)[0].as_u64().expect("a counter");
    let pos = details.get("_pos").and_then(Value::as_u64).expect("_pos on a stored topic");
    let replayed = details.get("_replayed") == Some(&Value::Bool(true));
    (n, pos, replayed, details.get("_gap").and_then(Value::as_u64), details.get("_dropped").and_then(Value::as_u64))
}

/// Publishes counters 1..=n to `topic` with acknowledgements, as fast as they are
/// acknowledged in windows of 100; returns the publication ids.
async fn publish_counters(p: &mut Client, topic: &str, from: u64, n: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut pending = 0;
    for i in from..from + n {
        p.publish(topic, ack(), vec![Value::UInt(i)]).await;
        pending += 1;
        if pending == 100 || i == from + n - 1 {
            for _ in 0..pending {
                match p.recv().await {
                    Message::Published { publication, .. } => ids.push(publication),
                    other => panic!("expected PUBLISHED, got {other:?}"),
                }
            }
            pending = 0;
        }
    }
    ids
}

#[tokio::test]
async fn welcome_announces_history_and_retention_only_where_events_are_stored() {
    let server = start(|c| {
        let mut quiet = c.realms[0].clone();
        quiet.name = "quiet".into();
        quiet.replay = ReplayConfig::none();
        c.realms.push(quiet);
    })
    .await;
    for (realm, stores) in [("realm1", true), ("quiet", false)] {
        let mut c = Client::ws(&server, Serializer::Json).await;
        c.join(realm, Dict::new()).await;
        let features = c.welcome["roles"].as_dict().unwrap()["broker"].as_dict().unwrap()["features"].as_dict().unwrap().clone();
        assert_eq!(features.contains_key("event_history"), stores, "{realm}");
        assert_eq!(features.contains_key("event_retention"), stores, "{realm}");
    }
}

/// `_replay {"last": 500}` while another session publishes as fast as it can: every
/// counter once, in order, the first 500 marked as history, no gap.
#[tokio::test]
async fn replay_last_n_then_live_while_a_publisher_writes() {
    let server = start(|c| c.realms[0].replay = keep(10_000)).await;
    let mut p = Client::join_ws(&server, Serializer::MsgPack).await;
    publish_counters(&mut p, "logs.c1", 1, 2_000).await;
    let writer = tokio::spawn(async move {
        let ids = publish_counters(&mut p, "logs.c1", 2_001, 3_000).await;
        (p, ids.len() as u64)
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    for ser in [Serializer::Json, Serializer::MsgPack] {
        let mut s = Client::join_ws(&server, ser).await;
        s.subscribe("logs.c1", dict([("_replay", Value::Dict(dict([("last", 500u64.into())])))])).await;
        let mut got = Vec::new();
        while got.last().map(|e: &(u64, u64, bool, Option<u64>, Option<u64>)| e.0) != Some(5_000) {
            got.push(event(&s.recv().await));
        }
        let first = got[0].0;
        assert!(first > 1_500, "the last 500 before subscribing, from {first}");
        assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), (first..=5_000).collect::<Vec<_>>(), "{ser:?}");
        assert_eq!(got.iter().map(|e| e.1).collect::<Vec<_>>(), (first..=5_000).collect::<Vec<_>>(), "_pos is the counter here");
        assert_eq!(got.iter().filter(|e| e.2).count(), 500);
        assert!(got[..500].iter().all(|e| e.2) && got[500..].iter().all(|e| !e.2), "history first");
        assert!(got.iter().all(|e| e.3.is_none() && e.4.is_none()), "no gap, nothing dropped");
    }
    let (_, published) = writer.await.unwrap();
    assert_eq!(published, 3_000);
}

/// A reader that stops reading while 3,000 events of 4 KiB go by is caught up from the
/// store when it reads again: every event, in order, none dropped, the publisher and a
/// fast subscriber never slowed.
#[tokio::test]
async fn a_stalled_reader_is_caught_up_not_dropped() {
    const EVENTS: u64 = 3_000;
    let server = start(|c| {
        c.limits.outbox_messages = 16;
        c.limits.write_timeout = Duration::from_secs(30);
        c.realms[0].replay = keep(10_000);
    })
    .await;
    let mut slow = Client::raw(&server, Serializer::MsgPack, 15).await;
    slow.join("realm1", Dict::new()).await;
    slow.subscribe("com.log", Dict::new()).await;
    let mut fast = Client::join_ws(&server, Serializer::MsgPack).await;
    fast.subscribe("com.log", Dict::new()).await;
    let mut publisher = Client::join_ws(&server, Serializer::MsgPack).await;
    let filler = Value::Str("z".repeat(4096));
    for i in 1..=EVENTS {
        publisher.publish("com.log", ack(), vec![Value::UInt(i), filler.clone()]).await;
        let Message::Event { payload, .. } = fast.recv().await else { panic!("expected EVENT") };
        assert_eq!(args_of(&payload)[0], Value::UInt(i));
    }
    for _ in 0..EVENTS {
        assert!(matches!(publisher.recv().await, Message::Published { .. }));
    }
    assert_eq!(metric(&server, "subscribers_lagged"), 1);
    let got: Vec<_> = futures_collect(&mut slow, EVENTS as usize).await;
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), (1..=EVENTS).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.3.is_none() && e.4.is_none() && !e.2));
    assert_eq!(metric(&server, "events_dropped_outbox_full"), 0);
    assert!(metric(&server, "events_caught_up") > 2_000, "most came from the store");
    // Live again: the next event arrives directly.
    publisher.publish("com.log", Dict::new(), vec![Value::UInt(EVENTS + 1), filler.clone()]).await;
    assert_eq!(event(&slow.recv().await).0, EVENTS + 1);
}

async fn futures_collect(c: &mut Client, n: usize) -> Vec<(u64, u64, bool, Option<u64>, Option<u64>)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(event(&c.recv().await));
    }
    out
}

/// When the store evicted what a stalled reader missed, the first event after says how
/// many are gone: received + gap = published.
#[tokio::test]
async fn what_a_stalled_reader_lost_to_eviction_is_told_as_a_gap() {
    let server = start(|c| {
        c.limits.outbox_messages = 16;
        c.limits.write_timeout = Duration::from_secs(30);
        c.realms[0].replay = keep(100);
    })
    .await;
    let mut slow = Client::raw(&server, Serializer::MsgPack, 15).await;
    slow.join("realm1", Dict::new()).await;
    slow.subscribe("com.log", Dict::new()).await;
    let mut publisher = Client::join_ws(&server, Serializer::MsgPack).await;
    let filler = Value::Str("z".repeat(4096));
    for i in 1..=2_000u64 {
        publisher.publish("com.log", ack(), vec![Value::UInt(i), filler.clone()]).await;
    }
    for _ in 0..2_000 {
        assert!(matches!(publisher.recv().await, Message::Published { .. }));
    }
    let mut got = Vec::new();
    while got.last().map(|e: &(u64, u64, bool, Option<u64>, Option<u64>)| e.0) != Some(2_000) {
        got.push(event(&slow.recv().await));
    }
    // The writer catches up in bursts as the socket drains, so the store may evict
    // ahead of it more than once: each gap is exactly the events skipped before it.
    let gap: u64 = got.iter().filter_map(|e| e.3).sum();
    assert!(gap > 0);
    assert_eq!(got.len() as u64 + gap, 2_000, "received {} + gap {gap}", got.len());
    let mut previous = 0;
    for e in &got {
        assert_eq!(e.0, previous + 1 + e.3.unwrap_or(0), "counter {} after {previous}, gap {:?}", e.0, e.3);
        assert_eq!(e.1, e.0, "_pos");
        previous = e.0;
    }
    assert_eq!(got[got.len() - 100].0, 1_901, "the store's last 100 are all delivered");
    assert_eq!(metric(&server, "events_gap"), gap);
}

/// A client that lost its connection resumes with `after_pos`: exactly after the last
/// event it saw, while the publisher goes on.
#[tokio::test]
async fn resume_after_a_lost_connection_with_after_pos() {
    let server = start(|c| c.realms[0].replay = keep(10_000)).await;
    let mut p = Client::join_ws(&server, Serializer::Json).await;
    let mut a = Client::join_ws(&server, Serializer::Json).await;
    a.subscribe("records.r1.changes", Dict::new()).await;
    publish_counters(&mut p, "records.r1.changes", 1, 300).await;
    let mut last = 0;
    for _ in 0..120 {
        last = event(&a.recv().await).1;
    }
    assert_eq!(last, 120);
    drop(a);
    publish_counters(&mut p, "records.r1.changes", 301, 200).await;
    let mut b = Client::join_ws(&server, Serializer::Json).await;
    b.subscribe("records.r1.changes", dict([("_replay", Value::Dict(dict([("after_pos", last.into())])))])).await;
    let writer = tokio::spawn(async move { publish_counters(&mut p, "records.r1.changes", 501, 100).await });
    let got = futures_collect(&mut b, 480).await;
    assert_eq!(got.iter().map(|e| e.1).collect::<Vec<_>>(), (121..=600).collect::<Vec<_>>());
    writer.await.unwrap();
}

#[tokio::test]
async fn get_events_returns_the_callers_history_with_positions_and_publication_ids() {
    let server = start(|c| c.realms[0].replay = keep(10_000)).await;
    let mut p = Client::join_ws(&server, Serializer::Json).await;
    let ids = publish_counters(&mut p, "h.t", 1, 5).await;
    let mut s = Client::join_ws(&server, Serializer::MsgPack).await;
    let sub = s.subscribe("h.t", Dict::new()).await;
    publish_counters(&mut p, "h.t", 6, 1).await;
    assert_eq!(event(&s.recv().await).0, 6, "live after the attach point");
    let request = call(&mut s, "wamp.subscription.get_events", Dict::new(), vec![sub.into(), 3u64.into()]).await;
    let Message::Result { request: r, payload, .. } = s.recv().await else { panic!("expected RESULT") };
    assert_eq!(r, request);
    let list = args_of(&payload);
    let Value::List(events) = &list[0] else { panic!("one list") };
    let summary: Vec<(u64, u64, u64, String)> = events
        .iter()
        .map(|e| {
            let e = e.as_dict().unwrap();
            assert_eq!(e["subscription"], Value::UInt(sub));
            assert_eq!(e["kwargs"], Value::Dict(Dict::new()));
            assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
            let n = e["args"].as_list().unwrap()[0].as_u64().unwrap();
            (n, e["_pos"].as_u64().unwrap(), e["publication"].as_u64().unwrap(), e["topic"].as_str().unwrap().to_owned())
        })
        .collect();
    let expect: Vec<_> = (3..=5).map(|n| (n, n, ids[n as usize - 1], "h.t".to_owned())).collect();
    assert_eq!(summary, expect);
    // Someone else's subscription is not the caller's to read.
    let mut other = Client::join_ws(&server, Serializer::Json).await;
    let request = call(&mut other, "wamp.subscription.get_events", Dict::new(), vec![sub.into()]).await;
    expect_error_for(&mut other, code::CALL, request, "wamp.error.no_such_subscription").await;
}

#[tokio::test]
async fn a_malformed_replay_is_refused_with_invalid_argument() {
    let server = start(|_| {}).await;
    let mut s = Client::join_ws(&server, Serializer::Json).await;
    for options in [
        dict([("_replay", Value::Dict(dict([("after_pos", 3u64.into())]))), ("match", "prefix".into())]),
        dict([("_replay", Value::Dict(dict([("since", "yesterday".into())])))]),
        dict([("_replay", Value::Dict(dict([("last", 1u64.into()), ("after_pos", 1u64.into())])))]),
        dict([("_replay", 5u64.into())]),
    ] {
        let request = s.request();
        s.send(&Message::Subscribe { request, options, topic: "a.b".into() }).await;
        expect_error_for(&mut s, code::SUBSCRIBE, request, "wamp.error.invalid_argument").await;
    }
}
