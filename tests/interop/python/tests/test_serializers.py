"""Cross-serializer delivery: values published/called with one serializer arrive
equal (value and type) with another, including binary, which JSON carries as
"\\u0000" + base64."""

import base64

import pytest

from autobahn.wamp.types import CallResult, PublishOptions, SubscribeOptions

from harness import SERIALIZERS, uniq
from harness.client import Inbox, connect
from harness.rawsocket import EVENT, PUBLISH, PUBLISHED, RawSocketClient

ACK = PublishOptions(acknowledge=True)

ARGS = [
    b"\x00\x01\x02\xffbinary",
    b"",
    "unicode \u2713 \u65e5\u672c\u8a9e \U0001F680",
    "a\x00b",
    0, -1, 2 ** 53 - 1, -(2 ** 31), 4294967296,
    1.5, -0.25, 2.0, 1e100,
    True, False, None,
    [], {},
    [b"\x00", b"\xde\xad\xbe\xef"],
    {"nested": [b"\x10\x20", {"x": [1, 2, 3], "\u00fc": "\u00e9"}]},
]
KWARGS = {
    "bin": bytes(range(256)),
    "text": "plain",
    "float": 3.141592653589793,
    "neg": -123456789012,
    "list": [None, True, [b"\xde\xad"]],
    "empty_bin_in_dict": {"b": b""},
}

BIG_INTS = [2 ** 63 - 1, -(2 ** 63), 2 ** 64 - 1]


def same(a, b, path="$"):
    """Deep equality that also compares types (1 != 1.0, True != 1, bytes != str)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
        return
    assert type(a) is type(b), f"{path}: type {type(a).__name__} != {type(b).__name__}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
        return
    assert a == b, f"{path}: {a!r} != {b!r}"


MATRIX = [(p, s) for p in SERIALIZERS for s in SERIALIZERS]


@pytest.mark.parametrize("pub_ser,sub_ser", MATRIX, ids=[f"{p}-to-{s}" for p, s in MATRIX])
async def test_event_values_across_serializers(router, pub_ser, sub_ser):
    # alternate transports so both directions of ws<->rs are covered
    pub_t, sub_t = (("websocket", "rawsocket") if SERIALIZERS.index(pub_ser) % 2 == 0
                    else ("rawsocket", "websocket"))
    sub = await connect(router, sub_t, sub_ser)
    pub = await connect(router, pub_t, pub_ser)
    topic = uniq("com.example.ser")
    inbox = Inbox()
    await sub.subscribe(inbox, topic, options=SubscribeOptions(details=True))
    await pub.publish(topic, *ARGS, options=ACK, **KWARGS)
    (ev,) = await inbox.wait_for(1)
    same(list(ev.args), ARGS, "args")
    same(ev.kwargs, KWARGS, "kwargs")


@pytest.mark.parametrize("caller_ser,callee_ser", MATRIX,
                         ids=[f"{c}-calls-{e}" for c, e in MATRIX])
async def test_call_values_across_serializers(router, caller_ser, callee_ser):
    callee_t, caller_t = (("rawsocket", "websocket") if SERIALIZERS.index(callee_ser) % 2 == 0
                          else ("websocket", "rawsocket"))
    callee = await connect(router, callee_t, callee_ser)
    caller = await connect(router, caller_t, caller_ser)
    proc = uniq("com.example.ser.echo")
    received = []

    def echo(*args, **kwargs):
        received.append((args, kwargs))
        return CallResult(*args, **kwargs)

    await callee.register(echo, proc)
    res = await caller.call(proc, *ARGS, **KWARGS)
    (args, kwargs), = received
    same(list(args), ARGS, "invocation args")
    same(kwargs, KWARGS, "invocation kwargs")
    same(list(res.results), ARGS, "result args")
    same(res.kwresults, KWARGS, "result kwargs")


@pytest.mark.parametrize("pub_ser,sub_ser", MATRIX, ids=[f"{p}-to-{s}" for p, s in MATRIX])
async def test_large_integers_across_serializers(router, pub_ser, sub_ser):
    sub = await connect(router, "rawsocket", sub_ser)
    pub = await connect(router, "websocket", pub_ser)
    topic = uniq("com.example.bigint")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    await pub.publish(topic, *BIG_INTS, options=ACK)
    (ev,) = await inbox.wait_for(1)
    same(list(ev.args), BIG_INTS, "args")


@pytest.mark.parametrize("pub_ser", ["msgpack", "cbor"])
async def test_binary_reaches_json_as_base64_string(router, pub_ser):
    """On the wire, a JSON peer gets bytes as a string "\\u0000" + base64."""
    raw = RawSocketClient("json", convert_binary=False)
    await raw.join(router)
    topic = uniq("com.example.b64")
    sub_id = await raw.subscribe(topic)
    pub = await connect(router, "websocket", pub_ser)
    blob = bytes(range(250, 256)) + b"\x00\x01"
    publication = await pub.publish(topic, blob, b"", "text", options=ACK,
                                    inner={"b": blob})
    ev = await raw.recv()
    b64 = "\x00" + base64.b64encode(blob).decode("ascii")
    assert ev[0] == EVENT and ev[1] == sub_id and ev[2] == publication.id, ev
    assert ev[4] == [b64, "\x00", "text"], ev
    assert ev[5] == {"inner": {"b": b64}}, ev
    raw.close()


@pytest.mark.parametrize("sub_ser", ["msgpack", "cbor"])
async def test_json_base64_string_reaches_binary_peer_as_bytes(router, sub_ser):
    sub = await connect(router, "rawsocket", sub_ser)
    topic = uniq("com.example.b64rev")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    raw = RawSocketClient("json", convert_binary=False)
    await raw.join(router)
    blob = b"\xff\xfe\x00binary\x00"
    b64 = "\x00" + base64.b64encode(blob).decode("ascii")
    await raw.send([PUBLISH, 7, {"acknowledge": True}, topic, [b64, "plain"], {"k": b64}])
    reply = await raw.recv()
    assert reply[:2] == [PUBLISHED, 7], reply
    (ev,) = await inbox.wait_for(1)
    same(list(ev.args), [blob, "plain"], "args")
    same(ev.kwargs, {"k": blob}, "kwargs")
    raw.close()


async def test_json_to_json_passes_strings_unchanged(router):
    """Between two JSON peers nothing may be re-encoded: an escaped NUL prefix
    string arrives byte-identical."""
    raw_sub = RawSocketClient("json", convert_binary=False)
    await raw_sub.join(router)
    topic = uniq("com.example.jsonjson")
    await raw_sub.subscribe(topic)
    raw_pub = RawSocketClient("json", convert_binary=False)
    await raw_pub.join(router)
    values = ["\x00AAEC", "caf\u00e9", "\U0001F680", 1.5, 10, -0.0]
    await raw_pub.send([PUBLISH, 1, {}, topic, values])
    ev = await raw_sub.recv()
    assert ev[0] == EVENT
    assert ev[4] == values
    raw_sub.close()
    raw_pub.close()
