"""Routed RPC: register/call/result, application errors, caller identification,
progressive call results, call canceling, callee loss mid-call."""

import asyncio
import time

import pytest

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions

from harness import SPREAD, all_combos, observe, partner, spread_combos, uniq
from harness.client import Inbox, connect, extra_options, pending_call_ids, send_cancel
from harness.rawsocket import INVOCATION, YIELD, RawSocketClient

DETAILS = RegisterOptions(details=True)

ARGS = [1, "two", 3.25, None, True, [1, [2]], {"a": {"b": None}}]
KWARGS = {"name": "x", "n": -7, "list": [1, 2, 3], "obj": {"k": [False]}}


@all_combos
async def test_call_args_kwargs(router, combo):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc = uniq("com.example.rpc.echo")
    seen = []

    def echo(*args, **kwargs):
        seen.append((args, kwargs))
        return CallResult(*reversed(args), count=len(args), **kwargs)

    reg = await callee.register(echo, proc)
    assert isinstance(reg.id, int) and reg.id > 0
    res = await caller.call(proc, *ARGS, **KWARGS)
    assert isinstance(res, CallResult)
    assert list(res.results) == list(reversed(ARGS))
    assert res.kwresults == dict(KWARGS, count=len(ARGS))
    assert seen == [(tuple(ARGS), KWARGS)]


@all_combos
async def test_call_single_value_and_none(router, combo):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    add, noop = uniq("com.example.rpc.add"), uniq("com.example.rpc.noop")
    await callee.register(lambda a, b: a + b, add)
    await callee.register(lambda: None, noop)
    assert await caller.call(add, 2, 3) == 5
    assert await caller.call(add, "a", "b") == "ab"
    assert await caller.call(noop) is None


async def test_call_own_registration(router):
    s = await connect(router, "rawsocket", "cbor")
    proc = uniq("com.example.rpc.self")
    await s.register(lambda x: x * 2, proc)
    assert await s.call(proc, 21) == 42


async def test_async_callee_and_concurrent_calls(router):
    callee = await connect(router, "websocket", "msgpack")
    callers = [await connect(router, t, s) for t, s in SPREAD]
    proc = uniq("com.example.rpc.slow")

    async def slow(i, delay):
        await asyncio.sleep(delay)
        return {"i": i, "double": i * 2}

    await callee.register(slow, proc)
    calls, expected = [], []
    for n, caller in enumerate(callers):
        for i in range(12):
            k = n * 100 + i
            # later calls finish first: results must still go to the right request
            calls.append(caller.call(proc, k, 0.01 * (12 - i)))
            expected.append({"i": k, "double": 2 * k})
    assert await asyncio.gather(*calls) == expected


async def test_registrations_have_distinct_ids(router):
    s = await connect(router, "websocket", "json")
    regs = [await s.register(lambda: None, uniq("com.example.rpc.ids")) for _ in range(5)]
    assert len({r.id for r in regs}) == 5


async def test_unregister_then_call(router):
    callee = await connect(router, "websocket", "cbor")
    caller = await connect(router, "rawsocket", "json")
    proc = uniq("com.example.rpc.unreg")
    reg = await callee.register(lambda: "here", proc)
    assert await caller.call(proc) == "here"
    await reg.unregister()
    with pytest.raises(ApplicationError) as ei:
        await caller.call(proc)
    assert ei.value.error == "wamp.error.no_such_procedure"


async def test_registration_released_when_callee_leaves(router):
    first = await connect(router, "rawsocket", "msgpack")
    proc = uniq("com.example.rpc.release")
    await first.register(lambda: "first", proc)
    first.abort_transport()
    await asyncio.wait_for(asyncio.shield(first.state.disconnected), 3)

    second = await connect(router, "websocket", "json")
    caller = await connect(router, "websocket", "msgpack")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    # the router may need a moment to notice the dropped TCP connection
    while True:
        try:
            await second.register(lambda: "second", proc)
            break
        except ApplicationError as e:
            if e.error != "wamp.error.procedure_already_exists" or loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    assert await caller.call(proc) == "second"


