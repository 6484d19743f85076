//! Pub/sub behaviour that stock clients cannot observe: one encode per subscription and
//! serializer, the full-outbox policy for slow subscribers, ordering, and index pruning.

mod common;

use std::time::Duration;

use common::{args_of, metric, start, Client};
use switchyard::wamp::{dict, Dict, Message, Serializer, Value};

#[tokio::test]
async fn one_json_publication_is_encoded_once_for_100_msgpack_subscribers() {
    let server = start(|_| {}).await;
    let mut subscribers = Vec::new();
    let mut sub_id = None;
    for _ in 0..100 {
        let mut c = Client::join_ws(&server, Serializer::MsgPack).await;
        let id = c.subscribe("com.fanout", Dict::new()).await;
        assert_eq!(*sub_id.get_or_insert(id), id, "one subscription shared by all subscribers");
        subscribers.push(c);
    }
    let mut publisher = Client::join_ws(&server, Serializer::Json).await;
    let encodes_before = metric(&server, "event_encodes");
    publisher.publish("com.fanout", dict([("acknowledge", true.into())]), vec![Value::Bytes(vec![0, 1, 2]), "é".into()]).await;
    assert!(matches!(publisher.recv().await, Message::Published { .. }));
    for c in &mut subscribers {
        match c.recv().await {
            Message::Event { subscription, payload, .. } => {
                assert_eq!(Some(subscription), sub_id);
                assert_eq!(args_of(&payload), vec![Value::Bytes(vec![0, 1, 2]), Value::from("é")]);
            }
            other => panic!("expected EVENT, got {other:?}"),
        }
    }
    assert_eq!(metric(&server, "event_encodes") - encodes_before, 1, "one transcode, not 100");
    assert_eq!(metric(&server, "events_delivered"), 100);

    // A CBOR subscriber on the same subscription adds exactly one more encode.
    let mut cbor = Client::join_ws(&server, Serializer::Cbor).await;
    cbor.subscribe("com.fanout", Dict::new()).await;
    publisher.publish("com.fanout", Dict::new(), vec![Value::UInt(2)]).await;
    assert!(matches!(cbor.recv().await, Message::Event { .. }));
    assert_eq!(metric(&server, "event_encodes") - encodes_before, 3);
}

/// On a topic without a store (see tests/replay.rs for stored topics, where the
/// stalled subscriber is caught up instead).
#[tokio::test]
async fn a_stalled_subscriber_loses_events_not_the_publisher() {
    const EVENTS: u64 = 3000;
    let server = start(|c| {
        c.limits.outbox_messages = 16;
        c.limits.write_timeout = Duration::from_secs(30);
        c.realms[0].replay = switchyard::config::ReplayConfig::none();
    })
    .await;
    let mut slow = Client::raw(&server, Serializer::MsgPack, 15).await;
    slow.join("realm1", Dict::new()).await;
    slow.subscribe("com.log", Dict::new()).await;
    let mut fast = Client::join_ws(&server, Serializer::MsgPack).await;
    fast.subscribe("com.log", Dict::new()).await;

    // The slow subscriber reads nothing while 3000 events of 4 KiB are published.
    let mut publisher = Client::join_ws(&server, Serializer::MsgPack).await;
    let filler = Value::Str("z".repeat(4096));
    for i in 0..EVENTS {
        publisher.publish("com.log", dict([("acknowledge", true.into())]), vec![Value::UInt(i), filler.clone()]).await;
        // Keep the fast subscriber drained and check its order.
        match fast.recv().await {
            Message::Event { payload, .. } => assert_eq!(args_of(&payload)[0], Value::UInt(i)),
            other => panic!("expected EVENT, got {other:?}"),
        }
    }
    for _ in 0..EVENTS {
        assert!(matches!(publisher.recv().await, Message::Published { .. }), "every publication acknowledged");
    }

    // Now the slow one reads what reached it, then one more event reports the tail gap.
    let mut received = Vec::new();
    let mut reported = 0;
    let mut last: Option<u64> = None;
    let read_one = |msg: Message, received: &mut Vec<u64>, reported: &mut u64, last: &mut Option<u64>| {
        let Message::Event { details, payload, .. } = msg else { panic!("expected EVENT") };
        let i = args_of(&payload)[0].as_u64().unwrap();
        let dropped = details.get("_dropped").and_then(Value::as_u64).unwrap_or(0);
        let expected_gap = i - last.map_or(0, |l| l + 1);
        assert_eq!(dropped, expected_gap, "_dropped counts exactly the events missed before event {i}");
        *reported += dropped;
        *last = Some(i);
        received.push(i);
    };
    while let Ok(m) = tokio::time::timeout(Duration::from_millis(300), slow.recv()).await {
        read_one(m, &mut received, &mut reported, &mut last);
    }
    publisher.publish("com.log", Dict::new(), vec![Value::UInt(EVENTS), "end".into()]).await;
    let m = slow.recv().await;
    read_one(m, &mut received, &mut reported, &mut last);

    assert_eq!(received.len() as u64 + reported, EVENTS + 1);
    assert!(reported > 0, "the stalled subscriber must have lost events (received {})", received.len());
    assert_eq!(metric(&server, "events_dropped_outbox_full"), reported);
    assert!(received.windows(2).all(|w| w[0] < w[1]), "order kept");
}

