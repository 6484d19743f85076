"""Open joined autobahn-python (asyncio) sessions against a Switchyard router.

    s = await connect(router, "websocket", "msgpack")
    s = await connect(router, "rawsocket", "cbor", authid="alice", ticket="alice-secret")
    s = await connect(router, "unix", "json")
    s = await connect(router, authid="carol", authmethods=["wampcra"],
                      on_challenge=lambda session, challenge: signature)

The returned object is an ``autobahn.asyncio.wamp.ApplicationSession``
(subclass ``Client``) that has joined; ``s.state`` holds what happened during
the handshake and on close.  Every session opened through ``connect`` is
remembered so that the test runner can drop it after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

# ujson would make autobahn lose binary (bytes) transparency over JSON
os.environ.pop("AUTOBAHN_USE_UJSON", None)

import txaio  # noqa: E402

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import message  # noqa: E402
from autobahn.wamp.request import UnregisterRequest, UnsubscribeRequest  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import ComponentConfig  # noqa: E402

SERIALIZERS = {
    "json": JsonSerializer,
    "msgpack": MsgPackSerializer,
    "cbor": CBORSerializer,
}

DEFAULT_TIMEOUT = 5.0

# sessions opened by connect() in the running test; closed by the test runner
_open_sessions: list["Client"] = []


class JoinFailed(Exception):
    """The router answered HELLO with ABORT (or closed the transport)."""

    def __init__(self, reason: str | None, message: str | None, state: "SessionState"):
        super().__init__(f"join failed: reason={reason!r} message={message!r}")
        self.reason = reason
        self.message = message
        self.state = state


@dataclass
class SessionState:
    transport: str
    serializer: str
    realm: str
    authid: str | None = None
    ticket: str | None = None
    authmethods: list[str] | None = None
    # HELLO.Details.authextra, and the answer to a CHALLENGE other than a ticket's:
    # on_challenge(session, challenge) -> signature (e.g. an autobahn authenticator's)
    authextra: dict | None = None
    on_challenge: Any = None
    challenges: list = field(default_factory=list)
    welcome: Any = None  # autobahn.wamp.message.Welcome
    leave_details: Any = None  # autobahn.wamp.types.CloseDetails
    joined: asyncio.Future = None
    left: asyncio.Future = None
    disconnected: asyncio.Future = None
    protocol: Any = None
    # every WAMP message the session received, in order, recorded before autobahn
    # handles it (so also the one autobahn fails on)
    received: list = field(default_factory=list)


def _resolve(fut: asyncio.Future, value) -> None:
    if fut is not None and not fut.done():
        fut.set_result(value)


class Client(ApplicationSession):
    """ApplicationSession that reports its lifecycle into a SessionState."""

    state: SessionState

    def __init__(self, config: ComponentConfig, state: SessionState):
        super().__init__(config)
        self.state = state

    def onConnect(self):
        st = self.state
        self.join(st.realm, authmethods=st.authmethods, authid=st.authid, authextra=st.authextra)

    def onChallenge(self, challenge):
        self.state.challenges.append(challenge)
        if challenge.method == "ticket" and self.state.ticket is not None:
            return self.state.ticket
        if self.state.on_challenge is not None:
            return self.state.on_challenge(self, challenge)
        raise Exception(f"unexpected challenge {challenge.method!r} {challenge.extra!r}")

    def onWelcome(self, welcome):
        self.state.welcome = welcome
        return None

    def onMessage(self, msg):
        self.state.received.append(msg)
        return super().onMessage(msg)

    def onJoin(self, details):
        _resolve(self.state.joined, details)

    def onLeave(self, details):
        self.state.leave_details = details
        _resolve(self.state.left, details)
        return super().onLeave(details)

    def onDisconnect(self):
        super().onDisconnect()
        _resolve(self.state.disconnected, True)

    # ---------------------------------------------------------------- helpers

    @property
    def id(self) -> int:
        return self._session_id

    @property
    def protocol(self):
        return self.state.protocol

    def abort_transport(self) -> None:
        """Drop the TCP/Unix connection without a WAMP goodbye."""
        proto = self.state.protocol
        tr = getattr(proto, "transport", None)
        if tr is not None:
            tr.abort()

    async def close(self, timeout: float = 2.0) -> None:
        """Leave with GOODBYE and wait for the transport to close."""
        if self.is_attached():
            self.leave()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.state.disconnected), timeout)
        self.abort_transport()

    def __repr__(self) -> str:
        st = self.state
        return f"<Client {st.transport}/{st.serializer} session={self._session_id} authid={self._authid}>"


def _url_for(router, transport: str):
    if transport == "websocket":
        return router.ws_host, router.ws_port
    if transport == "rawsocket":
        return router.rs_host, router.rs_port
    if transport == "unix":
        return router.unix_path, None
    raise ValueError(transport)


async def open_transport(router, transport: str, serializer: str, make_session, ssl=None):
    """Connect the transport; the session is created by autobahn on open.  ``ssl``: an
    ``ssl.SSLContext`` for a router with TLS (WebSocket and TCP RawSocket)."""
    loop = asyncio.get_running_loop()
    ser = SERIALIZERS[serializer]()
    if transport == "websocket":
        factory = WampWebSocketClientFactory(make_session, url=router.ws_url, serializers=[ser])
        # no client-side size limits: the tests probe the router's limits
        factory.setProtocolOptions(
            maxFramePayloadSize=0, maxMessagePayloadSize=0, autoFragmentSize=0,
            openHandshakeTimeout=5, closeHandshakeTimeout=1, failByDrop=False,
            autoPingInterval=0)
        _tr, proto = await loop.create_connection(factory, router.ws_host, router.ws_port, ssl=ssl)
    elif transport == "rawsocket":
        factory = WampRawSocketClientFactory(make_session, serializer=ser)
        _tr, proto = await loop.create_connection(factory, router.rs_host, router.rs_port, ssl=ssl)
    elif transport == "unix":
        factory = WampRawSocketClientFactory(make_session, serializer=ser)
        _tr, proto = await loop.create_unix_connection(factory, router.unix_path)
    else:
        raise ValueError(f"unknown transport {transport!r}")
    return proto


async def connect(router, transport: str = "websocket", serializer: str = "json", *,
                  realm: str = "realm1", authid: str | None = None,
                  ticket: str | None = None, authmethods: list[str] | None = None,
                  authextra: dict | None = None, on_challenge=None,
                  timeout: float = DEFAULT_TIMEOUT, ssl=None) -> Client:
    """Open a transport, send HELLO and return the joined session.

    Raises JoinFailed when the router ABORTs or drops the connection.
    """
    loop = asyncio.get_running_loop()
    if ticket is not None and authmethods is None:
        authmethods = ["ticket"]
    state = SessionState(transport=transport, serializer=serializer, realm=realm,
                         authid=authid, ticket=ticket, authmethods=authmethods,
                         authextra=authextra, on_challenge=on_challenge,
                         joined=loop.create_future(), left=loop.create_future(),
                         disconnected=loop.create_future())
    holder: list[Client] = []

    def make_session():
        s = Client(ComponentConfig(realm=realm), state)
        holder.append(s)
        _open_sessions.append(s)
        return s

    proto = await asyncio.wait_for(
        open_transport(router, transport, serializer, make_session, ssl=ssl), timeout)
    state.protocol = proto
    closed = proto.is_closed  # a future owned by autobahn: wait on it, never cancel it
    done, _ = await asyncio.wait({state.joined, state.left, closed}, timeout=timeout,
                                 return_when=asyncio.FIRST_COMPLETED)
    if state.joined in done or state.joined.done():
        return holder[0]
    if state.left.done():
        d = state.left.result()
        raise JoinFailed(d.reason, d.message, state)
    if closed in done:
        raise JoinFailed(None, f"transport closed before WELCOME ({transport}/{serializer})", state)
    # timeout: drop the connection
    tr = getattr(proto, "transport", None)
    if tr is not None:
        tr.abort()
    raise JoinFailed(None, f"no WELCOME/ABORT within {timeout}s ({transport}/{serializer})", state)


async def close_all_sessions(timeout: float = 2.0) -> None:
    """Called by the test runner after each test: drop everything still open."""
    sessions = list(_open_sessions)
    _open_sessions.clear()
    for s in sessions:
        proto = s.state.protocol
        tr = getattr(proto, "transport", None)
        if tr is not None and not tr.is_closing():
            tr.abort()
    # let connection_lost callbacks run
    await asyncio.sleep(0)


# --------------------------------------------------------------------------
# Inbox: a handler that records what it receives


@dataclass
class Received:
    args: tuple
    kwargs: dict
    details: Any = None


class Inbox:
    """Callable usable as event handler (or progress callback) that records calls."""

    def __init__(self, name: str = "inbox"):
        self.name = name
        self.items: list[Received] = []
        self._changed = asyncio.Event()

    def __call__(self, *args, **kwargs):
        details = kwargs.pop("details", None)
        self.items.append(Received(tuple(args), dict(kwargs), details))
        self._changed.set()

    def __len__(self):
        return len(self.items)

    def __bool__(self):
        # autobahn tests callbacks for truth (`if options.on_progress:`): an empty
        # inbox must still count as a callback
        return True

    async def wait_for(self, n: int = 1, timeout: float = 3.0) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.items) < n:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: expected {n} item(s) within {timeout}s, got "
                    f"{len(self.items)}: {self.items!r}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.items

    async def wait_until(self, predicate, timeout: float = 3.0, what: str = "condition"):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self.items):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: {what} not met within {timeout}s; "
                                     f"items: {self.items!r}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.items


# --------------------------------------------------------------------------
# low-level helpers for things autobahn's high-level API does not expose


def _with_extra_options(msg, extra: dict) -> None:
    """Make ``msg`` (PUBLISH or CALL) marshal with additional Options keys.

    Recent autobahn versions dropped ``disclose_me`` from PublishOptions and
    CallOptions, so we add it on the wire ourselves.
    """
    base = type(msg)

    def marshal(self):
        raw = base.marshal(self)
        raw[2] = dict(raw[2], **extra)
        return raw

    msg.__class__ = type(base.__name__ + "WithExtraOptions", (base,),
                         {"__slots__": (), "marshal": marshal})


@contextlib.contextmanager
def extra_options(session: Client, **extra):
    """Within the block, PUBLISH and CALL messages sent by ``session`` carry
    ``extra`` in their Options dict (e.g. ``disclose_me=True``)."""
    transport = session._transport
    orig = transport.send

    def send(msg):
        if isinstance(msg, (message.Publish, message.Call)):
            _with_extra_options(msg, extra)
        return orig(msg)

    transport.send = send
    try:
        yield
    finally:
        del transport.send


def raw_unsubscribe(session: Client, subscription_id: int) -> asyncio.Future:
    """Send UNSUBSCRIBE for an arbitrary subscription id; resolves on UNSUBSCRIBED."""
    rid = session._request_id_gen.next()
    fut = txaio.create_future()
    session._unsubscribe_reqs[rid] = UnsubscribeRequest(rid, fut, subscription_id)
    session._transport.send(message.Unsubscribe(rid, subscription_id))
    return fut


def raw_unregister(session: Client, registration_id: int) -> asyncio.Future:
    """Send UNREGISTER for an arbitrary registration id; resolves on UNREGISTERED."""
    rid = session._request_id_gen.next()
    fut = txaio.create_future()
    session._unregister_reqs[rid] = UnregisterRequest(rid, fut, registration_id)
    session._transport.send(message.Unregister(rid, registration_id))
    return fut


def pending_call_ids(session: Client) -> list[int]:
    return list(session._call_reqs.keys())


def send_cancel(session: Client, request_id: int, mode: str | None) -> None:
    session._transport.send(message.Cancel(request_id, mode=mode))
