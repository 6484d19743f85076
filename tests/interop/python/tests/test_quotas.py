"""A realm's [limits] seen by autobahn-python: sessions per realm and per authid
refused with ABORT wamp.error.limit_reached, publications and calls over a session's
token bucket refused with wamp.error.rate_limited exactly at the burst; after a
refusal the router reads nothing more from the session until its next token, so
refusals and admissions then alternate."""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from harness import uniq
from harness.client import JoinFailed, connect

QUOTA_CONFIG = """
[[realms]]
name = "realm1"
anonymous = "anonymous"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
[[realms.principals]]
authid = "svc"
ticket = "svc-secret"
role = "anonymous"
[realms.limits]
max_sessions = 4
max_sessions_per_authid = 2
publications_per_second = 5
publication_burst = 5
calls_per_second = 5
call_burst = 3
"""

ACK = PublishOptions(acknowledge=True)
RATE_LIMITED = "wamp.error.rate_limited"


async def _outcomes(aws) -> list[str]:
    """'ok' or the error URI of each awaitable, in order."""
    out = []
    for r in await asyncio.gather(*aws, return_exceptions=True):
        out.append(r.error if isinstance(r, ApplicationError) else "ok" if not isinstance(r, BaseException) else repr(r))
    return out


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack"), ("websocket", "cbor")])
async def test_publications_stop_at_the_burst_then_go_at_the_rate(new_router, transport, serializer):
    r = new_router("quota-pub", config=QUOTA_CONFIG)
    s = await connect(r, transport, serializer)
    topic = uniq("com.example.quota")
    got = await _outcomes([s.publish(topic, i, options=ACK) for i in range(9)])
    # 5 a second: after the burst, each refusal holds the session 200 ms, until the
    # token the next publication takes.
    assert got == ["ok"] * 5 + [RATE_LIMITED, "ok", RATE_LIMITED, "ok"]


async def test_calls_stop_at_their_own_burst(new_router):
    r = new_router("quota-call", config=QUOTA_CONFIG)
    callee = await connect(r, "rawsocket", "json")
    caller = await connect(r, "websocket", "json")
    proc = uniq("com.example.quota.echo")
    await callee.register(lambda x: x, proc)
    results = await _outcomes([caller.call(proc, i) for i in range(5)])
    assert results == ["ok"] * 3 + [RATE_LIMITED, "ok"]
    # The callee's own bucket is untouched: it can still call.
    assert await callee.call(proc, "from the callee") == "from the callee"


async def test_sessions_stop_at_the_authid_and_realm_limits(new_router):
    r = new_router("quota-sessions", config=QUOTA_CONFIG)
    svc = [await connect(r, "websocket", "json", authid="svc", ticket="svc-secret", authmethods=["ticket"]) for _ in range(2)]
    with pytest.raises(JoinFailed) as third:
        await connect(r, "rawsocket", "json", authid="svc", ticket="svc-secret", authmethods=["ticket"])
    assert (third.value.reason, third.value.message) == (
        "wamp.error.limit_reached", "'svc' may hold at most 2 sessions in realm 'realm1'")
    others = [await connect(r, "websocket", "msgpack") for _ in range(2)]
    with pytest.raises(JoinFailed) as fifth:
        await connect(r, "websocket", "json")
    assert (fifth.value.reason, fifth.value.message) == ("wamp.error.limit_reached", "realm 'realm1' holds at most 4 sessions")
    # A session that leaves makes room.
    await svc[0].leave()
    deadline = asyncio.get_running_loop().time() + 3
    while True:
        try:
            again = await connect(r, "websocket", "json", authid="svc", ticket="svc-secret", authmethods=["ticket"])
            break
        except JoinFailed:
            assert asyncio.get_running_loop().time() < deadline, "no room after a session left"
            await asyncio.sleep(0.02)
    assert again.state.joined.result().authid == "svc"
    del others
