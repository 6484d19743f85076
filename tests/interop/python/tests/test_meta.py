"""The meta API with autobahn-python: session, subscription and registration meta
events and procedures, killing sessions, testaments, and who may use them on the
workbench realm.

Values are asserted exactly.  Tests that compare whole lists (counts, `list`, the order
of meta events) either run on a dedicated router (`new_router`, about 20 ms to start)
or only look at events about the sessions they opened themselves: the shared router
may still be closing the sessions of the test before.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions

from conftest import AUTH_CONFIG
from harness import SPREAD, combo_id, partner, spread_combos, uniq
from harness.client import Inbox, connect
from harness.workbench import SERVICE_TICKETS

ACK = PublishOptions(acknowledge=True)
DETAILS = SubscribeOptions(details=True)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")

NO_SUCH_SESSION = "wamp.error.no_such_session"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NOT_AUTHORIZED = "wamp.error.not_authorized"

SUB_EVENTS = ("wamp.subscription.on_create", "wamp.subscription.on_subscribe",
              "wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete")
REG_EVENTS = ("wamp.registration.on_create", "wamp.registration.on_register",
              "wamp.registration.on_unregister", "wamp.registration.on_delete")


# --------------------------------------------------------------------------- helpers


class Recorder:
    """Subscribes sessions to several topics and records every event, in the order of
    arrival, as (topic, args, kwargs)."""

    def __init__(self, name: str = "meta"):
        self.inbox = Inbox(name)

    async def watch(self, session, *topics: str, options=None) -> None:
        for topic in topics:
            await session.subscribe(self._handler(topic), topic, options=options)

    def _handler(self, topic: str):
        def on(*args, **kwargs):
            kwargs.pop("details", None)
            self.inbox(topic, *args, **kwargs)
        return on

    @staticmethod
    def _about(item, sessions) -> bool:
        topic, *args = item.args
        if not topic.startswith("wamp."):
            return True  # a testament: its topic is the test's own
        first = args[0] if args else None
        if isinstance(first, dict):
            first = first.get("session")
        return first in sessions

    def events(self, *sessions: int) -> list[tuple]:
        """(topic, *args) of every event about one of ``sessions`` (and of every
        non-meta event)."""
        return [item.args for item in self.inbox.items if self._about(item, sessions)]

    def kwargs_of(self, topic: str) -> list[dict]:
        return [item.kwargs for item in self.inbox.items if item.args[0] == topic]

    async def until(self, n: int, *sessions: int, timeout: float = 3.0) -> list[tuple]:
        await self.inbox.wait_until(lambda _: len(self.events(*sessions)) >= n, timeout,
                                    f"{n} event(s) about {sessions}")
        return self.events(*sessions)


async def error_of(awaitable) -> ApplicationError:
    with pytest.raises(ApplicationError) as ei:
        await awaitable
    return ei.value


def peer_of(session) -> str:
    host, port = session.state.protocol.transport.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


def assert_created(value: str) -> None:
    assert RFC3339.match(value), f"created {value!r} is not RFC 3339 UTC"
    created = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - created) < timedelta(seconds=10), value


async def gone(session, timeout: float = 3.0):
    """Waits until the session's transport closed; returns autobahn's CloseDetails."""
    await asyncio.wait_for(asyncio.shield(session.state.disconnected), timeout)
    return session.state.left.result() if session.state.left.done() else None


def goodbyes(session) -> list[tuple]:
    return [(m.reason, m.message) for m in session.state.received if isinstance(m, message.Goodbye)]


def details_of(session, transport: str) -> dict:
    w = session.state.welcome
    return {"session": session.id, "authid": w.authid, "authrole": w.authrole,
            "authmethod": w.authmethod, "authprovider": w.authprovider,
            "transport": {"type": transport, "peer": peer_of(session), "is_secure": False}}


# --------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("how", ["goodbye", "abort"])
@spread_combos
async def test_on_join_get_and_on_leave(router, combo, how):
    watcher = await connect(router, *partner(combo))
    rec = Recorder()
    await rec.watch(watcher, "wamp.session.on_join", "wamp.session.on_leave")
    s = await connect(router, *combo)
    sid = s.id  # autobahn forgets it on leaving
    expected = details_of(s, combo[0])
    assert expected["authid"] == f"anonymous-{sid}"
    assert (expected["authrole"], expected["authmethod"], expected["authprovider"]) == (
        "anonymous", "anonymous", "static")
    assert await rec.until(1, s.id) == [("wamp.session.on_join", expected)]
    assert await watcher.call("wamp.session.get", s.id) == expected
    if how == "goodbye":
        s.leave()
    else:
        s.abort_transport()
    assert await rec.until(2, sid) == [
        ("wamp.session.on_join", expected),
        ("wamp.session.on_leave", sid, expected["authid"], "anonymous")]
    e = await error_of(watcher.call("wamp.session.get", sid))
    assert e.error == NO_SUCH_SESSION


async def test_session_details_over_the_unix_socket(unix_router):
    watcher = await connect(unix_router, "websocket", "json")
    rec = Recorder()
    await rec.watch(watcher, "wamp.session.on_join")
    s = await connect(unix_router, "unix", "cbor")
    expected = {"session": s.id, "authid": f"anonymous-{s.id}", "authrole": "anonymous",
                "authmethod": "anonymous", "authprovider": "static",
                "transport": {"type": "rawsocket-unix", "peer": "unix", "is_secure": False}}
    assert await rec.until(1, s.id) == [("wamp.session.on_join", expected)]
    assert await watcher.call("wamp.session.get", s.id) == expected


async def test_on_join_of_a_ticket_session(new_router):
    r = new_router("meta-auth", config=AUTH_CONFIG)
    watcher = await connect(r, "websocket", "msgpack")
    rec = Recorder()
    await rec.watch(watcher, "wamp.session.on_join")
    alice = await connect(r, "rawsocket", "cbor", authid="alice", ticket="alice-secret")
    expected = {"session": alice.id, "authid": "alice", "authrole": "user", "authmethod": "ticket",
                "authprovider": "static",
                "transport": {"type": "rawsocket", "peer": peer_of(alice), "is_secure": False}}
    assert details_of(alice, "rawsocket") == expected
    assert await rec.until(1, alice.id) == [("wamp.session.on_join", expected)]
    assert await watcher.call("wamp.session.get", alice.id) == expected


async def test_count_and_list_with_filter_authroles(new_router):
    r = new_router("meta-count", config=AUTH_CONFIG)
    anon = await connect(r, "websocket", "json")
    alice1 = await connect(r, "rawsocket", "msgpack", authid="alice", ticket="alice-secret")
    alice2 = await connect(r, "websocket", "cbor", authid="alice", ticket="alice-secret")
    bob = await connect(r, "rawsocket", "json", authid="bob", ticket="bob-secret")
    everyone = sorted([anon.id, alice1.id, alice2.id, bob.id])
    assert await anon.call("wamp.session.count") == 4
    assert sorted(await anon.call("wamp.session.list")) == everyone
    assert await anon.call("wamp.session.count", None) == 4
    assert await anon.call("wamp.session.count", ["user"]) == 2
    assert sorted(await anon.call("wamp.session.list", ["user"])) == sorted([alice1.id, alice2.id])
    assert await anon.call("wamp.session.count", ["reader", "anonymous"]) == 2
    assert sorted(await anon.call("wamp.session.list", ["reader", "anonymous"])) == sorted(
        [bob.id, anon.id])
    assert await anon.call("wamp.session.count", ["nobody"]) == 0
    assert await anon.call("wamp.session.list", ["nobody"]) == []
    assert await anon.call("wamp.session.count", []) == 0
    # keyword form
    assert await anon.call("wamp.session.count", filter_authroles=["user"]) == 2
    await alice2.close()
    assert await alice1.call("wamp.session.count", ["user"]) == 1
    assert await alice1.call("wamp.session.list", ["user"]) == [alice1.id]
    e = await error_of(anon.call("wamp.session.count", "user"))
    assert e.error == INVALID_ARGUMENT
    # bob (role reader) may only call com.example.public.*
    e = await error_of(bob.call("wamp.session.count"))
    assert e.error == NOT_AUTHORIZED


async def test_get_unknown_session(router):
    s = await connect(router, "websocket", "json")
    e = await error_of(s.call("wamp.session.get", 4242))
    assert e.error == NO_SUCH_SESSION
    e = await error_of(s.call("wamp.session.get", "x"))
    assert e.error == INVALID_ARGUMENT
    assert (await s.call("wamp.session.get", s.id))["session"] == s.id


TWO_REALMS = """
[[realms]]
name = "realm1"
anonymous = "anonymous"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }

