"""Session establishment: HELLO/WELCOME/ABORT/GOODBYE, ticket auth, RawSocket
handshake, Unix socket, shutdown on SIGTERM."""

import asyncio

import pytest

from harness import SERIALIZERS, SPREAD, all_combos, spread_combos, uniq
from harness.client import Inbox, JoinFailed, connect
from harness.expect import BROKER_FEATURES, DEALER_FEATURES, MAX_SESSION_ID, UNKNOWN_TO_AUTOBAHN
from harness.rawsocket import ABORT, WELCOME, RawSocketClient
from autobahn.wamp.types import PublishOptions, SubscribeOptions


def _true_features(role_features) -> set:
    """Names of the features an autobahn RoleFeatures object has set to True."""
    return {k for k, v in vars(role_features).items() if v is True}


@all_combos
async def test_join_anonymous(router, combo):
    s = await connect(router, *combo)
    d = s.state.joined.result()
    assert d.realm == "realm1"
    assert isinstance(d.session, int) and 1 <= d.session <= MAX_SESSION_ID
    assert d.authrole == "anonymous"
    assert d.authmethod == "anonymous"
    assert isinstance(d.authid, str) and d.authid != ""
    roles = s.state.welcome.roles
    assert set(roles) == {"broker", "dealer"}
    assert _true_features(roles["broker"]) == BROKER_FEATURES - UNKNOWN_TO_AUTOBAHN
    assert _true_features(roles["dealer"]) == DEALER_FEATURES - UNKNOWN_TO_AUTOBAHN
    assert s.state.challenges == []


@all_combos
async def test_goodbye_is_answered(router, combo):
    s = await connect(router, *combo)
    s.leave("wamp.close.normal")
    details = await asyncio.wait_for(s.state.left, 3)
    assert details.reason == "wamp.close.goodbye_and_out"
    # autobahn closes the transport after the GOODBYE exchange
    await asyncio.wait_for(s.state.disconnected, 3)


async def test_session_ids_are_distinct(router):
    sessions = [await connect(router, t, s) for t, s in SPREAD * 2]
    ids = [s.id for s in sessions]
    assert len(set(ids)) == len(ids), ids


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_welcome_details_on_the_wire(router, serializer):
    """Exact WELCOME as sent by the router (RawSocket, no autobahn parsing)."""
    c = RawSocketClient(serializer)
    welcome = await c.join(router)
    assert len(welcome) == 3, welcome
    assert welcome[0] == WELCOME
    session_id, details = welcome[1], welcome[2]
    assert isinstance(session_id, int) and 1 <= session_id <= MAX_SESSION_ID
    assert details["authrole"] == "anonymous"
    assert details["authmethod"] == "anonymous"
    assert isinstance(details["authid"], str) and details["authid"]
    roles = details["roles"]
    assert set(roles) == {"broker", "dealer"}, roles
    for role, expected in (("broker", BROKER_FEATURES), ("dealer", DEALER_FEATURES)):
        features = roles[role]["features"]
        assert all(isinstance(v, bool) for v in features.values()), features
        announced = {k for k, v in features.items() if v}
        assert announced == expected, (
            f"{role}: announced but not tested: {sorted(announced - expected)}; "
            f"tested but not announced: {sorted(expected - announced)}")
    c.close()


@spread_combos
async def test_unknown_realm_is_aborted(router, combo):
    with pytest.raises(JoinFailed) as ei:
        await connect(router, *combo, realm="com.example.no_such_realm")
    assert ei.value.reason == "wamp.error.no_such_realm"


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_unknown_realm_abort_on_the_wire(router, serializer):
    c = RawSocketClient(serializer)
    await c.connect(router)
    reply = await c.hello("com.example.nope")
    assert reply[0] == ABORT and len(reply) == 3, reply
    assert isinstance(reply[1], dict)
    assert reply[2] == "wamp.error.no_such_realm"
    c.close()


# ---------------------------------------------------------------- ticket auth


@spread_combos
async def test_ticket_auth_alice(auth_router, combo):
    s = await connect(auth_router, *combo, authid="alice", ticket="alice-secret")
    assert [c.method for c in s.state.challenges] == ["ticket"]
    d = s.state.joined.result()
    assert d.realm == "realm1"
    assert d.authid == "alice"
    assert d.authrole == "user"
    assert d.authmethod == "ticket"


@spread_combos
async def test_ticket_auth_bob(auth_router, combo):
    s = await connect(auth_router, *combo, authid="bob", ticket="bob-secret")
    d = s.state.joined.result()
    assert (d.authid, d.authrole, d.authmethod) == ("bob", "reader", "ticket")


