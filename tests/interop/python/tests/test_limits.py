"""Large payloads, the message size limit, many concurrent sessions."""

import asyncio
import os

import pytest

from autobahn.wamp.types import CallResult, PublishOptions

from harness import SERIALIZERS, all_combos, observe, partner, spread_combos, uniq
from harness.client import Inbox, connect
from harness.rawsocket import PUBLISH, ConnectionClosed, RawSocketClient

ACK = PublishOptions(acknowledge=True)
MiB = 1024 * 1024


@all_combos
@pytest.mark.deadline(30)
async def test_one_megabyte_publish(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.big")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    blob = os.urandom(MiB)
    text = "\u00e9" * (MiB // 2)  # 1 MiB of UTF-8
    await pub.publish(topic, blob, options=ACK, text=text)
    (ev,) = await inbox.wait_for(1, timeout=15)
    assert type(ev.args[0]) is bytes and len(ev.args[0]) == MiB
    assert ev.args[0] == blob
    assert ev.kwargs["text"] == text


@spread_combos
@pytest.mark.deadline(30)
async def test_one_megabyte_call(router, combo):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc = uniq("com.example.bigcall")
    await callee.register(lambda b: CallResult(b, size=len(b)), proc)
    blob = os.urandom(MiB)
    res = await asyncio.wait_for(caller.call(proc, blob), 15)
    assert res.results[0] == blob
    assert res.kwresults == {"size": MiB}


# ---------------------------------------------------------------- size limit (64 KiB config)


async def _bystander(router):
    """A subscribed session on another transport, to prove it is unaffected."""
    s = await connect(router, "rawsocket", "cbor")
    topic = uniq("com.example.bystander")
    inbox = Inbox("bystander")
    await s.subscribe(inbox, topic)
    return s, topic, inbox


async def _assert_bystander_ok(router, s, topic, inbox):
    pub = await connect(router, "websocket", "json")
    await pub.publish(topic, "still-here", options=ACK)
    await inbox.wait_for(1)
    assert [ev.args for ev in inbox.items] == [("still-here",)]
    assert s.is_attached()


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_under_limit_is_delivered(auth_router, serializer):
    sub = await connect(auth_router, "rawsocket", serializer)
    pub = await connect(auth_router, "websocket", serializer)
    topic = uniq("com.example.underlimit")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    payload = "y" * 60_000
    await pub.publish(topic, payload, options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert ev.args == (payload,)


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_oversize_websocket_message_closes_only_that_session(auth_router, serializer):
    by, by_topic, by_inbox = await _bystander(auth_router)
    victim = await connect(auth_router, "websocket", serializer)
    seen = []
    orig = victim.onMessage

    def spy(msg):
        seen.append(msg.marshal())
        return orig(msg)

    victim.onMessage = spy
    f = victim.publish(uniq("com.example.oversize"), "z" * 100_000, options=ACK)
    await asyncio.wait_for(asyncio.shield(victim.state.disconnected), 3)
    assert f.done() and f.exception() is not None, "publish must not be acknowledged"
    proto = victim.protocol
    observe(f"WAMP messages received: {seen!r}; ws close code={proto.remoteCloseCode} "
            f"reason={proto.remoteCloseReason!r}")
    assert not victim.is_attached()
    await _assert_bystander_ok(auth_router, by, by_topic, by_inbox)


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_oversize_rawsocket_message_closes_only_that_session(auth_router, serializer):
    by, by_topic, by_inbox = await _bystander(auth_router)
    c = RawSocketClient(serializer)
    await c.join(auth_router)
    await c.send([PUBLISH, 1, {"acknowledge": True}, uniq("com.example.oversize"),
                  ["z" * 100_000]])
    msgs = await c.recv_until_closed(3.0)
    observe(f"router sent before closing: {msgs!r}")
    assert not any(m[0] == 17 for m in msgs), f"oversized PUBLISH was acknowledged: {msgs!r}"
    await _assert_bystander_ok(auth_router, by, by_topic, by_inbox)


async def test_router_respects_client_max_length(router):
    """A RawSocket client announcing LENGTH 1 (1024 octets) must never get a
    larger frame; small events keep flowing unless the router drops the client."""
    c = RawSocketClient("json")
    await c.open(router.rs_host, router.rs_port)
    reply = await c.handshake(bytes([0x7F, 0x11, 0, 0]))
    assert reply[0] == 0x7F and reply[1] & 0x0F == 1, reply.hex()
    welcome = await c.hello()
    assert welcome[0] == 2
    topic = uniq("com.example.small")
    await c.subscribe(topic)
    pub = await connect(router, "websocket", "msgpack")
    await pub.publish(topic, "q" * 4000, options=ACK)
    await pub.publish(topic, "small", options=ACK)
    frames = []
    try:
        while True:
            ftype, payload = await c.recv_frame(timeout=1.0)
            frames.append((ftype, len(payload)))
            assert len(payload) <= 1024, f"router sent a {len(payload)} octet frame"
            if b"small" in payload:
                break
    except (ConnectionClosed, asyncio.TimeoutError):
        pass
    observe(f"frames received: {frames}")
    c.close()


# ---------------------------------------------------------------- many sessions


@pytest.mark.deadline(60)
async def test_200_subscribers_one_publish(router):
    mix = ([("rawsocket", "msgpack")] * 80 + [("websocket", "json")] * 60
           + [("websocket", "cbor")] * 30 + [("rawsocket", "json")] * 30)
    topic = uniq("com.example.fanout")
    inbox = Inbox("fanout")
    got = {}

    async def one(i, t, s):
        sess = await connect(router, t, s, timeout=20)

        def on_event(*args, **kwargs):
            got.setdefault(i, []).append((args, kwargs))
            inbox(i)

        sub = await sess.subscribe(on_event, topic)
        return sess, sub.id

    results = []
    for start in range(0, len(mix), 50):
        batch = mix[start:start + 50]
        results += await asyncio.gather(*(one(start + k, t, s) for k, (t, s) in enumerate(batch)))
    assert len(results) == 200
    assert len({sid for _, sid in results}) == 1, "all 200 share one subscription id"

    pub = await connect(router, "websocket", "msgpack")
    await pub.publish(topic, "to-all", n=200, options=ACK)
    await inbox.wait_for(200, timeout=20)
    assert sorted(got) == list(range(200))
    assert all(v == [(("to-all",), {"n": 200})] for v in got.values())