[[realms]]
name = "realm2"
anonymous = "anonymous"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
"""


async def test_meta_api_stays_in_its_realm(new_router):
    r = new_router("two-realms", config=TWO_REALMS)
    watcher = await connect(r, "websocket", "json")
    rec = Recorder("realm1")
    await rec.watch(watcher, "wamp.session.on_join", "wamp.session.on_leave",
                    "wamp.subscription.on_create", "wamp.registration.on_create")
    other = await connect(r, "rawsocket", "cbor", realm="realm2")
    other_id = other.id
    await other.subscribe(Inbox(), "com.example.elsewhere")
    await other.register(lambda: None, "com.example.elsewhere")
    await other.close()
    # a session of realm1 after it: its events come, the other realm's never came
    mine = await connect(r, "websocket", "msgpack")
    mine_id = mine.id
    await mine.close()
    await rec.until(2, mine_id)
    assert [item.args[0] for item in rec.inbox.items if rec._about(item, {other_id})] == []
    assert await watcher.call("wamp.session.list") == [watcher.id]
    e = await error_of(watcher.call("wamp.session.kill", other_id))
    assert e.error == NO_SUCH_SESSION
    assert await watcher.call("wamp.subscription.lookup", "com.example.elsewhere") is None
    assert await watcher.call("wamp.registration.list") == {"exact": [], "prefix": [], "wildcard": []}


async def test_clients_cannot_publish_or_register_meta_uris(router):
    s = await connect(router, "websocket", "json")
    rec = Recorder("spoof")
    await rec.watch(s, "wamp.session.on_join")
    e = await error_of(s.publish("wamp.session.on_join", {"session": 1}, options=ACK))
    assert e.error == INVALID_URI
    e = await error_of(s.register(lambda: 0, "wamp.session.count"))
    assert e.error == INVALID_URI
    e = await error_of(s.register(lambda: 0, "wamp.my.procedure"))
    assert e.error == INVALID_URI
    e = await error_of(s.call("wamp.session.add_testament", "wamp.session.on_leave", [1], {}))
    assert e.error == INVALID_URI
    assert isinstance(await s.call("wamp.session.count"), int)
    assert [i for i in rec.inbox.items if i.args[1] == {"session": 1}] == []


# --------------------------------------------------------------------------- kill


@spread_combos
async def test_kill_with_reason_and_message(router, combo):
    killer = await connect(router, *partner(combo))
    victim = await connect(router, *combo)
    victim_id = victim.id
    res = await killer.call("wamp.session.kill", victim_id, reason="com.example.close.evicted",
                            message="make room")
    assert res is None
    details = await gone(victim)
    assert (details.reason, details.message) == ("com.example.close.evicted", "make room")
    assert goodbyes(victim) == [("com.example.close.evicted", "make room")]
    e = await error_of(killer.call("wamp.session.get", victim_id))
    assert e.error == NO_SUCH_SESSION
    assert killer.is_attached()


async def test_kill_defaults_to_close_normal_without_message(router):
    killer = await connect(router, "rawsocket", "cbor")
    victim = await connect(router, "websocket", "json")
    assert await killer.call("wamp.session.kill", victim.id) is None
    details = await gone(victim)
    assert (details.reason, details.message) == ("wamp.close.normal", None)
    assert goodbyes(victim) == [("wamp.close.normal", None)]


async def test_kill_refusals(router):
    killer = await connect(router, "websocket", "msgpack")
    victim = await connect(router, "rawsocket", "json")
    e = await error_of(killer.call("wamp.session.kill", killer.id))
    assert e.error == NO_SUCH_SESSION
    e = await error_of(killer.call("wamp.session.kill", 4242))
    assert e.error == NO_SUCH_SESSION
    for bad in ["not a uri!", "", "a..b", 7]:
        e = await error_of(killer.call("wamp.session.kill", victim.id, reason=bad))
        assert e.error == INVALID_URI, bad
    for procedure in ["wamp.session.kill_by_authid", "wamp.session.kill_by_authrole"]:
        e = await error_of(killer.call(procedure, "anonymous", reason="bad reason"))
        assert e.error == INVALID_URI
    e = await error_of(killer.call("wamp.session.kill_all", reason="bad reason"))
    assert e.error == INVALID_URI
    e = await error_of(killer.call("wamp.session.kill", victim.id, message=7))
    assert e.error == INVALID_ARGUMENT
    # nobody was killed
    assert killer.is_attached() and victim.is_attached()
    assert (await killer.call("wamp.session.get", victim.id))["session"] == victim.id
    assert goodbyes(victim) == []


async def test_kill_by_authid_authrole_and_all(new_router):
    r = new_router("meta-kill", config=AUTH_CONFIG)
    anon1 = await connect(r, "websocket", "json")
    anon2 = await connect(r, "rawsocket", "msgpack")
    alice1 = await connect(r, "websocket", "cbor", authid="alice", ticket="alice-secret")
    alice2 = await connect(r, "rawsocket", "cbor", authid="alice", ticket="alice-secret")
    bob = await connect(r, "websocket", "msgpack", authid="bob", ticket="bob-secret")

    # alice1 kills every alice but herself
    assert await alice1.call("wamp.session.kill_by_authid", "alice", reason="com.example.dup",
                             message="one alice is enough") == 1
    assert ((await gone(alice2)).reason, goodbyes(alice2)) == (
        "com.example.dup", [("com.example.dup", "one alice is enough")])
    assert await anon1.call("wamp.session.kill_by_authid", "nobody") == 0
    assert await anon1.call("wamp.session.kill_by_authrole", "reader") == 1
    assert goodbyes(await _gone_session(bob)) == [("wamp.close.normal", None)]
    # anon1 has role anonymous too: only anon2 goes
    assert await anon1.call("wamp.session.kill_by_authrole", "anonymous",
                            reason="wamp.close.system_shutdown") == 1
    assert goodbyes(await _gone_session(anon2)) == [("wamp.close.system_shutdown", None)]
    assert sorted(await anon1.call("wamp.session.list")) == sorted([anon1.id, alice1.id])
    assert await anon1.call("wamp.session.kill_all", message="closing time") == 1
    assert goodbyes(await _gone_session(alice1)) == [("wamp.close.normal", "closing time")]
    assert await anon1.call("wamp.session.list") == [anon1.id]
    assert await anon1.call("wamp.session.kill_all") == 0
    assert anon1.is_attached()


async def _gone_session(session):
    await gone(session)
    return session


# --------------------------------------------------------------------------- subscriptions


@spread_combos
async def test_subscription_meta_events(router, combo):
    watcher = await connect(router, "websocket", "json")
    rec = Recorder("subscription events")
    await rec.watch(watcher, *SUB_EVENTS)
    s1 = await connect(router, *combo)
    s2 = await connect(router, *partner(combo))
    topic = uniq("com.example.meta.sub")

    sub1 = await s1.subscribe(Inbox(), topic)
    got = await rec.until(2, s1.id, s2.id)
    on_create = got[0]
    assert on_create[:2] == ("wamp.subscription.on_create", s1.id)
    details = on_create[2]
    assert set(details) == {"id", "created", "uri", "match"}
    assert (details["id"], details["uri"], details["match"]) == (sub1.id, topic, "exact")
    assert_created(details["created"])
    sid = sub1.id
    sub2 = await s2.subscribe(Inbox(), topic)
    assert sub2.id == sid
    await rec.until(3, s1.id, s2.id)
    await sub1.unsubscribe()
    await rec.until(4, s1.id, s2.id)
    await sub2.unsubscribe()
    assert await rec.until(6, s1.id, s2.id) == [
        ("wamp.subscription.on_create", s1.id, details),
        ("wamp.subscription.on_subscribe", s1.id, sid),
        ("wamp.subscription.on_subscribe", s2.id, sid),
        ("wamp.subscription.on_unsubscribe", s1.id, sid),
        ("wamp.subscription.on_unsubscribe", s2.id, sid),
        ("wamp.subscription.on_delete", s2.id, sid)]

    # pattern subscriptions carry their match policy
    # SUBSCRIBED reaches s1 before the router publishes the events of its SUBSCRIBE: wait
    # for them before s2 acts (events of two sessions come in no particular order)
    prefix = await s1.subscribe(Inbox(), topic + ".", options=SubscribeOptions(match="prefix"))
    await rec.until(8, s1.id, s2.id)
    wildcard = await s2.subscribe(Inbox(), topic + "..x", options=SubscribeOptions(match="wildcard"))
    got = await rec.until(10, s1.id, s2.id)
    assert [(e[0], e[1], e[2] if isinstance(e[2], int) else
             (e[2]["id"], e[2]["uri"], e[2]["match"])) for e in got[6:]] == [
        ("wamp.subscription.on_create", s1.id, (prefix.id, topic + ".", "prefix")),
        ("wamp.subscription.on_subscribe", s1.id, prefix.id),
        ("wamp.subscription.on_create", s2.id, (wildcard.id, topic + "..x", "wildcard")),
        ("wamp.subscription.on_subscribe", s2.id, wildcard.id)]


async def test_subscription_procedures(new_router):
    r = new_router("meta-subs")
    caller = await connect(r, "websocket", "json")
    s1 = await connect(r, "rawsocket", "msgpack")
    s2 = await connect(r, "websocket", "cbor")
    topic = "com.example.meta.a.b"
    exact1 = await s1.subscribe(Inbox(), topic)
    exact2 = await s2.subscribe(Inbox(), topic)
    assert exact1.id == exact2.id
    prefix = await s1.subscribe(Inbox(), "com.example.meta.", options=SubscribeOptions(match="prefix"))
    wildcard = await s2.subscribe(Inbox(), "com.example..a.b", options=SubscribeOptions(match="wildcard"))
    other = await s2.subscribe(Inbox(), "com.example.other")

    assert _sorted_lists(await caller.call("wamp.subscription.list")) == {
        "exact": sorted([exact1.id, other.id]), "prefix": [prefix.id], "wildcard": [wildcard.id]}

    assert await caller.call("wamp.subscription.lookup", topic) == exact1.id
    assert await caller.call("wamp.subscription.lookup", topic, {"match": "exact"}) == exact1.id
    assert await caller.call("wamp.subscription.lookup", "com.example.meta.",
                             {"match": "prefix"}) == prefix.id
    assert await caller.call("wamp.subscription.lookup", "com.example.meta.") is None
    assert await caller.call("wamp.subscription.lookup", "com.example..a.b",
                             {"match": "wildcard"}) == wildcard.id
    assert await caller.call("wamp.subscription.lookup", "com.example.nothing") is None
    e = await error_of(caller.call("wamp.subscription.lookup", topic, {"match": "fuzzy"}))
    assert e.error == INVALID_ARGUMENT

    assert sorted(await caller.call("wamp.subscription.match", topic)) == sorted(
        [exact1.id, prefix.id, wildcard.id])
    assert await caller.call("wamp.subscription.match", "com.example.meta.zzz") == [prefix.id]
    assert await caller.call("wamp.subscription.match", "com.example.x.a.b") == [wildcard.id]
    assert await caller.call("wamp.subscription.match", "com.example.nothing") is None

    details = await caller.call("wamp.subscription.get", exact1.id)
    assert set(details) == {"id", "created", "uri", "match"}
    assert (details["id"], details["uri"], details["match"]) == (exact1.id, topic, "exact")
    assert_created(details["created"])
    wd = await caller.call("wamp.subscription.get", wildcard.id)
    assert (wd["id"], wd["uri"], wd["match"]) == (wildcard.id, "com.example..a.b", "wildcard")

    assert sorted(await caller.call("wamp.subscription.list_subscribers", exact1.id)) == sorted(
        [s1.id, s2.id])
    assert await caller.call("wamp.subscription.count_subscribers", exact1.id) == 2
    assert await caller.call("wamp.subscription.list_subscribers", prefix.id) == [s1.id]
    assert await caller.call("wamp.subscription.count_subscribers", prefix.id) == 1

    for procedure in ["wamp.subscription.get", "wamp.subscription.list_subscribers",
                      "wamp.subscription.count_subscribers"]:
        e = await error_of(caller.call(procedure, 987654321))
        assert e.error == NO_SUCH_SUBSCRIPTION, procedure

    await exact1.unsubscribe()
    assert await caller.call("wamp.subscription.list_subscribers", exact2.id) == [s2.id]
    await exact2.unsubscribe()
    e = await error_of(caller.call("wamp.subscription.get", exact2.id))
    assert e.error == NO_SUCH_SUBSCRIPTION
    assert await caller.call("wamp.subscription.lookup", topic) is None
    assert _sorted_lists(await caller.call("wamp.subscription.list")) == {
        "exact": [other.id], "prefix": [prefix.id], "wildcard": [wildcard.id]}


def _sorted_lists(d: dict) -> dict:
    return {k: sorted(v) for k, v in d.items()}


# --------------------------------------------------------------------------- registrations


@spread_combos
async def test_registration_meta_events(router, combo):
    watcher = await connect(router, "rawsocket", "json")
    rec = Recorder("registration events")
    await rec.watch(watcher, *REG_EVENTS)
    c1 = await connect(router, *combo)
    c2 = await connect(router, *partner(combo))
    proc = uniq("com.example.meta.reg")
    shared = RegisterOptions(invoke="roundrobin")

    reg1 = await c1.register(lambda: 1, proc, options=shared)
    got = await rec.until(2, c1.id, c2.id)
    assert got[0][:2] == ("wamp.registration.on_create", c1.id)
    details = got[0][2]
    assert set(details) == {"id", "created", "uri", "match", "invoke"}
    assert (details["id"], details["uri"], details["match"], details["invoke"]) == (
        reg1.id, proc, "exact", "roundrobin")
    assert_created(details["created"])
    rid = reg1.id
    reg2 = await c2.register(lambda: 2, proc, options=shared)
    assert reg2.id == rid
    await rec.until(3, c1.id, c2.id)
    await reg1.unregister()
    await rec.until(4, c1.id, c2.id)
    await reg2.unregister()
    assert await rec.until(6, c1.id, c2.id) == [
        ("wamp.registration.on_create", c1.id, details),
        ("wamp.registration.on_register", c1.id, rid),
        ("wamp.registration.on_register", c2.id, rid),
        ("wamp.registration.on_unregister", c1.id, rid),
        ("wamp.registration.on_unregister", c2.id, rid),
        ("wamp.registration.on_delete", c2.id, rid)]

    single = await c1.register(lambda: 0, proc + ".single")
    await rec.until(8, c1.id, c2.id)
    pattern = await c2.register(lambda: 0, proc + "..x",
                                options=RegisterOptions(match="wildcard", invoke="last"))
    got = await rec.until(10, c1.id, c2.id)
    summary = [(e[0], e[1], e[2] if isinstance(e[2], int) else
                (e[2]["id"], e[2]["uri"], e[2]["match"], e[2]["invoke"])) for e in got[6:]]
    assert summary == [
        ("wamp.registration.on_create", c1.id, (single.id, proc + ".single", "exact", "single")),
        ("wamp.registration.on_register", c1.id, single.id),
        ("wamp.registration.on_create", c2.id, (pattern.id, proc + "..x", "wildcard", "last")),
        ("wamp.registration.on_register", c2.id, pattern.id)]


async def test_registration_procedures(new_router):
    r = new_router("meta-regs")
    caller = await connect(r, "websocket", "json")
    c1 = await connect(r, "rawsocket", "cbor")
    c2 = await connect(r, "websocket", "msgpack")
    c3 = await connect(r, "rawsocket", "json")
    exact = await c1.register(lambda: "exact", "com.example.meta.a.b.c")
    prefix = await c1.register(lambda: "prefix", "com.example.meta.a",
                               options=RegisterOptions(match="prefix"))
    longer = await c2.register(lambda: "longer", "com.example.meta.a.b",
                               options=RegisterOptions(match="prefix"))
    wildcard = await c2.register(lambda: "wildcard", "com.example..a.b.c",
                                 options=RegisterOptions(match="wildcard"))
    rr = RegisterOptions(invoke="roundrobin")
    shared = [await c.register(lambda: "shared", "com.example.shared", options=rr)
              for c in (c3, c1, c2)]
    assert len({s.id for s in shared}) == 1
    sid = shared[0].id

    assert _sorted_lists(await caller.call("wamp.registration.list")) == {
        "exact": sorted([exact.id, sid]), "prefix": sorted([prefix.id, longer.id]),
        "wildcard": [wildcard.id]}
    assert await caller.call("wamp.registration.lookup", "com.example.meta.a.b.c") == exact.id
    assert await caller.call("wamp.registration.lookup", "com.example.meta.a",
                             {"match": "prefix"}) == prefix.id
    assert await caller.call("wamp.registration.lookup", "com.example.meta.a") is None
    assert await caller.call("wamp.registration.lookup", "com.example..a.b.c",
                             {"match": "wildcard"}) == wildcard.id
    assert await caller.call("wamp.registration.lookup", "com.example.none") is None

    # match: the one registration a call would go to
    assert await caller.call("wamp.registration.match", "com.example.meta.a.b.c") == exact.id
    assert await caller.call("wamp.registration.match", "com.example.meta.a.b.d") == longer.id
    assert await caller.call("wamp.registration.match", "com.example.meta.a.x") == prefix.id
    assert await caller.call("wamp.registration.match", "com.example.x.a.b.c") == wildcard.id
    assert await caller.call("wamp.registration.match", "com.example.none") is None
    assert await caller.call("com.example.meta.a.b.d") == "longer"

    details = await caller.call("wamp.registration.get", sid)
    assert set(details) == {"id", "created", "uri", "match", "invoke"}
    assert (details["id"], details["uri"], details["match"], details["invoke"]) == (
        sid, "com.example.shared", "exact", "roundrobin")
    assert_created(details["created"])
    pd = await caller.call("wamp.registration.get", longer.id)
    assert (pd["id"], pd["uri"], pd["match"], pd["invoke"]) == (
        longer.id, "com.example.meta.a.b", "prefix", "single")

    # callees in the order they registered
    assert await caller.call("wamp.registration.list_callees", sid) == [c3.id, c1.id, c2.id]
    assert await caller.call("wamp.registration.count_callees", sid) == 3
    assert await caller.call("wamp.registration.list_callees", exact.id) == [c1.id]
    assert await caller.call("wamp.registration.count_callees", exact.id) == 1
    for procedure in ["wamp.registration.get", "wamp.registration.list_callees",
                      "wamp.registration.count_callees"]:
        e = await error_of(caller.call(procedure, 987654321))
        assert e.error == NO_SUCH_REGISTRATION, procedure

    await shared[1].unregister()
    assert await caller.call("wamp.registration.list_callees", sid) == [c3.id, c2.id]
    await c2.close()
    assert await caller.call("wamp.registration.list_callees", sid) == [c3.id]
    assert await caller.call("wamp.registration.match", "com.example.x.a.b.c") is None
    assert await caller.call("wamp.registration.match", "com.example.meta.a.b.d") == prefix.id
    e = await error_of(caller.call("wamp.registration.get", longer.id))
    assert e.error == NO_SUCH_REGISTRATION


# --------------------------------------------------------------------------- leaving


LEAVE_CASES = [("goodbye", ("websocket", "json")), ("abort", ("rawsocket", "msgpack")),
               ("abort", ("websocket", "cbor")), ("kill", ("rawsocket", "cbor"))]


@pytest.mark.parametrize("how,combo", LEAVE_CASES,
                         ids=[f"{h}-{combo_id(c)}" for h, c in LEAVE_CASES])
async def test_what_a_leaving_session_sets_off_in_order(router, how, combo):
    """A session leaves (GOODBYE, TCP cut, killed): its subscription goes
    (on_unsubscribe, on_delete), then its registration (on_unregister, on_delete),
    then its testaments (detached first), then on_leave."""
    watcher = await connect(router, *partner(combo))
    s = await connect(router, *combo)
    sid = s.id
    topic, will = uniq("com.example.meta.held"), uniq("com.example.meta.will")
    rec = Recorder("leaving")
    await rec.watch(watcher, "wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete",
                    "wamp.registration.on_unregister", "wamp.registration.on_delete", will,
                    "wamp.session.on_leave")
    sub = await s.subscribe(Inbox(), topic)
    reg = await s.register(lambda: None, topic)
    assert await s.call("wamp.session.add_testament", will, ["destroyed"], {"n": 1}) is None
    assert await s.call("wamp.session.add_testament", will, ["detached"], {"n": 2},
                        scope="detached") is None
    if how == "goodbye":
        s.leave()
    elif how == "abort":
        s.abort_transport()
    else:
        assert await watcher.call("wamp.session.kill", sid) is None
    assert await rec.until(7, sid) == [
        ("wamp.subscription.on_unsubscribe", sid, sub.id),
        ("wamp.subscription.on_delete", sid, sub.id),
        ("wamp.registration.on_unregister", sid, reg.id),
        ("wamp.registration.on_delete", sid, reg.id),
        (will, "detached"),
        (will, "destroyed"),
        ("wamp.session.on_leave", sid, f"anonymous-{sid}", "anonymous")]
    assert rec.kwargs_of(will) == [{"n": 2}, {"n": 1}]


# --------------------------------------------------------------------------- testaments


ARGS = [1, "two", 3.25, None, True, [1, [2]], {"a": {"b": None}}]
KWARGS = {"name": "x", "n": -7, "list": [1, 2, 3], "obj": {"k": [False]}}


@spread_combos
async def test_testament_published_when_the_connection_is_cut(router, combo):
    s = await connect(router, *combo)
    sub = await connect(router, *partner(combo))
    topic = uniq("com.example.will")
    inbox = Inbox("testament")
    await sub.subscribe(inbox, topic, options=DETAILS)
    assert await s.call("wamp.session.add_testament", topic, ARGS, KWARGS) is None
    # the session is alive: nothing published yet
    probe = Inbox("probe")
    await sub.subscribe(probe, topic + ".probe")
    await s.publish(topic + ".probe", options=ACK)
    await probe.wait_for(1)
    assert len(inbox) == 0
    s.abort_transport()
    (ev,) = await inbox.wait_for(1)
    assert (list(ev.args), ev.kwargs) == (ARGS, KWARGS)
    assert ev.details.topic == topic
    # the anonymous role does not disclose publishers
    assert ev.details.publisher is None


async def test_testament_publish_options(router):
    s = await connect(router, "rawsocket", "cbor")
    sid = s.id
    w1 = await connect(router, "websocket", "json")
    w2 = await connect(router, "websocket", "msgpack")
    topic = uniq("com.example.will.opts")
    rec1, rec2 = Recorder("w1"), Recorder("w2")
    await rec1.watch(w1, topic, "wamp.session.on_leave")
    await rec2.watch(w2, topic, "wamp.session.on_leave")
    disclosed = Inbox("disclosed")
    await w1.subscribe(disclosed, topic + ".who", options=DETAILS)
    assert await s.call("wamp.session.add_testament", topic, ["to w1 only"], {},
                        publish_options={"exclude": [w2.id]}) is None
    assert await s.call("wamp.session.add_testament", topic + ".who", [], {},
                        publish_options={"disclose_me": True}) is None
    s.abort_transport()
    # on_leave comes after the testaments: once w2 has it, it got every testament it gets
    on_leave = ("wamp.session.on_leave", sid, f"anonymous-{sid}", "anonymous")
    assert await rec1.until(2, sid) == [(topic, "to w1 only"), on_leave]
    assert await rec2.until(1, sid) == [on_leave]
    (ev,) = await disclosed.wait_for(1)
    assert (ev.args, ev.kwargs) == ((), {})
    assert (ev.details.publisher, ev.details.publisher_authid, ev.details.publisher_authrole) == (
        sid, f"anonymous-{sid}", "anonymous")


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
async def test_testament_payload_reaches_every_serializer(router, serializer):
    """The router keeps a testament's arguments and publishes them later: binary and
    64-bit integers arrive intact whatever the serializers on either side."""
    args = [b"\x00\x01\xff", 2 ** 63, -2 ** 63, 1.5, {"b": b"xyz"}, None]
    kwargs = {"k": b"\xfe", "n": 2 ** 53 + 1}
    inboxes = {ser: Inbox(ser) for ser in ["json", "msgpack", "cbor"]}
    topic = uniq("com.example.will.bin")
    for ser, inbox in inboxes.items():
        sub = await connect(router, "rawsocket" if ser == "cbor" else "websocket", ser)
        await sub.subscribe(inbox, topic)
    s = await connect(router, "rawsocket", serializer)
    assert await s.call("wamp.session.add_testament", topic, args, kwargs) is None
    s.abort_transport()
    for ser, inbox in inboxes.items():
        (ev,) = await inbox.wait_for(1)
        assert (list(ev.args), ev.kwargs) == (args, kwargs), ser


async def test_testament_retained(router):
    """publish_options retain: a subscriber that comes later gets the testament as the
    topic's retained event."""
    s = await connect(router, "websocket", "json")
    sid = s.id
    watcher = await connect(router, "rawsocket", "cbor")
    topic = uniq("com.example.will.retained")
    rec = Recorder("on_leave")
    await rec.watch(watcher, "wamp.session.on_leave")
    assert await s.call("wamp.session.add_testament", topic, ["last words"], {"k": 1},
                        publish_options={"retain": True}) is None
    s.abort_transport()
    await rec.until(1, sid)
    late = await connect(router, "websocket", "msgpack")
    inbox = Inbox("retained")
    await late.subscribe(inbox, topic, options=SubscribeOptions(get_retained=True, details=True))
    (ev,) = await inbox.wait_for(1)
    assert (ev.args, ev.kwargs, ev.details.retained, ev.details.topic) == (
        ("last words",), {"k": 1}, True, topic)