@spread_combos
async def test_ticket_auth_wrong_ticket(auth_router, combo):
    with pytest.raises(JoinFailed) as ei:
        await connect(auth_router, *combo, authid="alice", ticket="not-the-secret")
    assert ei.value.reason == "wamp.error.authentication_failed"
    assert [c.method for c in ei.value.state.challenges] == ["ticket"]


async def test_ticket_of_another_principal_is_rejected(auth_router):
    with pytest.raises(JoinFailed) as ei:
        await connect(auth_router, "websocket", "json", authid="bob", ticket="alice-secret")
    assert ei.value.reason == "wamp.error.authentication_failed"


async def test_ticket_auth_wrong_ticket_others_unaffected(auth_router):
    alice = await connect(auth_router, "rawsocket", "cbor", authid="alice", ticket="alice-secret")
    with pytest.raises(JoinFailed):
        await connect(auth_router, "websocket", "msgpack", authid="alice", ticket="x")
    topic = uniq("com.example.public.auth")
    inbox = Inbox()
    await alice.subscribe(inbox, topic)
    other = await connect(auth_router, "websocket", "json")
    await other.publish(topic, 42, options=PublishOptions(acknowledge=True))
    await inbox.wait_for(1)
    assert inbox.items[0].args == (42,)


@spread_combos
async def test_anonymous_on_auth_router(auth_router, combo):
    s = await connect(auth_router, *combo)
    d = s.state.joined.result()
    assert d.authrole == "anonymous"
    assert d.authmethod == "anonymous"
    assert s.state.challenges == []


# ---------------------------------------------------------------- RawSocket handshake


async def _raw_handshake(router, octets: bytes) -> tuple[bytes, RawSocketClient]:
    c = RawSocketClient("json")
    await c.open(router.rs_host, router.rs_port)
    try:
        reply = await c.handshake(octets)
    except (asyncio.IncompleteReadError, ConnectionResetError) as e:
        raise AssertionError(
            f"router closed the connection instead of answering handshake {octets.hex()}: "
            f"{e!r}") from None
    return reply, c


async def _assert_closed(c: RawSocketClient, timeout: float = 2.0) -> None:
    try:
        data = await asyncio.wait_for(c.reader.read(), timeout)
    except ConnectionResetError:
        return  # closed (with RST): fine
    except asyncio.TimeoutError:
        raise AssertionError(f"connection still open {timeout}s later") from None
    assert data == b"", f"expected the router to close the connection, got {data!r}"


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_rawsocket_handshake_accepts(router, serializer):
    sid = {"json": 1, "msgpack": 2, "cbor": 3}[serializer]
    reply, c = await _raw_handshake(router, bytes([0x7F, 0xF0 | sid, 0, 0]))
    # router echoes the serializer and announces its own limit (16 MiB -> 15)
    assert reply == bytes([0x7F, 0xF0 | sid, 0, 0]), reply.hex()
    c.close()


async def test_rawsocket_handshake_announces_configured_limit(auth_router):
    """max_message_size = 65536 = 2**(9+7): the reply's LENGTH nibble is 7."""
    reply, c = await _raw_handshake(auth_router, bytes([0x7F, 0xF1, 0, 0]))
    assert reply == bytes([0x7F, 0x71, 0, 0]), reply.hex()
    c.close()


@pytest.mark.parametrize("serializer_id", [4, 5, 7, 15])
async def test_rawsocket_handshake_unsupported_serializer(router, serializer_id):
    reply, c = await _raw_handshake(router, bytes([0x7F, 0xF0 | serializer_id, 0, 0]))
    assert reply == bytes([0x7F, 0x10, 0, 0]), reply.hex()
    await _assert_closed(c)


@pytest.mark.parametrize("reserved", [b"\x00\x01", b"\x80\x00", b"\xff\xff"],
                         ids=["low", "high", "all"])
async def test_rawsocket_handshake_reserved_bits(router, reserved):
    reply, c = await _raw_handshake(router, b"\x7f\xf1" + reserved)
    assert reply == bytes([0x7F, 0x30, 0, 0]), reply.hex()
    await _assert_closed(c)


async def test_rawsocket_bad_magic_is_dropped(router):
    c = RawSocketClient("json")
    await c.open(router.rs_host, router.rs_port)
    c.writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await c.writer.drain()
    await _assert_closed(c)


