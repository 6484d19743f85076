"""Durable topics (docs/replay.md, "Durable topics") seen by autobahn-python: events
acknowledged before a graceful restart (SIGTERM) or a `kill -9` of the router are all
there after it, exactly, in order, with their positions and publication ids, and
positions go on where they stopped; and a realm whose database cannot be reached at
start refuses publications to its durable topics (wamp.error.unavailable) while its
other topics work.

Each test has a fresh database (harness/postgres.py: ``$DATABASE_URL``'s server or the
session's throwaway cluster) and a router of its own, configured with one inline realm:
anonymous sessions allowed everything, ``containers..events`` durable,
``containers..logs`` kept in memory only.  History is read with
wamp.subscription.get_events (autobahn-python's EventDetails drops ``_pos``); the
position of a live EVENT is read on the wire with the bare RawSocket client.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from harness import observe
from harness.client import Inbox, connect
from harness.postgres import Postgres, PostgresError, psql
from harness.rawsocket import EVENT, RawSocketClient

# the helpers of the replay suite (tests/ is on sys.path: pytest's default import mode)
from test_replay import ACK, blank_timestamps, counters, get_events, history_entries

N = 500
TOPIC = "containers.c1.events"
LOGS = "containers.c1.logs"
UNAVAILABLE = "wamp.error.unavailable"

CONFIG = """\
[[realms]]
name = "realm1"
anonymous = "anonymous"

