//! Resource exhaustion by hostile or clumsy peers, and what each gets: idle and slow
//! handshakes, the connection limit and its evictions, large messages before a session,
//! half-sent frames, the process memory budget, WebSocket framing violations, and JSON
//! that is not text.

mod common;

use std::time::{Duration, Instant};

use common::{metric, start, Client};
use switchyard::wamp::{dict, Dict, Message, Payload, Serializer, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits for the router to close `tcp`; returns how long it took.
async fn closed_after(tcp: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await.expect("closed within 5 s") {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => continue,
        }
    }
}

#[tokio::test]
async fn handshakes_have_a_deadline_on_both_ports() {
    let server = start(|c| c.limits.handshake_timeout = Duration::from_millis(300)).await;
    // Silent on the HTTP port, headers one byte at a time, and silent on RawSocket.
    let mut silent = TcpStream::connect(server.websocket).await.unwrap();
    let mut slow = TcpStream::connect(server.websocket).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\n").await.unwrap();
    let mut raw = TcpStream::connect(server.rawsocket.unwrap()).await.unwrap();
    let (a, b, c) = tokio::join!(closed_after(&mut silent), closed_after(&mut slow), closed_after(&mut raw));
    for took in [a, b, c] {
        assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(1_500), "{took:?}");
    }
    // A client that completes its handshake is not affected.
    Client::join_ws(&server, Serializer::Json).await;
}

#[tokio::test]
async fn at_the_limit_the_oldest_connection_without_a_session_makes_room() {
    let server = start(|c| c.limits.max_sessions = 4).await;
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(TcpStream::connect(server.websocket).await.unwrap());
    }
    // 4 admitted, then each newcomer closed the oldest idle one.
    closed_after(&mut idle[0]).await;
    closed_after(&mut idle[1]).await;
    // A real client still gets in (evicting the third), and then holds its place.
    let mut client = Client::join_ws(&server, Serializer::Json).await;
    closed_after(&mut idle[2]).await;
    assert_eq!(metric(&server, "connections_evicted"), 3);
    for _ in 0..3 {
        idle.push(TcpStream::connect(server.websocket).await.unwrap());
    }
    closed_after(&mut idle[3]).await;
    let sub = client.subscribe("com.still.here", Dict::new()).await;
    assert!(sub > 0);
    assert_eq!(metric(&server, "connections_evicted"), 6);
    assert_eq!(server.router.open_connections(), 4);
}

#[tokio::test]
async fn before_its_session_a_peer_may_send_only_small_messages() {
    let server = start(|_| {}).await;
    assert_eq!(server.router.limits.max_hello_size, 64 * 1024);
    // A 100 KiB RawSocket PING before HELLO: refused from its header.
    let mut c = Client::raw(&server, Serializer::MsgPack, 15).await;
    c.send_wire(&[1, 0x01, 0x90, 0x00]).await;
    let m = c.expect_abort("wamp.error.protocol_violation").await;
    assert_eq!(m, "message of 102400 bytes exceeds the limit of 65536 bytes");
    c.expect_closed().await;
    // The same over WebSocket (a masked binary frame header announcing 100 KiB).
    let mut w = Client::ws(&server, Serializer::MsgPack).await;
    w.send_wire(&ws_header(0x82, 100 * 1024)).await;
    let m = w.expect_abort("wamp.error.protocol_violation").await;
    assert_eq!(m, "message of 102400 bytes exceeds the limit of 65536 bytes");
    // Once the session is established, the same PING is answered with a PONG.
    let mut c = Client::raw(&server, Serializer::MsgPack, 15).await;
    c.join("realm1", Dict::new()).await;
    let mut ping = vec![1, 0x01, 0x90, 0x00];
    ping.extend(std::iter::repeat_n(7u8, 100 * 1024));
    c.send_wire(&ping).await;
    let (kind, payload) = c.recv_wire().await.expect("a PONG");
    assert_eq!((kind, payload.len()), (2, 100 * 1024));
    assert_eq!(metric(&server, "oversized_messages"), 2);
}