async def test_rawsocket_ping_is_answered(router):
    """RawSocket PING (frame type 1) must be answered with a PONG echoing the payload."""
    c = RawSocketClient("msgpack")
    await c.join(router)
    await c.send_frame(b"ping-payload-\x00\x01", frame_type=1)
    frame_type, payload = await c.recv_frame(2.0)
    assert (frame_type, payload) == (2, b"ping-payload-\x00\x01")
    c.close()


# ---------------------------------------------------------------- WebSocket subprotocols


async def _ws_upgrade(router, protocols: str) -> tuple[int, dict]:
    """Raw HTTP upgrade request; returns (status, lower-cased response headers)."""
    reader, writer = await asyncio.open_connection(router.ws_host, router.ws_port)
    path = router.ws_url.split(str(router.ws_port), 1)[1] or "/"
    writer.write((
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {router.ws_host}:{router.ws_port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {protocols}\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    writer.close()
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


@pytest.mark.parametrize("offer,acceptable", [
    ("wamp.2.json", {"wamp.2.json"}),
    ("wamp.2.msgpack", {"wamp.2.msgpack"}),
    ("wamp.2.cbor", {"wamp.2.cbor"}),
    ("wamp.2.ubjson, wamp.2.cbor", {"wamp.2.cbor"}),
    # RFC 6455 lets the server pick any offered protocol it supports
    ("wamp.2.flatbuffers, wamp.2.msgpack, wamp.2.json", {"wamp.2.msgpack", "wamp.2.json"}),
], ids=["json", "msgpack", "cbor", "skip-unsupported", "two-supported"])
async def test_websocket_subprotocol_selection(router, offer, acceptable):
    status, headers = await _ws_upgrade(router, offer)
    assert status == 101, (status, headers)
    assert headers.get("sec-websocket-protocol") in acceptable, headers
    assert headers.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", headers


async def test_websocket_unsupported_subprotocol_refused(router):
    """Only unknown subprotocols offered: the router must not accept a WAMP
    session (no 101, or a 101 that selects no subprotocol)."""
    status, headers = await _ws_upgrade(router, "wamp.2.ubjson")
    assert status != 101 or "sec-websocket-protocol" not in headers, (status, headers)


# ---------------------------------------------------------------- Unix socket


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_unix_socket_session(unix_router, serializer):
    """RawSocket over the Unix socket: join, then pub/sub and RPC with a WebSocket peer."""
    u = await connect(unix_router, "unix", serializer)
    d = u.state.joined.result()
    assert (d.realm, d.authrole) == ("realm1", "anonymous")
    ws = await connect(unix_router, "websocket", "json")

    topic, proc = uniq("com.example.unix.topic"), uniq("com.example.unix.proc")
    inbox = Inbox()
    await u.subscribe(inbox, topic)
    await u.register(lambda a, b: [a, b, a + b], proc)

    pub = await ws.publish(topic, "über", b"\x00\xff", k=[1.5, None],
                           options=PublishOptions(acknowledge=True))
    assert isinstance(pub.id, int)
    await inbox.wait_for(1)
    assert inbox.items[0].args == ("über", b"\x00\xff")
    assert inbox.items[0].kwargs == {"k": [1.5, None]}
    assert await ws.call(proc, 20, 22) == [20, 22, 42]


# ---------------------------------------------------------------- shutdown


@pytest.mark.deadline(20)
async def test_sigterm_sends_system_shutdown(new_router):
    r = new_router("shutdown")
    sessions = [await connect(r, t, s) for t, s in SPREAD]
    inbox = Inbox()
    await sessions[0].subscribe(inbox, "com.example.shutdown", options=SubscribeOptions())
    r.terminate()
    for s in sessions:
        details = await asyncio.wait_for(asyncio.shield(s.state.left), 5)
        assert details.reason == "wamp.close.system_shutdown", (s, details)
    for s in sessions:
        await asyncio.wait_for(asyncio.shield(s.state.disconnected), 5)
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, r.wait, 5)
    assert code == 0, f"router exit code {code}\n{r.stderr_tail()}"


@pytest.mark.deadline(20)
async def test_sigint_sends_system_shutdown(new_router):
    import signal
    r = new_router("shutdown-int")
    s = await connect(r, "rawsocket", "cbor")
    r.terminate(signal.SIGINT)
    details = await asyncio.wait_for(asyncio.shield(s.state.left), 5)
    assert details.reason == "wamp.close.system_shutdown"
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, r.wait, 5)
    assert code == 0, f"router exit code {code}\n{r.stderr_tail()}"