@pytest.mark.parametrize("flush", [None, "destroyed", "detached"])
async def test_testament_scopes_and_flush(router, flush):
    s = await connect(router, "websocket", "cbor")
    sid = s.id
    watcher = await connect(router, "rawsocket", "json")
    topic = uniq("com.example.will.scope")
    rec = Recorder("scopes")
    await rec.watch(watcher, topic, "wamp.session.on_leave")
    for name, scope in [("A", "destroyed"), ("B", "detached"), ("C", None), ("D", "detached")]:
        kw = {} if scope is None else {"scope": scope}
        assert await s.call("wamp.session.add_testament", topic, [name], {}, **kw) is None
    if flush is None:
        expected = ["B", "D", "A", "C"]
    else:
        kw = {} if flush == "destroyed" else {"scope": flush}
        assert await s.call("wamp.session.flush_testaments", **kw) is None
        expected = ["A", "C"] if flush == "detached" else ["B", "D"]
    await s.close()
    got = await rec.until(len(expected) + 1, sid)
    assert got == [(topic, name) for name in expected] + [
        ("wamp.session.on_leave", sid, f"anonymous-{sid}", "anonymous")]


async def test_testament_refusals(router):
    s = await connect(router, "websocket", "json")
    topic = uniq("com.example.will.bad")
    e = await error_of(s.call("wamp.session.add_testament", topic, [], {}, scope="later"))
    assert e.error == INVALID_ARGUMENT
    e = await error_of(s.call("wamp.session.flush_testaments", scope="later"))
    assert e.error == INVALID_ARGUMENT
    e = await error_of(s.call("wamp.session.add_testament", "not a uri!", [], {}))
    assert e.error == INVALID_URI
    e = await error_of(s.call("wamp.session.add_testament", topic, "args", {}))
    assert e.error == INVALID_ARGUMENT
    e = await error_of(s.call("wamp.session.add_testament"))
    assert e.error == INVALID_ARGUMENT
    # at most 16 per session
    for i in range(16):
        assert await s.call("wamp.session.add_testament", topic, [i], {}) is None
    e = await error_of(s.call("wamp.session.add_testament", topic, [16], {}))
    assert e.error == "wamp.error.limit_reached"
    assert await s.call("wamp.session.flush_testaments") is None
    assert await s.call("wamp.session.add_testament", topic, ["fits again"], {}) is None