/// A header announcing 1 MiB, then half of it, then nothing.
fn half_a_rawsocket_frame() -> Vec<u8> {
    let mut f = vec![0, 0x10, 0x00, 0x00];
    f.extend(std::iter::repeat_n(b' ', 512 * 1024));
    f
}

/// A masked WebSocket frame header (`fin` and `opcode` in `b0`) for `len` payload bytes.
fn ws_header(b0: u8, len: u64) -> Vec<u8> {
    let mut h = vec![b0];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xFFFF => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as it is
    h
}

#[tokio::test]
async fn a_message_begun_must_arrive_within_the_frame_timeout() {
    let server = start(|c| c.limits.frame_timeout = Duration::from_millis(300)).await;
    let mut raw = Client::raw(&server, Serializer::Json, 15).await;
    raw.join("realm1", Dict::new()).await;
    let mut ws = Client::join_ws(&server, Serializer::Json).await;
    let started = Instant::now();
    raw.send_wire(&half_a_rawsocket_frame()).await;
    let mut partial = ws_header(0x81, 1 << 20);
    partial.extend(std::iter::repeat_n(b' ', 512 * 1024));
    ws.send_wire(&partial).await;
    for c in [&mut raw, &mut ws] {
        let m = c.expect_abort("wamp.error.protocol_violation").await;
        assert_eq!(m, "a message was not completed within 300ms of its first byte");
    }
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    raw.expect_closed().await;
    assert_eq!(metric(&server, "incomplete_messages"), 2);
}

