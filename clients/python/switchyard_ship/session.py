"""One WAMP session of the shipper: autobahn-python (asyncio) over WebSocket, JSON.

``open_session`` connects, joins the realm (anonymous, or WAMP-Ticket when a ticket is
given) and returns a ``Link``: the joined session and a ``closed`` flag that is set
*synchronously* when the session ends, before autobahn fails the requests still
waiting for an answer. The shipper relies on that order: a publication failed because
the connection went away has an unknown fate (it may be published), while one that the
router answered with ERROR is certainly not published; only ``closed`` tells them apart.

The client pings the router every ``PING_INTERVAL`` seconds and drops a connection
that does not answer within ``PING_TIMEOUT``: a connection cut without a FIN or RST (a
network partition) would otherwise hold lines unacknowledged for as long as TCP takes
to give up.
"""

from __future__ import annotations

import asyncio
import os

# ujson would be picked up from the environment and changes nothing for text payloads;
# the plain json module keeps the serializer the same on every machine
os.environ.pop("AUTOBAHN_USE_UJSON", None)

import txaio  # noqa: E402

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.serializer import JsonSerializer  # noqa: E402
from autobahn.wamp.types import CloseDetails, ComponentConfig, SessionDetails  # noqa: E402
from autobahn.websocket.util import parse_url  # noqa: E402

PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0


class ConnectFailed(Exception):
    """No session: the TCP connection, the WebSocket handshake or the join failed for
    a reason other than a refusal by the router (see ``JoinRefused``)."""


class JoinRefused(Exception):
    """The router answered HELLO with ABORT."""

    def __init__(self, reason: str, message: str | None):
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


class Link:
    """A joined session and how it ended."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.session: ApplicationSession | None = None
        self.protocol = None
        self.details: SessionDetails | None = None
        self.joined: asyncio.Future = loop.create_future()
        self.ended: asyncio.Future = loop.create_future()
        self.closed = False
        self.close_details: CloseDetails | None = None

    def mark_closed(self, details: CloseDetails | None) -> None:
        if details is not None and self.close_details is None:
            self.close_details = details
        if not self.closed:
            self.closed = True
            if not self.ended.done():
                self.ended.set_result(None)

    def why(self) -> str:
        d = self.close_details
        if d is None:
            return "the connection was lost"
        return f"{d.reason}: {d.message}" if d.message else d.reason

    def abort(self) -> None:
        """Drops the connection without GOODBYE."""
        self.mark_closed(None)
        transport = getattr(self.protocol, "transport", None)
        if transport is not None:
            transport.abort()

    async def leave(self, timeout: float = 2.0) -> None:
        """GOODBYE, then waits (a little) for the router to close the connection."""
        if self.session is not None and self.session.is_attached():
            self.session.leave()
        try:
            await asyncio.wait_for(asyncio.shield(self.ended), timeout)
        except asyncio.TimeoutError:
            pass
        self.abort()


class _Session(ApplicationSession):
    def __init__(self, config: ComponentConfig, link: Link, authid: str | None,
                 ticket: str | None):
        super().__init__(config)
        self.link = link
        link.session = self
        # ApplicationSession has read-only properties named authid and the like
        self._ship_authid = authid
        self._ship_ticket = ticket

    def onConnect(self):
        methods = ["ticket"] if self._ship_ticket is not None else ["anonymous"]
        self.join(self.config.realm, authmethods=methods, authid=self._ship_authid)

    def onChallenge(self, challenge):
        if challenge.method == "ticket" and self._ship_ticket is not None:
            return self._ship_ticket
        raise ValueError(f"the router asked for {challenge.method!r} authentication, "
                         "which the shipper does not do")

    def onJoin(self, details):
        if not self.link.joined.done():
            self.link.joined.set_result(details)

    def onLeave(self, details):
        # first: the requests autobahn fails next must see a closed link
        self.link.mark_closed(details)
        return super().onLeave(details)

    def onClose(self, wasClean):
        self.link.mark_closed(None)
        return super().onClose(wasClean)


async def open_session(url: str, realm: str, *, authid: str | None, ticket: str | None,
                       timeout: float) -> Link:
    """A joined session, or ``ConnectFailed`` / ``JoinRefused``."""
    try:
        secure, host, port, _resource, _path, _params = parse_url(url)
    except Exception as e:
        raise ValueError(f"bad --url {url!r}: {e}") from None
    loop = asyncio.get_running_loop()
    link = Link()
    config = ComponentConfig(realm=realm)
    factory = WampWebSocketClientFactory(lambda: _Session(config, link, authid, ticket),
                                         url=url, serializers=[JsonSerializer()])
    factory.setProtocolOptions(openHandshakeTimeout=timeout, closeHandshakeTimeout=1,
                               autoPingInterval=PING_INTERVAL, autoPingTimeout=PING_TIMEOUT)
    try:
        _transport, protocol = await asyncio.wait_for(
            loop.create_connection(factory, host, port, ssl=True if secure else None), timeout)
    except asyncio.TimeoutError:
        raise ConnectFailed(f"no TCP connection within {timeout:g} s") from None
    except OSError as e:
        raise ConnectFailed(e.strerror or str(e)) from None
    link.protocol = protocol
    protocol.is_closed.add_done_callback(lambda _f: link.mark_closed(None))
    done, _ = await asyncio.wait([link.joined, link.ended], timeout=timeout,
                                 return_when=asyncio.FIRST_COMPLETED)
    if link.joined in done and not link.closed:
        link.details = link.joined.result()
        return link
    link.abort()
    if not done:
        raise ConnectFailed(f"no session within {timeout:g} s")
    d = link.close_details
    if d is not None and d.reason:
        raise JoinRefused(d.reason, d.message)
    raise ConnectFailed("the connection closed before the session was established "
                        "(is the URL's path the router's WebSocket path?)")
