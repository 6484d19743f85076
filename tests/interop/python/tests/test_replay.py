"""The replay store seen by autobahn-python: event history
(wamp.subscription.get_events) while a publisher writes, its filters, resuming after a
cut TCP connection, event retention (retain / get_retained), and, on the wire (the
bare RawSocket client, since autobahn-python cannot send it), SUBSCRIBE.Options._replay.

The default realm (no config) stores every topic: the last 1,000 events of each.
autobahn-python's EventDetails keeps ``retained`` but drops the router's own keys
(``_pos``, ``_replayed``, ``_gap``); get_events entries are plain dicts and keep them.
"""

import asyncio
import re
from types import SimpleNamespace

import pytest

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from harness import observe, spread_combos, partner, uniq
from harness.client import Inbox, connect
from harness.rawsocket import EVENT, SUBSCRIBED, SUBSCRIBE, RawSocketClient

ACK = PublishOptions(acknowledge=True)
DETAILS = SubscribeOptions(details=True)
GET_EVENTS = "wamp.subscription.get_events"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def get_events(session, subscription_id, *args, **kwargs) -> list[dict]:
    return await session.call(GET_EVENTS, subscription_id, *args, **kwargs)


def counters(items) -> list:
    """The counter payload of each event (Inbox items) or history entry (dicts)."""
    return [it["args"][0] if isinstance(it, dict) else it.args[0] for it in items]


class Publisher:
    """Publishes 0, 1, 2, ... to `topic` with acknowledge, ~1,000 a second, recording
    each PUBLISHED publication id; `reached(n)` resolves once n are published."""

    def __init__(self, session, topic: str, pace: float = 0.001):
        self.session, self.topic, self.pace = session, topic, pace
        self.ids: list[int] = []
        self._stop_at: int | None = None
        self._progress = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self, total: int) -> "Publisher":
        self._stop_at = total
        self.task = asyncio.create_task(self._run())
        return self

    def stop_at(self, total: int) -> None:
        self._stop_at = total

    async def _run(self):
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while i < self._stop_at:
            self.ids.append((await self.session.publish(self.topic, i, options=ACK)).id)
            self._progress.set()
            i += 1
            # on schedule: event i goes out at start + i * pace
            await asyncio.sleep(max(0.0, start + i * self.pace - loop.time()))
        self.rate = i / (loop.time() - start)

    async def reached(self, n: int) -> None:
        while len(self.ids) < n:
            if self.task.done():
                self.task.result()
                raise AssertionError(f"publisher stopped at {len(self.ids)} < {n}")
            self._progress.clear()
            await self._progress.wait()

    async def done(self) -> list[int]:
        await self.task
        return self.ids


def history_entries(sub_id, topic, ids, first_counter, n, first_pos=None):
    """The exact get_events entries for counters first_counter.. (timestamp blanked)."""
    first_pos = first_counter + 1 if first_pos is None else first_pos
    return [{"subscription": sub_id, "publication": ids[c], "topic": topic, "timestamp": None,
             "_pos": first_pos + k, "args": [c], "kwargs": {}}
            for k, c in enumerate(range(first_counter, first_counter + n))]


def blank_timestamps(entries):
    for e in entries:
        assert TIMESTAMP.match(e["timestamp"]), e
    stamps = [e["timestamp"] for e in entries]
    assert stamps == sorted(stamps), stamps
    return [dict(e, timestamp=None) for e in entries]


# ---------------------------------------------------------------- get_events


@spread_combos
@pytest.mark.deadline(20)
async def test_get_events_then_live_while_publishing(router, combo):
    """History up to the subscribe plus live events after it: every counter exactly
    once, in order, while a publisher writes ~1,000 events/s."""
    total = 800
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.replay.live")
    publisher = Publisher(pub, topic).start(total)
    await publisher.reached(250)

    inbox = Inbox("live")
    subscription = await sub.subscribe(inbox, topic, options=DETAILS)
    history = await get_events(sub, subscription.id)
    ids = await publisher.done()
    await inbox.wait_until(lambda items: items and items[-1].args == (total - 1,), timeout=5,
                           what=f"live event {total - 1}")

    n = len(history)
    assert 250 <= n < total, f"{n} history events"
    assert publisher.rate > 500, f"{publisher.rate:.0f} events/s"
    assert counters(history) + counters(inbox.items) == list(range(total))
    # positions are the topic's: 1, 2, 3, ...; the ids are those PUBLISHED returned
    assert blank_timestamps(history) == history_entries(subscription.id, topic, ids, 0, n)
    assert [ev.details.publication for ev in inbox.items] == ids[n:]
    assert {ev.details.subscription.id for ev in inbox.items} == {subscription.id}


