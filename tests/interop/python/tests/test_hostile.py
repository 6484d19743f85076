"""Stock clients as the victims of a hostile peer (issue 6).

A publisher or caller of our own sends what autobahn never would: Arguments nested
10,000 levels deep (which killed autobahn-python JSON and CBOR subscribers with a
RecursionError), or a JSON binary string with invalid base64 (which no MessagePack or
CBOR peer can receive). The router refuses such a message at the door with
``wamp.error.invalid_argument``; the stock sessions never see it, stay joined, and get
the next valid message as if nothing had happened.
"""

import asyncio

import pytest

from autobahn.wamp.types import PublishOptions

from harness import COMBOS, combo_id, uniq
from harness.client import Inbox, connect
from harness.rawsocket import CALL, ERROR, PUBLISH, PUBLISHED, RESULT, RawSocketClient

ACK = PublishOptions(acknowledge=True)
DEPTH = 10_000
DEEP_MESSAGE = "PUBLISH.Arguments: nesting deeper than 64 levels"


def deep_json_publish(request: int, topic: str) -> bytes:
    # json.dumps would recurse 10,000 levels: the text is written out instead.
    return f'[16,{request},{{"acknowledge":true}},"{topic}",[{"[" * DEPTH}1{"]" * DEPTH}]]'.encode()


def deep_cbor_publish(request: int, topic: str) -> bytes:
    # [16, request, {"acknowledge": true}, topic, [[[...]]]] with 10,000 one-element arrays.
    t = topic.encode()
    assert request < 24 and len(t) < 256
    head = bytes([0x85, 0x10, request, 0xA1, 0x6B]) + b"acknowledge" + bytes([0xF5, 0x78, len(t)]) + t
    return head + b"\x81" * DEPTH + b"\x01"


async def expect_refused(c: RawSocketClient, request_type: int, request: int, message: str) -> None:
    reply = await c.recv()
    assert reply[:3] == [ERROR, request_type, request], reply
    assert reply[4] == "wamp.error.invalid_argument", reply
    assert reply[5] == [message], reply


@pytest.mark.parametrize("victim", COMBOS, ids=[combo_id(c) for c in COMBOS])
@pytest.mark.parametrize("attacker", ["json", "cbor"])
async def test_a_deep_publication_never_reaches_stock_subscribers(router, victim, attacker):
    topic = uniq("com.example.deep")
    subscriber = await connect(router, *victim)
    inbox = Inbox("victim")
    await subscriber.subscribe(inbox, topic)

    publisher = RawSocketClient(attacker)
    await publisher.join(router)
    frame = deep_json_publish(1, topic) if attacker == "json" else deep_cbor_publish(1, topic)
    await publisher.send_frame(frame)
    await expect_refused(publisher, PUBLISH, 1, DEEP_MESSAGE)

    # The same publisher goes on; the victim's first event is the valid one.
    await publisher.publish_ack(topic, ["after"])
    (ev,) = await inbox.wait_for(1)
    assert ev.args == ("after",)
    assert subscriber.is_attached()
    await asyncio.sleep(0.2)
    assert len(inbox) == 1, inbox.items
    publisher.close()


@pytest.mark.parametrize("victim", ["json", "cbor", "msgpack"])
async def test_a_deep_call_never_reaches_a_stock_callee(router, victim):
    procedure = uniq("com.example.deepcall")
    callee = await connect(router, "websocket", victim)
    invoked = []
    await callee.register(lambda *args: invoked.append(args) or "ok", procedure)

    caller = RawSocketClient("json")
    await caller.join(router)
    deep = "[" * DEPTH + "1" + "]" * DEPTH
    await caller.send_frame(f'[48,1,{{}},"{procedure}",[{deep}]]'.encode())
    await expect_refused(caller, CALL, 1, "CALL.Arguments: nesting deeper than 64 levels")

    await caller.send([CALL, 2, {}, procedure, [7]])
    reply = await caller.recv()
    assert reply == [RESULT, 2, {}, ["ok"]], reply
    assert invoked == [(7,)]
    assert callee.is_attached()
    caller.close()


@pytest.mark.parametrize("victim", ["msgpack", "cbor"])
async def test_an_invalid_json_binary_string_never_reaches_binary_subscribers(router, victim):
    topic = uniq("com.example.binary")
    subscriber = await connect(router, "rawsocket", victim)
    inbox = Inbox("victim")
    await subscriber.subscribe(inbox, topic)

    publisher = RawSocketClient("json")
    await publisher.join(router)
    await publisher.send_frame(f'[16,1,{{"acknowledge":true}},"{topic}",["\\u0000***"]]'.encode())
    await expect_refused(publisher, PUBLISH, 1,
                         "PUBLISH.Arguments: a binary string (\\u0000 + base64) holds invalid base64")
    # A valid binary string passes, as bytes.
    await publisher.send_frame(f'[16,2,{{"acknowledge":true}},"{topic}",["\\u0000AAEC/w=="]]'.encode())
    reply = await publisher.recv()
    assert reply[:2] == [PUBLISHED, 2], reply
    (ev,) = await inbox.wait_for(1)
    assert ev.args == (b"\x00\x01\x02\xff",)
    publisher.close()
