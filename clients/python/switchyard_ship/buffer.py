"""The shipper's bounded buffer: every line read and not yet known to be published.

A line gets the next sequence number (1, 2, ...) when it is read, and leaves the buffer
only when the router acknowledges it (PUBLISHED) or when, after a reconnect, it is found
in the topic's history:

    unsent --take--> sent --PUBLISHED--> gone
      ^               |
      +----refuse-----+   ERROR: the router refused it, so it is certainly not published
      +----settle-----+   the connection was lost before the answer and the line is not
                          in the topic's history

The capacity counts every line in the buffer, sent or not. When it is full, ``put``
either waits for room (``block``: the source stops reading, so the input waits where it
is: in the file, or in the pipe, whose writer blocks once the pipe is full) or drops the
oldest *unsent* line (``drop-oldest``: the input never waits, the dropped lines are
counted and the count goes out with every later event). A sent line is never dropped,
since it may already be published; when every line in the buffer is sent, ``put``
waits as with ``block``.

Everything here runs on the event loop's thread; ``put`` has one caller, the source.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from dataclasses import dataclass

BLOCK = "block"
DROP_OLDEST = "drop-oldest"
POLICIES = (BLOCK, DROP_OLDEST)


class Closed(Exception):
    """The buffer takes no more lines: the shipper is stopping."""


@dataclass
class Line:
    seq: int
    text: str
    sent: bool = False
    # the session (generation) it was last sent in: answers from an older session
    # must not be counted against the current one's window
    gen: int = 0


class LineBuffer:
    def __init__(self, capacity: int, policy: str = BLOCK,
                 log: logging.Logger | None = None):
        if capacity < 1:
            raise ValueError("the buffer must hold at least one line")
        if policy not in POLICIES:
            raise ValueError(f"unknown buffer policy {policy!r}")
        self.capacity = capacity
        self.policy = policy
        self.log = log or logging.getLogger("switchyard-ship")
        self._lines: dict[int, Line] = {}
        # seqs of unsent lines, smallest first; entries whose line was dropped,
        # acknowledged or sent meanwhile are skipped when popped
        self._unsent: list[int] = []
        self.generation = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.next_seq = 1
        self.read = 0
        self.acknowledged = 0
        self.dropped = 0
        self.closed = False
        self._room = asyncio.Event()
        # set on every change the sender may be waiting for
        self.changed = asyncio.Event()
        self._full_since: float | None = None
        self._dropped_in_episode = 0

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def empty(self) -> bool:
        return not self._lines

    # ------------------------------------------------------------ the source's side

    async def put(self, text: str) -> int:
        """Adds a line; returns its sequence number. Waits while the buffer is full
        (``block``, or nothing is droppable); raises ``Closed`` once closed."""
        while True:
            if self.closed:
                raise Closed()
            if len(self._lines) < self.capacity:
                break
            if self.policy == DROP_OLDEST and self._drop_oldest():
                self._enter_full("dropping the oldest unsent lines")
                self._dropped_in_episode += 1
                break
            self._enter_full("reading paused until the router acknowledges lines")
            self._room.clear()
            await self._room.wait()
        seq = self.next_seq
        self.next_seq += 1
        self._lines[seq] = Line(seq, text)
        heapq.heappush(self._unsent, seq)
        self.read += 1
        self.changed.set()
        return seq

    def close(self) -> None:
        """No more lines: a waiting ``put`` raises ``Closed``."""
        self.closed = True
        self._room.set()

    def _enter_full(self, what: str) -> None:
        if self._full_since is None:
            self._full_since = time.monotonic()
            self.log.warning("buffer full (%d lines): %s", self.capacity, what)

    def _check_room(self) -> None:
        """Ends a full episode once the buffer is down to half: a buffer that hovers at
        its capacity (one acknowledgement, one line read) is one episode, one message."""
        if self._full_since is None or len(self._lines) > self.capacity // 2:
            return
        waited = time.monotonic() - self._full_since
        if self._dropped_in_episode:
            self.log.warning("buffer down to %d lines after %.1f s full: %d lines dropped "
                             "meanwhile (%d in all)", len(self._lines), waited,
                             self._dropped_in_episode, self.dropped)
        else:
            self.log.info("buffer down to %d lines after %.1f s full", len(self._lines), waited)
        self._full_since = None
        self._dropped_in_episode = 0

    def _drop_oldest(self) -> bool:
        while self._unsent:
            seq = heapq.heappop(self._unsent)
            line = self._lines.get(seq)
            if line is not None and not line.sent:
                del self._lines[seq]
                self.dropped += 1
                return True
        return False

    # ------------------------------------------------------------ the sender's side

    def take(self) -> Line | None:
        """The oldest unsent line, now sent in the current session; None if none."""
        while self._unsent:
            seq = heapq.heappop(self._unsent)
            line = self._lines.get(seq)
            if line is None or line.sent:
                continue
            line.sent = True
            line.gen = self.generation
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return line
        return None

    def ack(self, seq: int) -> bool:
        """PUBLISHED arrived for ``seq`` (from any session: it is published either
        way). False if the line had already left the buffer."""
        line = self._lines.pop(seq, None)
        if line is None:
            return False
        if line.sent and line.gen == self.generation:
            self.in_flight -= 1
        self.acknowledged += 1
        self._room.set()
        self.changed.set()
        self._check_room()
        return True

    def refuse(self, seq: int, gen: int) -> bool:
        """ERROR arrived for ``seq`` sent in session ``gen``: it goes back to unsent,
        before every line read after it."""
        line = self._lines.get(seq)
        if line is None or not line.sent or line.gen != gen or gen != self.generation:
            return False
        line.sent = False
        heapq.heappush(self._unsent, seq)
        self.in_flight -= 1
        self.changed.set()
        return True

    def connection_lost(self) -> None:
        """The session ended: its sent lines' fate is unknown until ``settle``."""
        self.generation += 1
        self.in_flight = 0
        self.changed.set()

    def unknown(self) -> list[Line]:
        """Lines sent in an earlier session without an answer, oldest first."""
        return [line for line in self._lines.values()
                if line.sent and line.gen != self.generation]

    def settle(self, published: set[int]) -> tuple[int, int]:
        """After a reconnect: the unknown lines whose seq is in ``published`` leave
        the buffer as acknowledged, the others become unsent again. Returns (left,
        to re-send)."""
        left = resend = 0
        for line in self.unknown():
            if line.seq in published:
                del self._lines[line.seq]
                self.acknowledged += 1
                left += 1
            else:
                line.sent = False
                heapq.heappush(self._unsent, line.seq)
                resend += 1
        self._room.set()
        self.changed.set()
        self._check_room()
        return left, resend