# ---------------------------------------------------------------- application errors


@all_combos
async def test_application_error(router, combo):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc = uniq("com.example.rpc.fail")

    def fail():
        raise ApplicationError("com.example.error.foo", 1, 2, x=3)

    await callee.register(fail, proc)
    with pytest.raises(ApplicationError) as ei:
        await caller.call(proc)
    e = ei.value
    assert e.error == "com.example.error.foo"
    assert e.args == (1, 2)
    assert e.kwargs == {"x": 3}


async def test_application_error_without_payload(router):
    callee = await connect(router, "rawsocket", "json")
    caller = await connect(router, "websocket", "cbor")
    proc = uniq("com.example.rpc.failbare")

    def fail():
        raise ApplicationError("com.example.error.bare")

    await callee.register(fail, proc)
    with pytest.raises(ApplicationError) as ei:
        await caller.call(proc)
    assert ei.value.error == "com.example.error.bare"
    assert ei.value.args == ()
    assert ei.value.kwargs == {}


async def test_application_error_from_async_callee(router):
    callee = await connect(router, "websocket", "msgpack")
    caller = await connect(router, "rawsocket", "msgpack")
    proc = uniq("com.example.rpc.failasync")

    async def fail(n):
        await asyncio.sleep(0.01)
        raise ApplicationError("com.example.error.async", n, detail={"n": [n]})

    await callee.register(fail, proc)
    with pytest.raises(ApplicationError) as ei:
        await caller.call(proc, 9)
    assert (ei.value.error, ei.value.args, ei.value.kwargs) == (
        "com.example.error.async", (9,), {"detail": {"n": [9]}})


# ---------------------------------------------------------------- caller identification


@all_combos
async def test_caller_identification(router, combo):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc = uniq("com.example.rpc.whoami")
    seen = []

    def whoami(details=None):
        seen.append(details)
        return "ok"

    await callee.register(whoami, proc, options=DETAILS)
    with extra_options(caller, disclose_me=True):
        f = caller.call(proc)
    assert await f == "ok"
    assert await caller.call(proc) == "ok"
    disclosed, undisclosed = seen
    assert disclosed.caller == caller.id
    assert disclosed.caller_authid == caller.authid
    assert disclosed.caller_authrole == "anonymous"
    assert disclosed.procedure == proc
    assert undisclosed.caller is None
    assert undisclosed.caller_authid is None
    assert undisclosed.caller_authrole is None
    assert undisclosed.procedure == proc


@spread_combos
async def test_user_role_always_discloses_caller(auth_router, combo):
    callee = await connect(auth_router, *combo)
    alice = await connect(auth_router, *partner(combo), authid="alice", ticket="alice-secret")
    bob = await connect(auth_router, *combo, authid="bob", ticket="bob-secret")
    proc = uniq("com.example.public.rpc.who")
    seen = []

    def who(details=None):
        seen.append(details)
        return len(seen)

    await callee.register(who, proc, options=DETAILS)
    assert await alice.call(proc) == 1
    assert await bob.call(proc) == 2
    from_alice, from_bob = seen
    assert (from_alice.caller, from_alice.caller_authid, from_alice.caller_authrole) == (
        alice.id, "alice", "user")
    # role reader has no disclose setting: bob stays anonymous to the callee
    assert (from_bob.caller, from_bob.caller_authid, from_bob.caller_authrole) == (
        None, None, None)


# ---------------------------------------------------------------- progressive call results