[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = {{ call = true, register = true, publish = true, subscribe = true }}

[realms.replay]
database_url = "{database_url}"

[[realms.replay.topics]]
uri = "containers..events"
match = "wildcard"
max_events = 100000
durable = true

[[realms.replay.topics]]
uri = "containers..logs"
match = "wildcard"
max_events = 1000
"""


def metrics(router) -> str:
    with urllib.request.urlopen(f"http://{router.ws_host}:{router.ws_port}/metrics",
                                timeout=5) as r:
        return r.read().decode()


def metric(router, name: str) -> float:
    """The value of the metric line starting with ``name`` (labels included)."""
    text = metrics(router)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line[len(name) + 1:])
    raise AssertionError(f"no {name} on /metrics:\n" +
                         "\n".join(l for l in text.splitlines() if "durable" in l))


ONLINE = 'switchyard_replay_durable_online{realm="realm1"}'
REFUSED = "switchyard_publications_refused_offline_total"
COMMITTED = 'switchyard_replay_durable_committed_events{realm="realm1"}'


@pytest.fixture
def database():
    """A fresh database's URL (dropped afterwards on a $DATABASE_URL server)."""
    try:
        pg = Postgres.shared()
        url = pg.create_database()
    except PostgresError as e:
        pytest.fail(f"PostgreSQL: {e}", pytrace=False)
    yield url
    pg.drop_database(url)


def closed_port() -> int:
    """A port nothing listens on (bound a moment ago, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def publish_counters(router, first: int, n: int) -> list[int]:
    """Publishes counters first..first+n-1 to TOPIC with acknowledge, all in flight at
    once; every one must be acknowledged. Returns the publication ids, in order."""
    pub = await connect(router, "rawsocket", "msgpack")
    published = await asyncio.gather(*(pub.publish(TOPIC, c, options=ACK)
                                       for c in range(first, first + n)))
    ids = [p.id for p in published]
    assert len(set(ids)) == n
    await pub.close()
    return ids


async def history(router, transport="websocket", serializer="json", topic=TOPIC):
    """A new session subscribes to `topic`; returns (subscription id, get_events())."""
    s = await connect(router, transport, serializer)
    subscription = await s.subscribe(Inbox(), topic)
    return subscription.id, await get_events(s, subscription.id)


async def restart(router, how: str) -> None:
    """Takes the router down (SIGTERM, waiting for it to exit, or SIGKILL) and starts it
    again with the same configuration, on the same database."""
    if how == "sigterm":
        router.terminate()
        code = await asyncio.get_running_loop().run_in_executor(None, router.wait, 5)
        assert code == 0, f"exit code {code} on SIGTERM:\n{router.stderr_tail()}"
        router.stop()  # exited: closes its files
    else:
        router.kill()  # SIGKILL, waited for
        assert router.proc.returncode == -9
    router.start()


@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
@pytest.mark.deadline(15)
async def test_acknowledged_events_survive_restart(new_router, database, how):
    """N acknowledged events, then the router goes down (SIGTERM, or kill -9) and comes
    back on the same database: a new subscription's get_events is exactly the N events
    (publication ids, positions 1..N, payloads, timestamps as before); the next event is
    position N+1, live on the wire and in a later subscription's history."""
    router = new_router("durable", config=CONFIG.format(database_url=database))
    assert metric(router, ONLINE) == 1
    ids = await publish_counters(router, 0, N)
    s = await connect(router, "websocket", "json")
    sid = (await s.subscribe(Inbox(), TOPIC)).id
    before = await get_events(s, sid)
    assert blank_timestamps(before) == history_entries(sid, TOPIC, ids, 0, N)
    assert metric(router, COMMITTED) == N

    await restart(router, how)
    if how == "sigterm":
        assert s.state.left.result().reason == "wamp.close.system_shutdown"
    assert metric(router, ONLINE) == 1
    sid, after = await history(router, "rawsocket", "cbor")
    assert blank_timestamps(after) == history_entries(sid, TOPIC, ids, 0, N)
    assert after == [dict(e, subscription=sid) for e in before], \
        "the restored history differs from the one before the restart (timestamps?)"

    # positions go on: live on the wire ...
    wire = RawSocketClient("json")
    await wire.join(router)
    try:
        wire_sid = await wire.subscribe(TOPIC)
        (next_id,) = await publish_counters(router, N, 1)
        assert await wire.recv() == [EVENT, wire_sid, next_id, {"_pos": N + 1}, [N]]
    finally:
        wire.close()
    # ... and in the history of a subscription made after it
    sid, later = await history(router, "websocket", "msgpack")
    assert blank_timestamps(later) == history_entries(sid, TOPIC, ids + [next_id], 0, N + 1)
    assert metric(router, COMMITTED) == 1  # since this start
    assert int(psql(database, "select count(*) from replay_events")) == N + 1


@pytest.mark.deadline(15)
async def test_unreachable_database_refuses_durable_topics_only(new_router):
    """The database is a closed port: the router starts anyway; an acknowledged publish
    to a durable topic is refused with wamp.error.unavailable and an unacknowledged one
    is not delivered either, while a memory-stored and an unstored topic of the same
    realm work; /metrics says the durable store is offline."""
    url = f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere"
    started = time.monotonic()
    router = new_router("durable-offline", config=CONFIG.format(database_url=url))
    observe(f"database unreachable (closed port): the ready line came "
            f"{time.monotonic() - started:.1f}s after the start (connection refused at once)")
    assert metric(router, ONLINE) == 0
    assert metric(router, REFUSED) == 0

    sub = await connect(router, "websocket", "cbor")
    events, logs = Inbox("events"), Inbox("logs")
    await sub.subscribe(events, TOPIC)
    await sub.subscribe(logs, LOGS)
    pub = await connect(router, "rawsocket", "json")

    with pytest.raises(ApplicationError) as e:
        await pub.publish(TOPIC, "durable", options=ACK)
    assert e.value.error == UNAVAILABLE, e.value
    pub.publish(TOPIC, "durable, unacknowledged")
    logged = await pub.publish(LOGS, "memory", options=ACK)
    plain = await pub.publish("com.example.durable.plain", "unstored", options=ACK)
    assert logged.id != plain.id
    (ev,) = await logs.wait_for(1)
    assert ev.args == ("memory",)
    await asyncio.sleep(0.2)
    assert events.items == [], "a refused publication was delivered"

    # the history of a subscription made after the publications
    _, later = await history(router, "websocket", "msgpack", LOGS)
    assert counters(later) == ["memory"]
    assert metric(router, ONLINE) == 0
    assert metric(router, REFUSED) == 2