async def test_killed_session_leaves_its_testament(new_router):
    """On a realm with roles: alice (user, disclosed) leaves a testament and is killed
    by authid; her testament is published as her."""
    r = new_router("meta-will", config=AUTH_CONFIG)
    killer = await connect(r, "websocket", "json")
    alice = await connect(r, "rawsocket", "msgpack", authid="alice", ticket="alice-secret")
    alice_id = alice.id
    watcher = await connect(r, "websocket", "cbor")
    topic = uniq("com.example.will.alice")
    inbox = Inbox("alice's testament")
    await watcher.subscribe(inbox, topic, options=DETAILS)
    assert await alice.call("wamp.session.add_testament", topic, ["alice was here"], {}) is None
    assert await killer.call("wamp.session.kill_by_authid", "alice", reason="com.example.evict") == 1
    (ev,) = await inbox.wait_for(1)
    assert ev.args == ("alice was here",)
    assert (ev.details.publisher, ev.details.publisher_authid, ev.details.publisher_authrole) == (
        alice_id, "alice", "user")
    assert goodbyes(await _gone_session(alice)) == [("com.example.evict", None)]


# --------------------------------------------------------------------------- workbench


async def _eventually(ask, ok, what: str, timeout: float = 3.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await ask()
        if ok(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s, last {value!r}")
        await asyncio.sleep(0.02)


WB = "workbench"


async def _wb_user(wb, name: str, transport="websocket", serializer="json"):
    return await connect(wb.router, transport, serializer, realm=WB, ticket=wb.token(name))


async def _wb_service(wb, authid: str, transport="websocket", serializer="json"):
    return await connect(wb.router, transport, serializer, realm=WB, authid=authid,
                         ticket=SERVICE_TICKETS[authid])


@pytest.mark.parametrize("combo", SPREAD, ids=[combo_id(c) for c in SPREAD])
async def test_workbench_meta_api_is_for_admins_and_the_controller(workbench, combo):
    carol = await _wb_user(workbench, "carol", *combo)
    alice = await _wb_user(workbench, "alice", *partner(combo))
    controller = await _wb_service(workbench, "controller-1", *combo)
    dispatcher = await _wb_service(workbench, "dispatcher-1", *partner(combo))
    everyone = sorted([carol.id, alice.id, controller.id, dispatcher.id])
    # the sessions of the test before (same router) may still be closing
    await _eventually(lambda: carol.call("wamp.session.list"), lambda ids: sorted(ids) == everyone,
                      "wamp.session.list shows this test's four sessions")
    assert await carol.call("wamp.session.count", ["user"]) == 1
    assert (await carol.call("wamp.session.get", alice.id))["authid"] == "alice"
    assert await controller.call("wamp.session.count") == 4
    assert await controller.call("wamp.registration.list") == {"exact": [], "prefix": [], "wildcard": []}
    for who in (alice, dispatcher):
        for procedure, args in [("wamp.session.list", ()), ("wamp.session.count", ()),
                                ("wamp.session.get", (carol.id,)), ("wamp.session.kill", (carol.id,)),
                                ("wamp.subscription.list", ()), ("wamp.registration.list", ())]:
            e = await error_of(who.call(procedure, *args))
            assert e.error == NOT_AUTHORIZED, (who, procedure)
        e = await error_of(who.subscribe(Inbox(), "wamp.session.on_join"))
        assert e.error == NOT_AUTHORIZED
    # the admin watches sessions join
    rec = Recorder("carol")
    await rec.watch(carol, "wamp.session.on_join", "wamp.session.on_leave")
    bob = await _wb_user(workbench, "bob")
    bob_id = bob.id
    (join,) = await rec.until(1, bob_id)
    assert join[1]["authid"] == "bob" and join[1]["authrole"] == "user"
    assert join[1]["authprovider"] == "graph" and join[1]["authmethod"] == "ticket"
    # and may throw a session out; the others are still denied
    assert await carol.call("wamp.session.kill", bob_id, reason="com.example.admin.kick") is None
    assert (await gone(bob)).reason == "com.example.admin.kick"
    assert await rec.until(2, bob_id) == [join, ("wamp.session.on_leave", bob_id, "bob", "user")]
    assert alice.is_attached() and dispatcher.is_attached()


async def test_workbench_testaments_need_publish_permission(workbench):
    controller = await _wb_service(workbench, "controller-1", "rawsocket", "msgpack")
    dispatcher = await _wb_service(workbench, "dispatcher-1", "websocket", "json")
    alice = await _wb_user(workbench, "alice", "websocket", "cbor")
    inbox = Inbox("dispatch")
    await dispatcher.subscribe(inbox, "dispatch.containers")
    # the dispatcher may leave testaments, but not on a topic it may not publish to
    e = await error_of(dispatcher.call("wamp.session.add_testament", "dispatch.containers", ["x"], {}))
    assert e.error == NOT_AUTHORIZED
    # a graph user has no rule for add_testament
    e = await error_of(alice.call("wamp.session.add_testament", "records.alice.changes", ["x"], {}))
    assert e.error == NOT_AUTHORIZED
    assert await controller.call("wamp.session.add_testament", "dispatch.containers",
                                 ["controller-1 is gone"], {"why": "cut"}) is None
    controller.abort_transport()
    (ev,) = await inbox.wait_for(1)
    assert (ev.args, ev.kwargs) == (("controller-1 is gone",), {"why": "cut"})


async def test_workbench_revocation_sets_off_registration_meta_events(workbench):
    """A graph change withdraws alice's registration: the admin watching the
    registration meta events sees it go (on_unregister, then on_delete)."""
    carol = await _wb_user(workbench, "carol", "rawsocket", "cbor")
    alice = await _wb_user(workbench, "alice", "websocket", "msgpack")
    alice_id = alice.id
    rec = Recorder("carol")
    await rec.watch(carol, *REG_EVENTS)
    reg = await alice.register(lambda: "inspected", "containers.c1.inspect")
    got = await rec.until(2, alice_id)
    assert [e[:2] for e in got] == [("wamp.registration.on_create", alice_id),
                                    ("wamp.registration.on_register", alice_id)]
    assert (got[0][2]["id"], got[0][2]["uri"], got[0][2]["match"], got[0][2]["invoke"]) == (
        reg.id, "containers.c1.inspect", "exact", "single")
    assert await carol.call("wamp.registration.list_callees", reg.id) == [alice_id]
    seq = int(await workbench.sql("delete from grants where tail_id = 'alice' and head_id = 'lab';"
                                  "select max(seq) from switchyard_graph_changes"))
    assert await rec.until(4, alice_id) == got + [
        ("wamp.registration.on_unregister", alice_id, reg.id),
        ("wamp.registration.on_delete", alice_id, reg.id)]
    await workbench.settle(seq)
    e = await error_of(carol.call("wamp.registration.get", reg.id))
    assert e.error == NO_SUCH_REGISTRATION
    assert alice.is_attached()


@pytest.mark.parametrize("who", ["carol", "controller-1"])
@pytest.mark.parametrize("pattern,match", [("wamp.session.", "prefix"), ("wamp..on_join", "wildcard")],
                         ids=["prefix", "wildcard"])
async def test_workbench_meta_events_through_a_pattern_subscription(workbench, who, pattern, match):
    """policies/workbench.toml: "A pattern subscription is allowed when some rule it
    overlaps lets the session subscribe; each event then reaches it only if the session
    may subscribe to that event's own topic."  `wamp.session.{object}` lets both the
    admin carol and the controller subscribe (exactly: test above), so both may watch
    the session events through a pattern too, and get on_join."""
    if who == "carol":
        watcher = await _wb_user(workbench, "carol", "websocket", "cbor")
    else:
        watcher = await _wb_service(workbench, "controller-1", "websocket", "cbor")
    inbox = Inbox(who)
    await watcher.subscribe(inbox, pattern, options=SubscribeOptions(match=match, details=True))
    bob = await _wb_user(workbench, "bob", "rawsocket", "msgpack")
    await inbox.wait_until(lambda items: any(
        i.details.topic == "wamp.session.on_join" and i.args[0]["session"] == bob.id for i in items))
    alice = await _wb_user(workbench, "alice", "rawsocket", "json")
    # alice has no rule for the meta events: no pattern over them is hers
    e = await error_of(alice.subscribe(Inbox(), pattern, options=SubscribeOptions(match=match)))
    assert e.error == NOT_AUTHORIZED


async def test_workbench_demoted_admin_loses_the_meta_api(workbench):
    """is_admin withdrawn in the graph: the meta API is refused from then on (the
    subscription part is in the autobahn-js suite: autobahn-python fails its own session
    on the revocation notice)."""
    carol = await _wb_user(workbench, "carol", "rawsocket", "msgpack")
    assert await carol.call("wamp.session.count") == 1
    seq = int(await workbench.sql("update principals set is_admin = false where id = 'carol';"
                                  "select max(seq) from switchyard_graph_changes"))
    await workbench.settle(seq)
    e = await error_of(carol.call("wamp.session.count"))
    assert (e.error, e.args) == (NOT_AUTHORIZED, ("session is not authorized to call 'wamp.session.count'",))
    assert carol.is_attached()


@pytest.mark.parametrize("withdrawn", [False, True], ids=["kept", "withdrawn"])
async def test_workbench_testament_needs_the_permission_still_when_published(workbench, withdrawn):
    """carol (admin, owner of c3) leaves a testament on containers.c3.logs.  If she is
    no longer admin (who may write anywhere) and c3 is given away before her connection
    is cut, she may no longer publish there and the testament is withheld; otherwise
    alice (who reads c3 by a grant of her own) gets it.
    The controller publishes a sentinel after carol's on_leave: alice gets the
    testament, if at all, before the sentinel."""
    wb = workbench
    await wb.sql("insert into grants (tail_id, head_id, level) values ('alice', 'c3', 1)")
    await wb.settle()
    carol = await _wb_user(wb, "carol", "websocket", "json")
    carol_id = carol.id
    alice = await _wb_user(wb, "alice", "rawsocket", "cbor")
    controller = await _wb_service(wb, "controller-1", "websocket", "msgpack")
    inbox = Inbox("alice")
    await alice.subscribe(inbox, "containers.c3.logs")
    left = Recorder("controller")
    await left.watch(controller, "wamp.session.on_leave")
    assert await carol.call("wamp.session.add_testament", "containers.c3.logs", ["carol is gone"], {}) is None
    if withdrawn:
        seq = int(await wb.sql("update principals set is_admin = false where id = 'carol';"
                               "update objects set owner_id = 'p1' where id = 'c3';"
                               "select max(seq) from switchyard_graph_changes"))
        await wb.settle(seq)
    carol.abort_transport()
    await left.until(1, carol_id)
    await controller.publish("containers.c3.logs", "sentinel", options=PublishOptions(acknowledge=True))
    await inbox.wait_until(lambda items: any(i.args == ("sentinel",) for i in items))
    assert [i.args for i in inbox.items] == ([] if withdrawn else [("carol is gone",)]) + [("sentinel",)]