@all_combos
async def test_progressive_call_results(router, combo):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc = uniq("com.example.rpc.progress")
    gate = asyncio.Event()

    async def work(n, details=None):
        assert details.progress is not None
        details.progress("first", step=0)
        # the caller only opens the gate after seeing "first": progressive results
        # must be forwarded as they come, not held back until the final result
        await asyncio.wait_for(gate.wait(), 5)
        for i in range(1, n):
            details.progress(f"p{i}", step=i)
        return CallResult("final", steps=n)

    progress = Inbox("progress")

    def on_progress(*args, **kwargs):
        progress(*args, **kwargs)
        if args == ("first",):
            gate.set()

    await callee.register(work, proc, options=DETAILS)
    res = await caller.call(proc, 4, options=CallOptions(on_progress=on_progress))
    assert [(p.args, p.kwargs) for p in progress.items] == [
        (("first",), {"step": 0}), (("p1",), {"step": 1}),
        (("p2",), {"step": 2}), (("p3",), {"step": 3})]
    assert list(res.results) == ["final"] and res.kwresults == {"steps": 4}


async def test_no_progress_unless_requested(router):
    """Without receive_progress the callee must not be offered a progress callback."""
    callee = await connect(router, "rawsocket", "cbor")
    caller = await connect(router, "websocket", "json")
    proc = uniq("com.example.rpc.noprogress")
    offered = []

    def work(details=None):
        offered.append(details.progress is not None)
        return "plain"

    await callee.register(work, proc, options=DETAILS)
    assert await caller.call(proc) == "plain"
    assert offered == [False]


async def test_progressive_results_with_error_at_the_end(router):
    callee = await connect(router, "websocket", "msgpack")
    caller = await connect(router, "rawsocket", "json")
    proc = uniq("com.example.rpc.progressfail")

    def work(details=None):
        details.progress(1)
        details.progress(2)
        raise ApplicationError("com.example.error.midway", "x")

    progress = Inbox("progress")
    await callee.register(work, proc, options=DETAILS)
    with pytest.raises(ApplicationError) as ei:
        await caller.call(proc, options=CallOptions(on_progress=progress))
    assert ei.value.error == "com.example.error.midway"
    assert [p.args for p in progress.items] == [(1,), (2,)]


# ---------------------------------------------------------------- canceling


def _cancellable(started: asyncio.Event, interrupted: asyncio.Event, release: asyncio.Event):
    async def slow():
        started.set()
        try:
            await release.wait()
            return "late"
        except asyncio.CancelledError:
            interrupted.set()
            raise ApplicationError("wamp.error.canceled", "interrupted by INTERRUPT")
    return slow


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
async def test_call_cancel(router, mode):
    callee = await connect(router, "websocket", "json")
    caller = await connect(router, "rawsocket", "msgpack")
    proc, probe = uniq("com.example.rpc.cancel"), uniq("com.example.rpc.probe")
    started, interrupted, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    await callee.register(_cancellable(started, interrupted, release), proc)
    await callee.register(lambda: "alive", probe)

    f = caller.call(proc)
    await asyncio.wait_for(started.wait(), 3)
    (request_id,) = pending_call_ids(caller)
    send_cancel(caller, request_id, mode)
    with pytest.raises(ApplicationError) as ei:
        await asyncio.wait_for(f, 3)
    assert ei.value.error == "wamp.error.canceled"

    if mode == "skip":
        # no INTERRUPT; the callee's late result is discarded by the dealer
        assert await caller.call(probe) == "alive"
        assert not interrupted.is_set()
        release.set()
    else:
        await asyncio.wait_for(interrupted.wait(), 3)
    # the caller must not see anything for the canceled request (autobahn would
    # drop the connection on a RESULT/ERROR for an unknown request)
    assert await caller.call(probe) == "alive"
    assert await callee.call(probe) == "alive"
    assert caller.is_attached() and callee.is_attached()