#[tokio::test]
async fn steady_traffic_longer_than_the_frame_timeout_is_fine() {
    let server = start(|c| c.limits.frame_timeout = Duration::from_millis(200)).await;
    for ser in [Serializer::Json, Serializer::MsgPack] {
        let mut c = Client::join_ws(&server, ser).await;
        c.subscribe("com.steady", Dict::new()).await;
        // 40 publications, 25 ms apart: a second of traffic, each message whole.
        for i in 0..40u64 {
            c.publish("com.steady", dict([("exclude_me", false.into())]), vec![Value::UInt(i)]).await;
            assert!(matches!(c.recv().await, Message::Event { .. }));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    assert_eq!(metric(&server, "incomplete_messages"), 0);
}

#[tokio::test]
async fn a_large_message_waits_for_the_memory_budget() {
    let server = start(|c| {
        c.limits.memory_budget = 8 << 20;
        c.limits.max_message_size = 2 << 20;
        c.limits.frame_timeout = Duration::from_millis(1_000);
    })
    .await;
    // Four sessions hold the whole 8 MiB budget with half-sent 2 MiB frames, begun
    // 150 ms apart, so that they time out one by one.
    let mut holders = Vec::new();
    for i in 0..4 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let mut a = Client::raw(&server, Serializer::Json, 15).await;
        a.join("realm1", Dict::new()).await;
        let mut half = vec![0u8, 0x20, 0x00, 0x00];
        half.extend(std::iter::repeat_n(b' ', 1 << 20));
        a.send_wire(&half).await;
        holders.push(a);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(server.router.budget.used(), 8 << 20);
    // B's 1.5 MiB publication waits until their frames time out and give it back.
    let mut b = Client::raw(&server, Serializer::MsgPack, 15).await;
    b.join("realm1", Dict::new()).await;
    let blob = Value::Bytes(vec![9; 3 << 19]);
    let payload = switchyard::wamp::Args { args: Some(Payload::from_value(Serializer::MsgPack, &Value::List(vec![blob]))), kwargs: None };
    b.send(&Message::Publish { request: 1, options: dict([("acknowledge", true.into())]), topic: "com.big".into(), payload }).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(metric(&server, "inbound_budget_waits"), 1, "B is waiting");
    assert_eq!(metric(&server, "events_published"), 0);
    assert!(matches!(b.recv().await, Message::Published { request: 1, .. }));
    assert_eq!(metric(&server, "incomplete_messages"), 1, "published once the first holder timed out");
    for a in &mut holders {
        a.expect_abort("wamp.error.protocol_violation").await;
    }
    assert_eq!(metric(&server, "inbound_budget_waits"), 1);
    assert_eq!(server.router.budget.used(), 0);
}

/// A subscriber that does not read, on a topic without a store: its events are dropped
/// at the memory budget.
#[tokio::test]
async fn events_for_a_subscriber_that_does_not_read_stop_at_the_memory_budget() {
    flood_a_stuck_subscriber(false).await;
}

/// The same on a stored topic: nothing is dropped, the subscriber lags (it would be
/// caught up from the store if it read again), and its queue still stops at the budget.
#[tokio::test]
async fn a_stuck_subscriber_of_a_stored_topic_lags_within_the_memory_budget() {
    flood_a_stuck_subscriber(true).await;
}

async fn flood_a_stuck_subscriber(stored: bool) {
    let server = start(|c| {
        c.limits.memory_budget = 1 << 20;
        c.limits.max_message_size = 256 << 10;
        if !stored {
            c.realms[0].replay = switchyard::config::ReplayConfig::none();
        }
    })
    .await;
    let mut stuck = Client::raw(&server, Serializer::MsgPack, 15).await;
    stuck.join("realm1", Dict::new()).await;
    stuck.subscribe("com.flood", Dict::new()).await;
    let mut publisher = Client::join_ws(&server, Serializer::MsgPack).await;
    let blob = Value::Bytes(vec![1; 100 << 10]);
    let reached = if stored { "subscribers_lagged" } else { "events_dropped_budget" };
    // The socket buffers take some megabytes first; then the outbox grows to the budget.
    for _ in 0..2_000 {
        publisher.publish("com.flood", Dict::new(), vec![blob.clone()]).await;
        if metric(&server, reached) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(metric(&server, reached) > 0, "the budget was never reached:\n{}", server.router.render_metrics());
    if stored {
        assert_eq!(metric(&server, "events_dropped_budget"), 0);
        assert_eq!(metric(&server, "subscribers_lagged"), 1);
    }
    // Queues stop at three quarters of the budget; the rest stays free for inbound
    // messages, such as the publisher's own 100 KiB publications.
    assert!(server.router.budget.used() <= 3 << 18, "used {}", server.router.budget.used());
    // The publisher was never slowed down or refused: its acknowledged publish is answered.
    let request = publisher.publish("com.flood", dict([("acknowledge", true.into())]), vec![]).await;
    assert!(matches!(publisher.recv().await, Message::Published { request: r, .. } if r == request));
}

#[tokio::test]
async fn websocket_framing_violations_close_with_1002_or_1007_and_a_reason() {
    let server = start(|_| {}).await;
    let mut unmasked = ws_header(0x82, 1);
    unmasked[1] &= 0x7F;
    unmasked.truncate(2);
    unmasked.push(0);
    let cases: [(Vec<u8>, u16, &str); 5] = [
        (unmasked, 1002, "unmasked frame from a client"),
        ([ws_header(0xC2, 1), vec![0]].concat(), 1002, "reserved bits set in a frame header (no extension was agreed)"),
        ([ws_header(0x83, 1), vec![0]].concat(), 1002, "unknown opcode"),
        ([ws_header(0x89, 126), vec![0; 126]].concat(), 1002, "control frame larger than 125 bytes"),
        ([ws_header(0x81, 2), vec![0xC3, 0x28]].concat(), 1007, "a text frame is not valid UTF-8"),
    ];
    for (i, (bytes, code, reason)) in cases.into_iter().enumerate() {
        let mut c = Client::join_ws(&server, Serializer::Json).await;
        c.send_wire(&bytes).await;
        assert_eq!(c.expect_ws_close().await, Some((code, reason.to_owned())), "case {i}");
        assert_eq!(metric(&server, "protocol_violations"), i as u64 + 1);
    }
}

/// JSON goes to WebSocket peers as text frames made from its bytes, unchecked there
/// (transport/websocket.rs): bytes that are not UTF-8 must be stopped where they enter.
/// A RawSocket frame has no text check of its own.
#[tokio::test]
async fn json_that_is_not_utf8_from_a_rawsocket_peer_never_reaches_a_websocket_one() {
    let server = start(|_| {}).await;
    let mut sub = Client::join_ws(&server, Serializer::Json).await;
    let subscription = sub.subscribe("com.example.text", Dict::new()).await;
    let mut raw = Client::raw(&server, Serializer::Json, 15).await;
    raw.join("realm1", Dict::new()).await;
    raw.send_bytes(b"[16,1,{},\"com.example.text\",[\"\xff\"]]").await;
    let why = raw.expect_abort("wamp.error.protocol_violation").await;
    assert_eq!(why, "cannot decode message: malformed json: invalid utf-8 sequence of 1 bytes from index 30");
    let mut good = Client::join_ws(&server, Serializer::Json).await;
    good.publish("com.example.text", Dict::new(), vec![Value::Str("é".into())]).await;
    match sub.recv().await {
        Message::Event { subscription: s, payload, .. } => {
            assert_eq!((s, common::args_of(&payload)), (subscription, vec![Value::Str("é".into())]));
        }
        other => panic!("expected the good EVENT first, got {other:?}"),
    }
}

#[tokio::test]
async fn a_caller_that_overflows_its_queue_is_cut_off_at_once_even_mid_write() {
    let server = start(|c| {
        c.limits.rpc_outbox_bytes = 4 << 20;
        c.limits.max_message_size = 2 << 20;
        c.limits.outbox_bytes = 2 << 20;
    })
    .await;
    assert_eq!(server.router.limits.write_timeout, Duration::from_secs(10));
    let mut callee = Client::join_ws(&server, Serializer::MsgPack).await;
    callee.register("com.big").await;
    // A caller with a small receive buffer that never reads its results.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut caller = socket.connect(server.rawsocket.unwrap()).await.unwrap();
    caller.write_all(&[0x7F, 0xF2, 0, 0]).await.unwrap();
    let mut reply = [0u8; 4];
    caller.read_exact(&mut reply).await.unwrap();
    let hello = Message::Hello { realm: "realm1".into(), details: Dict::new() }.encode(Serializer::MsgPack).unwrap();
    let frame = |m: &[u8]| [&[0, 0, (m.len() >> 8) as u8, m.len() as u8][..], m].concat();
    caller.write_all(&frame(&hello)).await.unwrap();
    for request in 1..=20u64 {
        let call = Message::Call { request, options: Dict::new(), procedure: "com.big".into(), payload: Default::default() };
        caller.write_all(&frame(&call.encode(Serializer::MsgPack).unwrap())).await.unwrap();
    }
    let result = Payload::from_value(Serializer::MsgPack, &Value::List(vec![Value::Bytes(vec![0; 1 << 20])]));
    let started = Instant::now();
    for _ in 0..20 {
        let Message::Invocation { request, .. } = callee.recv().await else { panic!("expected INVOCATION") };
        let payload = switchyard::wamp::Args { args: Some(result.clone()), kwargs: None };
        callee.send(&Message::Yield { request, options: Dict::new(), payload }).await;
        if server.router.open_connections() == 1 {
            break;
        }
    }
    // Past 4 MiB queued the caller's session is closed; its writer, stuck in a write the
    // caller does not read, is interrupted rather than left to the 10 s write timeout.
    while server.router.open_connections() > 1 {
        assert!(started.elapsed() < Duration::from_secs(2), "the caller is still connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
