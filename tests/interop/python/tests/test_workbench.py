"""The workbench realm with autobahn-python: users log in with API tokens, and what the
permission graph in PostgreSQL withdraws ends while the sessions are live.

Every test starts from the LAB graph (harness/workbench.py): alice and bob read
containers c1 and c2 through role `lab`, c3 is carol's, carol is an admin.  Events come
from the static principal controller-1 (role controller); dispatcher-1 has role
dispatcher.  Graph changes are committed with psql, as the platform would, and a test
that needs the router to have applied one waits for /metrics to show its seq.

autobahn-python 26.10 announces subscriber.features.subscription_revocation but has no
code for the message it announces: UNSUBSCRIBED with request 0 is not a pending
request, so protocol.py raises ProtocolError("UNSUBSCRIBED received for non-pending
request ID 0"), and the transport ends the session itself (WebSocket: close 1002;
RawSocket: abort).  The revoked subscriber is thus cut off entirely: fail-closed, as
docs/permissions.md says.  UNREGISTERED with request 0 it does handle: it logs the
revocation and keeps the session (and, stale, the registration in its own table).
"""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from harness import SPREAD, combo_id, observe
from harness.client import Inbox, JoinFailed, connect
from harness.workbench import SERVICE_TICKETS, token_sha256

REALM = "workbench"
ACK = PublishOptions(acknowledge=True)
NOT_AUTHORIZED = "wamp.error.not_authorized"
AUTH_FAILED = "wamp.error.authentication_failed"
CHANGES_MAX = "select max(seq) from switchyard_graph_changes"


async def user(wb, name: str | None, transport: str = "websocket", serializer: str = "json", *,
               token: str | None = None, authid: str | None = None):
    return await connect(wb.router, transport, serializer, realm=REALM, authid=authid,
                         ticket=token if token is not None else wb.token(name))


async def service(wb, authid: str, transport: str = "websocket", serializer: str = "json"):
    return await connect(wb.router, transport, serializer, realm=REALM, authid=authid,
                         ticket=SERVICE_TICKETS[authid])


def args_of(inbox: Inbox) -> list:
    return [item.args for item in inbox.items]


def unsubscribed_notices(session) -> list:
    return [(m.request, m.subscription, m.reason) for m in session.state.received
            if isinstance(m, message.Unsubscribed)]


async def revoke_alice_from_lab(wb) -> int:
    """Deletes alice's membership of `lab` and returns the change's seq."""
    return int(await wb.sql("delete from grants where tail_id = 'alice' and head_id = 'lab';"
                            + CHANGES_MAX))


async def gone(session, timeout: float = 3.0):
    """Waits until the session has left and its transport closed; returns the
    CloseDetails autobahn reported."""
    await asyncio.wait_for(asyncio.shield(session.state.disconnected), timeout)
    assert session.state.left.done(), "disconnected without onLeave"
    return session.state.left.result()


def assert_ended_by_own_protocol_error(session, transport: str, caplog) -> None:
    """What autobahn-python 26.10 does with [UNSUBSCRIBED, 0, {...}]: it fails its own
    session as a protocol error."""
    details = session.state.left.result()
    assert details.reason == "wamp.close.transport_lost"
    assert details.message == (f"WAMP transport was lost without closing the session "
                               f"{session.state.welcome.session} before")
    proto = session.state.protocol
    if transport == "websocket":
        assert proto.localCloseCode == 1002
        assert proto.localCloseReason == (b"WAMP Protocol Error (UNSUBSCRIBED received for "
                                          b"non-pending request ID 0)")
    else:
        # the RawSocket protocol aborts the connection (no close of any kind) and says so
        assert ("WampRawSocketProtocol: WAMP Protocol Error (UNSUBSCRIBED received for "
                "non-pending request ID 0) - aborting connection") in caplog.messages


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("combo", SPREAD, ids=[combo_id(c) for c in SPREAD])
async def test_token_login_welcomes_the_user_and_the_admin(workbench, combo):
    transport, serializer = combo
    alice = await user(workbench, "alice", transport, serializer)
    w = alice.state.welcome
    assert (w.authid, w.authrole, w.authmethod, w.authprovider) == ("alice", "user", "ticket", "graph")
    assert len(alice.state.challenges) == 1 and alice.state.challenges[0].method == "ticket"
    # the authid may be given too, when it is the token's user
    again = await user(workbench, "alice", transport, serializer, authid="alice")
    assert again.state.welcome.authid == "alice"
    carol = await user(workbench, "carol", transport, serializer)
    w = carol.state.welcome
    assert (w.authid, w.authrole, w.authmethod, w.authprovider) == ("carol", "admin", "ticket", "graph")