async def _ten_events(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.replay.filters")
    ids = [(await pub.publish(topic, i, options=ACK)).id for i in range(10)]
    subscription = await sub.subscribe(Inbox(), topic)
    return sub, pub, topic, subscription, ids


@spread_combos
async def test_get_events_filters(router, combo):
    sub, _pub, topic, subscription, ids = await _ten_events(router, combo)
    sid = subscription.id

    everything = await get_events(sub, sid)
    assert blank_timestamps(everything) == history_entries(sid, topic, ids, 0, 10)
    assert counters(await get_events(sub, sid, limit=3)) == [7, 8, 9]
    assert counters(await get_events(sub, sid, 3)) == [7, 8, 9]  # limit, positional
    assert counters(await get_events(sub, sid, reverse=True)) == list(range(9, -1, -1))
    assert counters(await get_events(sub, sid, limit=3, reverse=True)) == [9, 8, 7]
    assert counters(await get_events(sub, sid, after_publication=ids[6])) == [7, 8, 9]
    assert counters(await get_events(sub, sid, before_publication=ids[3])) == [0, 1, 2]
    assert counters(await get_events(sub, sid, after_publication=ids[2],
                                     before_publication=ids[6])) == [3, 4, 5]
    assert counters(await get_events(sub, sid, after_publication=ids[2], limit=2)) == [8, 9]
    assert counters(await get_events(sub, sid, after_publication=ids[9])) == []


async def _ten_timestamps(router, combo):
    sub, _pub, _topic, subscription, _ids = await _ten_events(router, combo)
    ts = [e["timestamp"] for e in await get_events(sub, subscription.id)]
    assert len(set(ts)) == 10, ts
    return sub, subscription.id, ts


@spread_combos
async def test_get_events_time_filters(router, combo):
    """before_time takes the RFC 3339 timestamps get_events returns: strictly before."""
    sub, sid, ts = await _ten_timestamps(router, combo)
    assert counters(await get_events(sub, sid, before_time=ts[5])) == [0, 1, 2, 3, 4]
    assert counters(await get_events(sub, sid, before_time=ts[0])) == []
    assert counters(await get_events(sub, sid, before_time="2000-01-01T00:00:00Z")) == []
    assert counters(await get_events(sub, sid, after_time="2000-01-01T00:00:00+02:00")) == \
        list(range(10))
    assert counters(await get_events(sub, sid, after_time="2999-01-01T00:00:00Z")) == []


@spread_combos
async def test_get_events_after_time_is_strictly_after(router, combo):
    sub, sid, ts = await _ten_timestamps(router, combo)
    assert counters(await get_events(sub, sid, after_time=ts[4])) == [5, 6, 7, 8, 9]
    assert counters(await get_events(sub, sid, after_time=ts[2], before_time=ts[7])) == \
        [3, 4, 5, 6]
    assert counters(await get_events(sub, sid, after_time=ts[9])) == []


async def test_get_events_only_for_own_subscription(router):
    owner = await connect(router, "websocket", "json")
    other = await connect(router, "rawsocket", "msgpack")
    pub = await connect(router, "websocket", "cbor")
    topic = uniq("com.example.replay.mine")
    await pub.publish(topic, "secret", options=ACK)
    subscription = await owner.subscribe(Inbox(), topic)
    assert counters(await get_events(owner, subscription.id)) == ["secret"]

    for caller, sid in ((other, subscription.id), (pub, subscription.id),
                        (owner, subscription.id + 1_000_000)):
        with pytest.raises(ApplicationError) as e:
            await get_events(caller, sid)
        assert e.value.error == "wamp.error.no_such_subscription", (caller, sid)

    # once the other session subscribes to the topic, it is its subscription too
    theirs = await other.subscribe(Inbox(), topic)
    assert theirs.id == subscription.id
    assert counters(await get_events(other, theirs.id)) == ["secret"]


@pytest.mark.deadline(20)
async def test_get_events_after_evicted_publication_reports_gap(router):
    """The store keeps 1,000 events per topic: resuming after an evicted publication
    returns what is retained, the first entry saying how many events are gone."""
    sub = await connect(router, "websocket", "msgpack")
    pub = await connect(router, "rawsocket", "cbor")
    topic = uniq("com.example.replay.gap")
    futures = [pub.publish(topic, i, options=ACK) for i in range(1005)]
    ids = [p.id for p in await asyncio.gather(*futures)]
    subscription = await sub.subscribe(Inbox(), topic)

    history = await get_events(sub, subscription.id, after_publication=ids[2])
    assert counters(history) == list(range(5, 1005))
    assert history[0]["_gap"] == 5
    assert [e["_pos"] for e in history] == list(range(6, 1006))
    assert all("_gap" not in e for e in history[1:])
    # a retained start has no gap
    history = await get_events(sub, subscription.id, after_publication=ids[1000])
    assert [(e["args"], e["_pos"], "_gap" in e) for e in history] == \
        [([i], i + 1, False) for i in range(1001, 1005)]


# ---------------------------------------------------------------- resume after a cut


class CuttableProxy:
    """TCP proxy between clients and the router; `cut()` resets every connection
    through it (both sides), as a broken network would, without touching the router."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> "CuttableProxy":
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.pairs.append((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            t = asyncio.create_task(self._pipe(src, dst))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _pipe(src, dst):
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        dst.transport.abort()

    def cut(self) -> None:
        for a, b in self.pairs:
            a.transport.abort()
            b.transport.abort()
        self.pairs.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()
        for t in list(self.tasks):
            t.cancel()


def via(proxy_ws: CuttableProxy, proxy_rs: CuttableProxy, router):
    """A stand-in for `router` whose listeners are the proxies."""
    return SimpleNamespace(
        ws_url=router.ws_url.replace(f":{router.ws_port}/", f":{proxy_ws.port}/"),
        ws_host="127.0.0.1", ws_port=proxy_ws.port,
        rs_host="127.0.0.1", rs_port=proxy_rs.port)


@spread_combos
@pytest.mark.deadline(20)
async def test_resume_after_cut_connection(router, combo):
    """The subscriber remembers the last publication it saw; the TCP connection is
    cut; it reconnects, subscribes again and asks for the events after that
    publication: seen + history + live is every counter once, in order, while the
    publisher keeps writing."""
    proxy_ws = await CuttableProxy(router.ws_host, router.ws_port).start()
    proxy_rs = await CuttableProxy(router.rs_host, router.rs_port).start()
    through = via(proxy_ws, proxy_rs, router)
    try:
        topic = uniq("com.example.replay.resume")
        first = await connect(through, *combo)
        before = Inbox("before the cut")
        await first.subscribe(before, topic, options=DETAILS)
        pub = await connect(router, *partner(combo))
        publisher = Publisher(pub, topic).start(10_000)

        await before.wait_for(200, timeout=5)
        proxy_ws.cut()
        proxy_rs.cut()
        await asyncio.wait_for(asyncio.shield(first.state.disconnected), 3)
        seen = counters(before.items)
        last = before.items[-1].details.publication

        second = await connect(through, *combo)
        after = Inbox("after reconnecting")
        subscription = await second.subscribe(after, topic, options=DETAILS)
        history = await get_events(second, subscription.id, after_publication=last)
        await after.wait_for(200, timeout=5)
        publisher.stop_at(len(publisher.ids) + 1)
        ids = await publisher.done()
        total = len(ids)
        await after.wait_until(lambda items: items[-1].args == (total - 1,), timeout=5,
                               what=f"live event {total - 1}")
    finally:
        await proxy_ws.close()
        await proxy_rs.close()

    assert seen == list(range(len(seen))), "the first connection saw a gap"
    assert history, "the publisher wrote nothing between the cut and the new subscribe?"
    resumed = counters(history) + counters(after.items)
    assert seen + resumed == list(range(total)), \
        f"seen up to {seen[-1]}, history {counters(history)[:3]}..., live from {after.items[0].args}"
    assert all("_gap" not in e for e in history)
    assert [e["publication"] for e in history] == ids[len(seen):len(seen) + len(history)]
    assert [e["_pos"] for e in history] == [c + 1 for c in counters(history)]
    assert [ev.details.publication for ev in after.items] == ids[len(seen) + len(history):]


# ---------------------------------------------------------------- event retention


@spread_combos
async def test_get_retained(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.replay.retained")
    retained = await pub.publish(topic, "state", {"v": 1},
                                 options=PublishOptions(acknowledge=True, retain=True))
    await pub.publish(topic, "change", options=ACK)

    with_retained, without = Inbox("get_retained"), Inbox("plain")
    s1 = await sub.subscribe(with_retained, topic,
                             options=SubscribeOptions(details=True, get_retained=True))
    (ev,) = await with_retained.wait_for(1)
    assert ev.args == ("state", {"v": 1})
    assert ev.details.retained is True
    assert ev.details.publication == retained.id
    assert ev.details.subscription.id == s1.id

    other = await connect(router, *partner(combo))
    await other.subscribe(without, topic, options=DETAILS)
    marker = await pub.publish(topic, "marker", options=ACK)
    await with_retained.wait_for(2)
    await without.wait_for(1)
    assert [(e.args, e.details.retained) for e in with_retained.items] == \
        [(("state", {"v": 1}), True), (("marker",), None)]
    assert [(e.args, e.details.retained, e.details.publication) for e in without.items] == \
        [(("marker",), None, marker.id)]


async def test_get_retained_wire_details(router):
    """The retained EVENT on the wire: `retained: true` and the event's position."""
    pub = await connect(router, "websocket", "json")
    topic = uniq("com.example.replay.retainedwire")
    await pub.publish(topic, "old", options=PublishOptions(acknowledge=True, retain=True))
    r = await pub.publish(topic, "new", options=PublishOptions(acknowledge=True, retain=True))
    await pub.publish(topic, "plain", options=ACK)
    c = RawSocketClient("cbor")
    await c.join(router)
    try:
        sub_id = await c.subscribe(topic, {"get_retained": True})
        assert await c.recv() == [EVENT, sub_id, r.id, {"retained": True, "_pos": 2}, ["new"]]
    finally:
        c.close()


# ---------------------------------------------------------------- _pos and _replay on the wire


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
async def test_replay_last_on_the_wire(router, serializer):
    """SUBSCRIBE.Options._replay {"last": 3}: SUBSCRIBED, the last 3 events marked
    _replayed, then live events; every EVENT carries its position. (autobahn-python's
    SubscribeOptions has no way to send _replay: this is the bare RawSocket client.)"""
    pub = await connect(router, "websocket", "msgpack")
    topic = uniq("com.example.replay.last")
    ids = [(await pub.publish(topic, i, options=ACK)).id for i in range(5)]
    c = RawSocketClient(serializer)
    await c.join(router)
    try:
        await c.send([SUBSCRIBE, 1, {"_replay": {"last": 3}}, topic])
        subscribed = await c.recv()
        assert subscribed[:2] == [SUBSCRIBED, 1]
        sid = subscribed[2]
        got = [await c.recv() for _ in range(3)]
        ids.append((await pub.publish(topic, 5, options=ACK)).id)
        got.append(await c.recv())
        assert got == [
            [EVENT, sid, ids[2], {"_pos": 3, "_replayed": True}, [2]],
            [EVENT, sid, ids[3], {"_pos": 4, "_replayed": True}, [3]],
            [EVENT, sid, ids[4], {"_pos": 5, "_replayed": True}, [4]],
            [EVENT, sid, ids[5], {"_pos": 6}, [5]],
        ]
    finally:
        c.close()


async def test_no_store_no_pos(auth_router):
    """A realm without [replay] (the shared interop config) stores nothing: no _pos,
    empty history, nothing retained."""
    pub = await connect(auth_router, "websocket", "json")
    topic = uniq("com.example.replay.nostore")
    await pub.publish(topic, "retained?", options=PublishOptions(acknowledge=True, retain=True))
    c = RawSocketClient("json")
    await c.join(auth_router)
    try:
        sub_id = await c.subscribe(topic, {"get_retained": True})
        p = await pub.publish(topic, 1, options=ACK)
        assert await c.recv() == [EVENT, sub_id, p.id, {}, [1]]
    finally:
        c.close()
    s = await connect(auth_router, "rawsocket", "msgpack")
    subscription = await s.subscribe(Inbox(), topic)
    assert await get_events(s, subscription.id) == []
    observe("realm without [replay]: PUBLISH retain=true is not retained (get_retained "
            "sends nothing), get_events returns []")
