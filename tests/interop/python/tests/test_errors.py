"""Error replies (no_such_*, procedure_already_exists, not_authorized) and
protocol violations on a raw RawSocket connection."""

import pytest

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from harness import SERIALIZERS, all_combos, spread_combos, uniq
from harness.client import Inbox, connect, raw_unregister, raw_unsubscribe
from harness.rawsocket import (ABORT, GOODBYE, HELLO, PUBLISH, SUBSCRIBE, WELCOME,
                               RawSocketClient)

ACK = PublishOptions(acknowledge=True)


async def _raises(coro, uri: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as ei:
        await coro
    assert ei.value.error == uri, str(ei.value)
    return ei.value


# ---------------------------------------------------------------- dealer errors


@all_combos
async def test_no_such_procedure(router, combo):
    s = await connect(router, *combo)
    await _raises(s.call(uniq("com.example.err.nothing"), 1, k=2),
                  "wamp.error.no_such_procedure")
    assert s.is_attached()


@spread_combos
async def test_procedure_already_exists_other_session(router, combo):
    a = await connect(router, *combo)
    b = await connect(router, "rawsocket", "json")
    proc = uniq("com.example.err.dup")
    await a.register(lambda: "a", proc)
    await _raises(b.register(lambda: "b", proc), "wamp.error.procedure_already_exists")
    # the original registration is untouched
    assert await b.call(proc) == "a"


async def test_procedure_already_exists_same_session(router):
    a = await connect(router, "websocket", "cbor")
    proc = uniq("com.example.err.dupself")
    await a.register(lambda: 1, proc)
    await _raises(a.register(lambda: 2, proc), "wamp.error.procedure_already_exists")
    assert await a.call(proc) == 1


@spread_combos
async def test_unregister_twice(router, combo):
    s = await connect(router, *combo)
    reg = await s.register(lambda: None, uniq("com.example.err.unreg2"))
    reg_id = reg.id
    await reg.unregister()
    await _raises(raw_unregister(s, reg_id), "wamp.error.no_such_registration")


async def test_unregister_unknown_id(router):
    s = await connect(router, "rawsocket", "msgpack")
    await _raises(raw_unregister(s, 4242424242), "wamp.error.no_such_registration")


async def test_unregister_registration_of_another_session(router):
    owner = await connect(router, "websocket", "json")
    other = await connect(router, "rawsocket", "cbor")
    proc = uniq("com.example.err.notmine")
    reg = await owner.register(lambda: "mine", proc)
    await _raises(raw_unregister(other, reg.id), "wamp.error.no_such_registration")
    assert await other.call(proc) == "mine"


# ---------------------------------------------------------------- broker errors


@spread_combos
async def test_unsubscribe_twice(router, combo):
    s = await connect(router, *combo)
    sub = await s.subscribe(Inbox(), uniq("com.example.err.unsub2"))
    sub_id = sub.id
    await sub.unsubscribe()
    await _raises(raw_unsubscribe(s, sub_id), "wamp.error.no_such_subscription")


async def test_unsubscribe_unknown_id(router):
    s = await connect(router, "websocket", "msgpack")
    await _raises(raw_unsubscribe(s, 4242424242), "wamp.error.no_such_subscription")


async def test_unsubscribe_subscription_of_another_session(router):
    """A subscription id is shared, but a session that never subscribed cannot
    unsubscribe from it."""
    owner = await connect(router, "rawsocket", "json")
    other = await connect(router, "websocket", "cbor")
    topic = uniq("com.example.err.subnotmine")
    inbox = Inbox()
    sub = await owner.subscribe(inbox, topic)
    await _raises(raw_unsubscribe(other, sub.id), "wamp.error.no_such_subscription")
    await other.publish(topic, "still", options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert ev.args == ("still",)


# ---------------------------------------------------------------- authorization


@pytest.fixture
def bob_args():
    return dict(authid="bob", ticket="bob-secret")


@spread_combos
async def test_reader_not_authorized(auth_router, combo, bob_args):
    bob = await connect(auth_router, *combo, **bob_args)
    alice = await connect(auth_router, "rawsocket", "msgpack", authid="alice",
                          ticket="alice-secret")
    public, private = uniq("com.example.public.authz"), uniq("com.example.private.authz")

    # publish and register are not granted to role reader at all
    await _raises(bob.publish(public, 1, options=ACK), "wamp.error.not_authorized")
    await _raises(bob.register(lambda: 0, public), "wamp.error.not_authorized")
    # subscribe / call only below com.example.public.
    await _raises(bob.subscribe(Inbox(), private), "wamp.error.not_authorized")
    await alice.register(lambda: "secret", private)
    await _raises(bob.call(private), "wamp.error.not_authorized")
    # granted: subscribe to and call public URIs
    inbox = Inbox()
    await bob.subscribe(inbox, public)
    await alice.publish(public, "hi", options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert ev.args == ("hi",)
    await _raises(bob.call(public + ".none"), "wamp.error.no_such_procedure")
    await alice.register(lambda x: x + 1, public + ".inc")
    assert await bob.call(public + ".inc", 1) == 2
    assert bob.is_attached()


async def test_reader_prefix_is_a_uri_prefix(auth_router, bob_args):
    """`com.example.public.` as prefix: `com.example.publicity` is outside it."""
    bob = await connect(auth_router, "websocket", "json", **bob_args)
    await _raises(bob.subscribe(Inbox(), "com.example.publicity"), "wamp.error.not_authorized")
    await _raises(bob.subscribe(Inbox(), "com.example.public"), "wamp.error.not_authorized")


async def test_unauthorized_publish_without_ack_is_silent(auth_router, bob_args):
    bob = await connect(auth_router, "rawsocket", "cbor", **bob_args)
    alice = await connect(auth_router, "websocket", "json", authid="alice",
                          ticket="alice-secret")
    topic = uniq("com.example.public.silent")
    inbox = Inbox()
    await alice.subscribe(inbox, topic)
    bob.publish(topic, "must-not-arrive")  # no acknowledge: no reply at all
    anon = await connect(auth_router, "websocket", "msgpack")
    await anon.publish(topic, "marker", options=ACK)
    await inbox.wait_for(1)
    assert [ev.args for ev in inbox.items] == [("marker",)]
    assert bob.is_attached()


# ---------------------------------------------------------------- protocol violations

MALFORMED = {
    "json": {
        "truncated": b'[1, "x"',
        "unknown-type": b"[999]",
        "not-a-list": b'{"a": 1}',
        "empty-list": b"[]",
        "type-not-int": b'["x", 1]',
        "publish-missing-topic": b'[16, 1, {}]',
    },
    "msgpack": {
        "garbage": b"\xc1",
        "unknown-type": b"\x91\xcd\x03\xe7",  # [999]
    },
    "cbor": {
        "garbage": b"\xff",
        "unknown-type": b"\x81\x19\x03\xe7",  # [999]
    },
}
MALFORMED_CASES = [(ser, name) for ser, cases in MALFORMED.items() for name in cases]


async def _expect_protocol_violation(c: RawSocketClient, what: str) -> None:
    msgs = await c.recv_until_closed(2.0)
    aborts = [m for m in msgs if isinstance(m, list) and m and m[0] == ABORT]
    assert aborts, f"{what}: expected ABORT before close, got {msgs!r}"
    abort = aborts[0]
    assert len(abort) == 3 and isinstance(abort[1], dict), abort
    assert abort[2] == "wamp.error.protocol_violation", abort


@pytest.mark.parametrize("serializer,case", MALFORMED_CASES,
                         ids=[f"{s}-{c}" for s, c in MALFORMED_CASES])
async def test_malformed_message_after_welcome(router, serializer, case):
    bystander = RawSocketClient(serializer)
    await bystander.join(router)
    topic = uniq("com.example.malformed")
    sub_id = await bystander.subscribe(topic)

    c = RawSocketClient(serializer)
    await c.join(router)
    await c.send_frame(MALFORMED[serializer][case])
    await _expect_protocol_violation(c, case)

    # another session is unaffected
    pub = await connect(router, "websocket", serializer)
    publication = await pub.publish(topic, "ok", options=ACK)
    ev = await bystander.recv()
    assert ev[:3] == [36, sub_id, publication.id] and ev[4] == ["ok"], ev
    bystander.close()


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_message_before_hello(router, serializer):
    c = RawSocketClient(serializer)
    await c.connect(router)
    await c.send([SUBSCRIBE, 1, {}, "com.example.early"])
    await _expect_protocol_violation(c, "SUBSCRIBE before HELLO")


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_second_hello(router, serializer):
    c = RawSocketClient(serializer)
    await c.join(router)
    await c.send([HELLO, "realm1", {"roles": {"subscriber": {}}}])
    await _expect_protocol_violation(c, "second HELLO")


async def test_welcome_from_client_is_a_violation(router):
    c = RawSocketClient("json")
    await c.join(router)
    await c.send([WELCOME, 1, {}])
    await _expect_protocol_violation(c, "client sent WELCOME")


async def test_goodbye_on_the_wire(router):
    c = RawSocketClient("json")
    await c.join(router)
    await c.send([GOODBYE, {}, "wamp.close.close_realm"])
    reply = await c.recv()
    assert reply == [GOODBYE, reply[1], "wamp.close.goodbye_and_out"], reply
    assert isinstance(reply[1], dict)


async def test_publish_with_invalid_options_type(router):
    """Options must be a dict: [16, 1, "oops", "topic"] is malformed."""
    c = RawSocketClient("json")
    await c.join(router)
    await c.send([PUBLISH, 1, "oops", "com.example.x"])
    await _expect_protocol_violation(c, "PUBLISH with non-dict options")