async def test_refused_tokens_say_why(workbench):
    wb = workbench
    expired = wb.token("alice", ttl="24h")
    await wb.sql("update tokens set expires_at = now() - interval '1 minute' "
                 f"where token_sha256 = '{token_sha256(expired)}'")
    revoked = wb.token("alice")
    assert wb.revoke_token(revoked) == "revoked a token of alice"
    disabled = wb.token("bob")
    await wb.sql("update principals set disabled = true where id = 'bob'")
    good = wb.token("alice")
    cases = [
        ("sy_nonsense", None, "unknown token"),
        (expired, None, "token expired"),
        (revoked, None, "token revoked"),
        (disabled, None, 'token of disabled user "bob"'),
        (good, "bob", "the token does not belong to 'bob'"),
    ]
    for token, authid, text in cases:
        with pytest.raises(JoinFailed) as e:
            await user(wb, None, token=token, authid=authid)
        assert (e.value.reason, e.value.message) == (AUTH_FAILED, text)
        assert e.value.state.welcome is None
    alice = await user(wb, None, token=good, authid="alice")
    assert alice.state.welcome.authid == "alice"


async def test_a_revoked_token_or_a_disabled_user_closes_their_sessions(workbench):
    wb = workbench
    t1, t2 = wb.token("alice"), wb.token("alice")
    a1 = await user(wb, None, token=t1)
    a2 = await user(wb, None, "rawsocket", "cbor", token=t2)
    bob = await user(wb, "bob")
    closed_before = wb.metric("switchyard_sessions_closed_by_router_total")

    assert wb.revoke_token(t1) == "revoked a token of alice"
    details = await gone(a1)
    assert (details.reason, details.message) == ("wamp.close.revoked", "the token was revoked")
    await wb.settle()
    assert a2.is_attached() and bob.is_attached()

    await wb.sql("update principals set disabled = true where id = 'alice'")
    details = await gone(a2)
    assert (details.reason, details.message) == ("wamp.close.revoked", "the user was disabled or removed")
    await wb.settle()
    assert bob.is_attached()
    assert wb.metric("switchyard_sessions_closed_by_router_total") == closed_before + 2
    # the token goes on opening nothing
    with pytest.raises(JoinFailed) as e:
        await user(wb, None, token=t1)
    assert (e.value.reason, e.value.message) == (AUTH_FAILED, "token revoked")


