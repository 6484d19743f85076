"""The connection loop: connect, settle what a lost connection left unknown, publish.

Every line is one event on the topic: ``args = [line]``, ``kwargs = {"stream": S,
"seq": N}``, and ``"dropped": D`` once the buffer has dropped lines (``drop-oldest``):
D is the number dropped so far in this stream, the missing seqs say which. ``stream``
is random per run of the shipper; ``seq`` counts the lines read, from 1.

Publications are acknowledged, and up to ``window`` of them are in flight at once:
under load the shipper does not wait a round trip per line, and a line leaves the
buffer only when its PUBLISHED arrives.

When a session ends, the lines sent without an answer may or may not be published
(the PUBLISHED may be what was lost). After the next join the shipper subscribes to the
topic, reads its history with ``wamp.subscription.get_events`` (after the last
publication it saw acknowledged) and looks for its own stream's seqs there: those lines
count as published, only the others are sent again. So a line is never lost and, on a
topic the router stores, never duplicated. Where the history cannot be read (a topic the
realm does not store, or a session that may not subscribe to it) the lines are sent
again and may be duplicates, which a reader can drop by (stream, seq).

A publication the router refuses (ERROR: rate limit, permission database unavailable,
not authorized) goes back to the buffer and is sent again after a backoff; lines
already in flight behind it may be published before it, which is the one case where
the topic's order differs from the input's (``seq`` keeps the input's order).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Callable

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from .backoff import Backoff
from .buffer import Line, LineBuffer
from .session import ConnectFailed, JoinRefused, Link, open_session

# Answers no retry can change: the shipper exits (code 3) rather than retry forever.
FATAL_JOIN = {"wamp.error.no_such_realm"}
FATAL_PUBLISH = {"wamp.error.invalid_uri"}
# The history could not be read for a reason that passes: rather than re-send lines
# that may be published, the shipper leaves and tries again after a backoff.
HISTORY_LATER = {"wamp.error.unavailable", "wamp.error.rate_limited",
                 "wamp.error.authorization_failed"}

ACKNOWLEDGED = PublishOptions(acknowledge=True)


class Fatal(Exception):
    """The router gave an answer that retrying cannot change."""


@dataclass
class Settings:
    url: str
    realm: str
    topic: str
    authid: str | None
    # called before each attempt: the ticket file is read afresh, so that a rotated
    # token is used without restarting the shipper; None means anonymous
    ticket: Callable[[], str | None]
    window: int
    backoff_initial: float
    backoff_max: float
    connect_timeout: float


def _ignore_event(*_args, **_kwargs) -> None:
    pass


class Shipper:
    def __init__(self, settings: Settings, buffer: LineBuffer, log: logging.Logger):
        self.s = settings
        self.buffer = buffer
        self.log = log
        self.stream = uuid.uuid4().hex[:16]
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self.refusals = Backoff(settings.backoff_initial, settings.backoff_max)
        # the last publication acknowledged: every line whose fate a lost connection
        # left unknown was sent after it, so the history is read from there
        self.last_publication: int | None = None
        self.input_done = False
        self.fatal: str | None = None
        self.sessions = 0
        self.found = 0
        self.resent = 0
        self.refused = 0
        self._paused_until = 0.0

    def end_of_input(self) -> None:
        self.input_done = True
        self.buffer.changed.set()

    @property
    def finished(self) -> bool:
        return self.input_done and self.buffer.empty

    def summary(self) -> str:
        b = self.buffer
        return (f"{b.read} lines read, {b.acknowledged} published, {b.dropped} dropped, "
                f"{len(b)} unacknowledged; {self.resent} re-sent and {self.found} found "
                f"already published after a reconnect; {self.refused} refused; "
                f"{self.sessions} sessions; at most {b.peak_in_flight} in flight")

    # ------------------------------------------------------------ connecting

    async def run(self) -> None:
        """Returns once the input has ended and every line is published; raises
        ``Fatal``. Never gives up otherwise (the caller stops it)."""
        while not self.finished:
            try:
                link = await open_session(self.s.url, self.s.realm, authid=self.s.authid,
                                          ticket=self.s.ticket(),
                                          timeout=self.s.connect_timeout)
            except JoinRefused as e:
                if e.reason in FATAL_JOIN:
                    raise Fatal(f"the router refused the session: {e}") from None
                await self._retry(logging.ERROR, f"the router refused the session ({e})")
                continue
            except ConnectFailed as e:
                await self._retry(logging.WARNING, f"cannot connect to {self.s.url} ({e})")
                continue
            self.sessions += 1
            d = link.details
            self.log.info("joined realm %s at %s as %s (role %s, session %d)",
                          d.realm, self.s.url, d.authid, d.authrole, d.session)
            try:
                await self._serve(link)
            finally:
                link.abort()
                self.buffer.connection_lost()
            if self.fatal:
                raise Fatal(self.fatal)
            if not self.finished:
                await self._retry(logging.WARNING, f"session ended ({link.why()})")

    async def _retry(self, level: int, why: str) -> None:
        delay = self.backoff.next()
        self.log.log(level, "%s; retrying in %.3f s (attempt %d)", why, delay,
                     self.backoff.failures)
        await asyncio.sleep(delay)

    # ------------------------------------------------------------ one session

    async def _serve(self, link: Link) -> None:
        if not await self._reconcile(link):
            return
        # a session that joined and could read what it needed is a success; one that
        # fails before that keeps the delays growing
        self.backoff.reset()
        loop = asyncio.get_running_loop()
        while not link.closed:
            self.buffer.changed.clear()
            if self.fatal:
                await link.leave()
                return
            if self.finished:
                self.log.info("every line is published: leaving")
                await link.leave()
                return
            timeout = None
            pause = self._paused_until - loop.time()
            if pause > 0:
                timeout = pause
            elif self.buffer.in_flight < self.s.window:
                line = self.buffer.take()
                if line is not None:
                    self._publish(link, line)
                    continue
            changed = asyncio.ensure_future(self.buffer.changed.wait())
            await asyncio.wait([changed, link.ended], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()

    def _publish(self, link: Link, line: Line) -> None:
        kwargs = {"stream": self.stream, "seq": line.seq}
        if self.buffer.dropped:
            kwargs["dropped"] = self.buffer.dropped
        gen = line.gen
        try:
            answer = link.session.publish(self.s.topic, line.text, options=ACKNOWLEDGED,
                                          **kwargs)
        except Exception as e:
            # the session went away between two checks: the line's fate is settled
            # after the reconnect like every other line sent in this session
            self.log.warning("cannot publish line %d (%s): reconnecting", line.seq, e)
            link.abort()
            return
        self.log.debug("sent line %d", line.seq)
        answer.add_done_callback(lambda f: self._answered(f, link, line.seq, gen))

    def _answered(self, f: asyncio.Future, link: Link, seq: int, gen: int) -> None:
        if f.cancelled():
            return
        e = f.exception()
        if e is None:
            # PUBLISHED is final whatever happened to the session since
            publication = f.result()
            self.last_publication = publication.id
            self.buffer.ack(seq)
            self.refusals.reset()
            self.log.debug("line %d published (publication %d)", seq, publication.id)
            return
        if link.closed or gen != self.buffer.generation:
            return  # failed because the session ended: unknown, settled after reconnecting
        if not isinstance(e, ApplicationError):
            self.log.error("line %d: %r: reconnecting", seq, e)
            link.abort()
            return
        if e.error in FATAL_PUBLISH:
            self.fatal = f"the router refused line {seq}: {e.error_message()}"
            self.buffer.changed.set()
            return
        if self.buffer.refuse(seq, gen):
            self.refused += 1
            loop = asyncio.get_running_loop()
            # one pause for the refusals of a burst, not one per line in flight
            if loop.time() >= self._paused_until:
                delay = self.refusals.next()
                self._paused_until = loop.time() + delay
                self.log.error("the router refused line %d (%s); retrying in %.3f s",
                               seq, e.error_message(), delay)

    # ------------------------------------------------------------ after a reconnect

    async def _reconcile(self, link: Link) -> bool:
        """Settles the lines whose answer a lost session took with it; False if this
        session cannot be used (it ended, or the history must be read later)."""
        unknown = self.buffer.unknown()
        if not unknown:
            return True
        session = link.session
        published: set[int] = set()
        try:
            subscription = await session.subscribe(_ignore_event, self.s.topic)
            try:
                kw = {}
                if self.last_publication is not None:
                    kw["after_publication"] = self.last_publication
                events = await session.call("wamp.subscription.get_events",
                                            subscription.id, **kw)
            finally:
                await self._unsubscribe(link, subscription)
        except Exception as e:
            if link.closed:
                return False
            error = e.error_message() if isinstance(e, ApplicationError) else repr(e)
            if isinstance(e, ApplicationError) and e.error in HISTORY_LATER:
                self.log.warning("cannot read the history of %s now (%s): leaving, to try "
                                 "again later", self.s.topic, error)
                await link.leave()
                return False
            self.log.warning("cannot read the history of %s (%s): the %d unacknowledged "
                             "lines are sent again, and any the router had published are "
                             "duplicates", self.s.topic, error, len(unknown))
        else:
            for event in events or []:
                kwargs = event.get("kwargs") or {}
                seq = kwargs.get("seq")
                if kwargs.get("stream") == self.stream and isinstance(seq, int):
                    published.add(seq)
            if events and not link.closed:
                # what is sent from now on comes after the newest event: the next read
                # of the history can start there
                self.last_publication = events[-1]["publication"]
        if link.closed:
            return False
        left, resend = self.buffer.settle(published)
        self.found += left
        self.resent += resend
        self.log.info("%d lines were unacknowledged when the last session ended: %d found "
                      "published in the topic's history, %d to send again",
                      len(unknown), left, resend)
        return True

    async def _unsubscribe(self, link: Link, subscription) -> None:
        """The subscription was only for reading the history; failing to end it costs
        only the topic's events until the session ends, so it does not undo the read."""
        if link.closed:
            return
        try:
            await subscription.unsubscribe()
        except Exception as e:
            self.log.debug("unsubscribing from %s failed: %r", self.s.topic, e)