#[tokio::test]
async fn subscriptions_are_pruned_when_their_last_subscriber_leaves() {
    let server = start(|_| {}).await;
    let realm = server.router.realm("realm1").unwrap().clone();
    for round in 0..3 {
        let mut clients = Vec::new();
        for i in 0..100 {
            let mut c = Client::join_ws(&server, Serializer::Json).await;
            c.subscribe(&format!("com.container.{round}_{i}.log"), Dict::new()).await;
            c.subscribe(&format!("com.container.{round}_{i}."), dict([("match", "prefix".into())])).await;
            c.subscribe(&format!("com.container..{round}_{i}"), dict([("match", "wildcard".into())])).await;
            clients.push(c);
        }
        assert_eq!(realm.broker.subscription_count(), 300);
        for c in clients {
            c.close().await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while realm.broker.subscription_count() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(realm.broker.subscription_count(), 0, "round {round}");
        assert_eq!(realm.session_count(), 0);
    }
    // Unsubscribe prunes too.
    let mut c = Client::join_ws(&server, Serializer::Json).await;
    let id = c.subscribe("com.once", Dict::new()).await;
    c.send(&Message::Unsubscribe { request: 99, subscription: id }).await;
    assert_eq!(c.recv().await, Message::Unsubscribed { request: 99, details: None });
    assert_eq!(realm.broker.subscription_count(), 0);
}

#[tokio::test]
async fn pattern_subscriptions_carry_the_concrete_topic() {
    let server = start(|_| {}).await;
    let mut sub = Client::join_ws(&server, Serializer::Json).await;
    let prefix = sub.subscribe("com.app", dict([("match", "prefix".into())])).await;
    let wildcard = sub.subscribe("com..update", dict([("match", "wildcard".into())])).await;
    let exact = sub.subscribe("com.app.update", Dict::new()).await;
    let mut publisher = Client::join_ws(&server, Serializer::Json).await;
    publisher.publish("com.app.update", Dict::new(), vec![]).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let Message::Event { subscription, details, .. } = sub.recv().await else { panic!("expected EVENT") };
        seen.push((subscription, details.get("topic").cloned()));
    }
    seen.sort_by_key(|s| s.0);
    let mut expected = vec![
        (prefix, Some(Value::from("com.app.update"))),
        (wildcard, Some(Value::from("com.app.update"))),
        (exact, None),
    ];
    expected.sort_by_key(|s| s.0);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn subscription_ids_are_router_scope_sequential() {
    let server = start(|_| {}).await;
    let mut a = Client::join_ws(&server, Serializer::Json).await;
    let mut b = Client::join_ws(&server, Serializer::Json).await;
    let first = a.subscribe("com.a", Dict::new()).await;
    assert_eq!(b.subscribe("com.b", Dict::new()).await, first + 1);
    assert_eq!(a.subscribe("com.b", Dict::new()).await, first + 1, "same topic, same id");
    assert_eq!(a.subscribe("com.a", Dict::new()).await, first, "subscribing twice returns the same id");
}