# --------------------------------------------------------------------------- subscriptions


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
async def test_removed_from_the_role_while_tailing_a_log(workbench, transport, caplog):
    wb = workbench
    controller = await service(wb, "controller-1")
    alice = await user(wb, "alice", transport, "msgpack")
    bob = await user(wb, "bob", "rawsocket" if transport == "websocket" else "websocket", "cbor")
    a_in, b_in = Inbox("alice"), Inbox("bob")
    a = await alice.subscribe(a_in, "containers.c1.logs")
    await bob.subscribe(b_in, "containers.c1.logs")

    await controller.publish("containers.c1.logs", "line 1", options=ACK)
    await a_in.wait_for(1)
    await b_in.wait_for(1)

    seq = await revoke_alice_from_lab(wb)
    # The router tells alice; autobahn-python fails on what it was told and leaves.
    await gone(alice)
    assert unsubscribed_notices(alice) == [(0, a.id, NOT_AUTHORIZED)]
    assert isinstance(alice.state.received[-1], message.Unsubscribed)
    assert_ended_by_own_protocol_error(alice, transport, caplog)
    await wb.settle(seq)

    await controller.publish("containers.c1.logs", "line 2", options=ACK)
    await b_in.wait_for(2)
    assert args_of(b_in) == [("line 1",), ("line 2",)]
    assert args_of(a_in) == [("line 1",)]
    # a new session of alice's may not subscribe any more
    alice2 = await user(wb, "alice", transport, "json")
    with pytest.raises(ApplicationError) as e:
        await alice2.subscribe(Inbox(), "containers.c1.logs")
    assert e.value.error == NOT_AUTHORIZED


async def test_a_prefix_subscription_gets_only_readable_containers(workbench):
    wb = workbench
    controller = await service(wb, "controller-1")
    dispatcher = await service(wb, "dispatcher-1", "rawsocket", "msgpack")
    alice = await user(wb, "alice", "websocket", "cbor")
    carol = await user(wb, "carol")
    a_in, d_in, c_in = Inbox("alice"), Inbox("dispatcher"), Inbox("carol")
    a = await alice.subscribe(a_in, "containers.", options=SubscribeOptions(match="prefix", details=True))
    d = await dispatcher.subscribe(d_in, "containers..events", options=SubscribeOptions(match="wildcard", details=True))
    c = await carol.subscribe(c_in, "containers.", options=SubscribeOptions(match="prefix", details=True))

    published = [("containers.c1.events", "queued"), ("containers.c3.events", "secret"),
                 ("containers.c2.logs", "hello"), ("containers.c3.logs", "hidden"),
                 ("containers.c1.events", "end")]
    for topic, line in published:
        await controller.publish(topic, line, options=ACK)
    # Events from one publisher reach each subscriber in order: once a subscriber has
    # the last one ("end", which all three may read), it has all it will get.
    for inbox in (a_in, d_in, c_in):
        await inbox.wait_until(lambda items: items and items[-1].args == ("end",), what="end")

    def got(inbox):
        return [(i.details.topic, i.details.subscription.id, i.args) for i in inbox.items]

    assert got(a_in) == [("containers.c1.events", a.id, ("queued",)), ("containers.c2.logs", a.id, ("hello",)),
                         ("containers.c1.events", a.id, ("end",))]
    # the dispatcher's role reads every container's events, and no logs
    assert got(d_in) == [("containers.c1.events", d.id, ("queued",)), ("containers.c3.events", d.id, ("secret",)),
                         ("containers.c1.events", d.id, ("end",))]
    # carol is an admin: she reads everything
    assert got(c_in) == [(t, c.id, (line,)) for t, line in published]

    # c2 moves out of alice's reach: its events stop, the subscription stays
    await wb.sql("update objects set owner_id = 'carol' where id = 'c2'")
    await wb.settle()
    await controller.publish("containers.c2.logs", "after", options=ACK)
    await controller.publish("containers.c1.logs", "still", options=ACK)
    await a_in.wait_until(lambda items: items[-1].args == ("still",), what="still")
    assert got(a_in)[3:] == [("containers.c1.logs", a.id, ("still",))]
    assert unsubscribed_notices(alice) == []
    assert alice.is_attached()


# --------------------------------------------------------------------------- registrations