async def test_call_cancel_via_autobahn_future(router):
    """autobahn's own cancel (Future.cancel(), CANCEL without mode)."""
    callee = await connect(router, "rawsocket", "json")
    caller = await connect(router, "websocket", "cbor")
    proc, probe = uniq("com.example.rpc.fcancel"), uniq("com.example.rpc.fprobe")
    started, interrupted, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    await callee.register(_cancellable(started, interrupted, release), proc)
    await callee.register(lambda: "alive", probe)
    f = caller.call(proc)
    await asyncio.wait_for(started.wait(), 3)
    f.cancel()
    with pytest.raises(asyncio.CancelledError):
        await f
    assert await caller.call(probe) == "alive"
    try:
        await asyncio.wait_for(interrupted.wait(), 1)
        observe("CANCEL without mode: callee got INTERRUPT")
    except asyncio.TimeoutError:
        observe("CANCEL without mode: callee got no INTERRUPT within 1s (skip behaviour)")
        release.set()
    assert await caller.call(probe) == "alive"
    assert caller.is_attached() and callee.is_attached()


# ---------------------------------------------------------------- callee / caller loss


@pytest.mark.parametrize("how", ["abort", "goodbye"])
@spread_combos
async def test_callee_disconnect_mid_call(router, combo, how):
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc = uniq("com.example.rpc.vanish")
    started = asyncio.Event()

    async def hang(*args):
        started.set()
        await asyncio.Event().wait()

    await callee.register(hang, proc)
    f = caller.call(proc, "x")
    await asyncio.wait_for(started.wait(), 3)
    t0 = time.monotonic()
    if how == "abort":
        callee.abort_transport()
    else:
        callee.leave()
    with pytest.raises(ApplicationError) as ei:
        await asyncio.wait_for(f, 2.0)
    elapsed = time.monotonic() - t0
    observe(f"caller got ERROR {ei.value.error!r} args={list(ei.value.args)} "
            f"after {elapsed:.3f}s")
    assert elapsed < 2.0
    assert ei.value.error.startswith("wamp.error.")
    # the procedure is gone with its callee
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2
    while True:
        with pytest.raises(ApplicationError) as ei2:
            await caller.call(proc)
        if ei2.value.error == "wamp.error.no_such_procedure" or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert ei2.value.error == "wamp.error.no_such_procedure"


@spread_combos
async def test_caller_disconnect_mid_call(router, combo):
    """The callee's late result for a vanished caller is dropped; nothing breaks."""
    callee = await connect(router, *combo)
    caller = await connect(router, *partner(combo))
    proc, probe = uniq("com.example.rpc.orphan"), uniq("com.example.rpc.orphanprobe")
    started, interrupted, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    await callee.register(_cancellable(started, interrupted, release), proc)
    await callee.register(lambda: "alive", probe)
    caller.call(proc)
    await asyncio.wait_for(started.wait(), 3)
    caller.abort_transport()
    await asyncio.wait_for(asyncio.shield(caller.state.disconnected), 3)
    await asyncio.sleep(0.2)
    observe("callee got INTERRUPT" if interrupted.is_set() else "callee got no INTERRUPT")
    release.set()
    other = await connect(router, *partner(combo))
    assert await other.call(probe) == "alive"
    assert callee.is_attached()


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
async def test_invocation_on_the_wire(router, serializer):
    """INVOCATION as the callee sees it: Request ids run 1, 2, 3 (session scope,
    router-to-client direction), Registration is the REGISTERED id, args/kwargs
    are passed through; YIELD reaches the caller."""
    callee = RawSocketClient(serializer)
    await callee.join(router)
    proc = uniq("com.example.rpc.wire")
    reg_id = await callee.register(proc)
    caller = await connect(router, "websocket", "json")
    calls = [caller.call(proc, i, key=[i]) for i in range(3)]
    invocations = [await callee.recv() for _ in range(3)]
    for i, inv in enumerate(invocations):
        assert inv[0] == INVOCATION, inv
        assert inv[1] == i + 1, f"INVOCATION.Request ids must count 1, 2, 3: {invocations!r}"
        assert inv[2] == reg_id
        assert inv[3] == {}, inv
        assert inv[4:] == [[i], {"key": [i]}], inv
    for inv in reversed(invocations):
        await callee.send([YIELD, inv[1], {}, [inv[4][0] * 10]])
    assert await asyncio.gather(*calls) == [0, 10, 20]
    callee.close()