async def test_a_revoked_registration_cancels_its_calls_in_flight(workbench):
    wb = workbench
    alice = await user(wb, "alice")
    bob = await user(wb, "bob", "rawsocket", "msgpack")
    loop = asyncio.get_running_loop()
    invoked = asyncio.Event()
    ended = loop.create_future()

    async def inspect(*args, details=None):
        invoked.set()
        try:
            await loop.create_future()  # answers never
        except asyncio.CancelledError:
            ended.set_result("cancelled")
            raise

    reg = await alice.register(inspect, "containers.c1.inspect")
    call = asyncio.ensure_future(bob.call("containers.c1.inspect"))
    await asyncio.wait_for(invoked.wait(), 3)

    seq = await revoke_alice_from_lab(wb)
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(call, 3)
    assert e.value.error == "wamp.error.canceled"
    assert list(e.value.args) == ["the callee's permission for this procedure was withdrawn"]
    await wb.settle(seq)
    # autobahn-python's callee announced call_canceling: the call is interrupted (its
    # handler cancelled), then the registration revoked, which autobahn-python logs and
    # otherwise ignores: the session stays, and so does the registration in its table
    invocation = next(m for m in alice.state.received if isinstance(m, message.Invocation))
    after = alice.state.received[alice.state.received.index(invocation) + 1:]
    assert [type(m).__name__ for m in after] == ["Interrupt", "Unregistered"]
    assert (after[0].request, after[0].mode, after[0].reason) == (invocation.request, "killnowait", None)
    assert (after[1].request, after[1].registration, after[1].reason) == (0, reg.id, NOT_AUTHORIZED)
    assert await asyncio.wait_for(ended, 1) == "cancelled"
    assert alice.is_attached()
    assert reg.id in alice._registrations and reg.active

    # nobody serves the procedure now; alice may not register it again
    with pytest.raises(ApplicationError) as e:
        await bob.call("containers.c1.inspect")
    assert e.value.error == "wamp.error.no_such_procedure"
    with pytest.raises(ApplicationError) as e:
        await alice.register(inspect, "containers.c1.inspect")
    assert e.value.error == NOT_AUTHORIZED


# --------------------------------------------------------------------------- under load

RATE = 1000       # events per second
DURATION = 2.0    # seconds


@pytest.mark.deadline(20)
async def test_a_revocation_under_1000_events_per_second(workbench, caplog):
    """controller-1 publishes 0, 1, 2, … at 1,000/s for 2 s while alice's membership
    is deleted.  Once /metrics shows the change applied, the next number published is
    the marker: alice gets nothing at or after it; bob gets every number, in order."""
    wb = workbench
    controller = await service(wb, "controller-1", "rawsocket", "msgpack")
    alice = await user(wb, "alice")
    bob = await user(wb, "bob", "websocket", "cbor")
    a_in, b_in = Inbox("alice"), Inbox("bob")
    await alice.subscribe(a_in, "containers.c1.logs")
    await bob.subscribe(b_in, "containers.c1.logs")
    loop = asyncio.get_running_loop()
    total = int(RATE * DURATION)
    published = 0
    marker = None

    async def publisher():
        nonlocal published
        start = loop.time()
        while published < total:
            due = min(total, int((loop.time() - start) * RATE))
            while published < due:
                controller.publish("containers.c1.logs", published)
                published += 1
            await asyncio.sleep(0.002)

    async def revoker():
        nonlocal marker
        await asyncio.sleep(DURATION / 3)
        seq = await revoke_alice_from_lab(wb)
        await wb.settle(seq)
        marker = published

    await asyncio.gather(publisher(), revoker())
    await b_in.wait_for(total, timeout=5)
    await gone(alice)

    bob_got = [i.args[0] for i in b_in.items]
    assert bob_got == list(range(total)), "bob missed, repeated or reordered events"
    alice_got = [i.args[0] for i in a_in.items]
    assert marker is not None and 0 < marker < total, marker
    assert alice_got == list(range(len(alice_got))), "alice's events before the change have gaps"
    assert 0 < len(alice_got) <= marker, (len(alice_got), marker)
    assert unsubscribed_notices(alice)[-1][0::2] == (0, NOT_AUTHORIZED)
    assert_ended_by_own_protocol_error(alice, "websocket", caplog)
    observe(f"alice got {len(alice_got)} events; marker {marker} of {total}")
