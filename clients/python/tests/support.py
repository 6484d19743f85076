"""What the switchyard-ship tests drive: the shipper as a process, a subscriber that
gathers every event of a topic, a router started late on a chosen port, and a TCP proxy
that does to a connection what a network does.

    ship = await Ship.start("--url", router.ws_url, "--container", cid)
    await ship.write(["a", "b"]); await ship.close_stdin()
    assert await ship.wait() == 0
    events = await Collector.start(router, topic); await events.wait_for(2)
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.client import connect
from harness.router import Router

# the console script pip installed beside the interpreter running the tests
SHIP = Path(sys.executable).parent / "switchyard-ship"

_running: list["Ship"] = []


def uniq(prefix: str = "c") -> str:
    """A container id no other test uses (each test gets topics of its own)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(first: int, last: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {i}" for i in range(first, last + 1)]


# ------------------------------------------------------------------ the shipper


class Ship:
    """``switchyard-ship ARGS`` with a pipe on its standard input; its stderr (the
    log) is gathered line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, args: tuple[str, ...]):
        self.proc = proc
        self.args = args
        self.log: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read_log())

    @classmethod
    async def start(cls, *args: str, stdin: bool = True,
                    env: dict[str, str] | None = None) -> "Ship":
        """``env``: variables added to the test's environment."""
        if not SHIP.exists():
            raise AssertionError(f"{SHIP} not found: pip install ./clients/python into "
                                 "the venv running the tests")
        environment = {k: v for k, v in os.environ.items() if k != "SWITCHYARD_TICKET"}
        environment.update(env or {})
        proc = await asyncio.create_subprocess_exec(
            str(SHIP), *args, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=environment)
        ship = cls(proc, args)
        _running.append(ship)
        return ship

    async def _read_log(self) -> None:
        async for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def write(self, text_lines: list[str]) -> None:
        self.proc.stdin.write("".join(f"{line}\n" for line in text_lines).encode())
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        self.proc.stdin.close()
        await self.proc.stdin.wait_closed()

    def matches(self, pattern: str) -> list[re.Match]:
        rx = re.compile(pattern)
        return [m for m in map(rx.search, self.log) if m]

    async def wait_log(self, pattern: str, count: int = 1, timeout: float = 5.0) -> list[re.Match]:
        """The first ``count`` log lines matching ``pattern`` (a regex), once there."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.matches(pattern)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0 or (self._reader.done() and len(found) < count):
                raise AssertionError(
                    f"expected {count} log line(s) matching {pattern!r} within {timeout}s, "
                    f"got {len(found)}; the shipper's log:\n" + "\n".join(self.log))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return found[:count]

    def stream(self) -> str:
        """The stream id the shipper announced at start."""
        found = self.matches(r"\(stream ([0-9a-f]+)\)$")
        assert found, "no 'shipping ... (stream ID)' line in the log:\n" + "\n".join(self.log)
        return found[0].group(1)

    def summary(self) -> str:
        """The last line before exit: counts of what happened."""
        found = self.matches(r"INFO (\d+ lines read, .*)$")
        assert found, "no summary line in the log:\n" + "\n".join(self.log)
        return found[-1].group(1)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 5.0) -> int:
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"the shipper did not exit within {timeout}s; its log:\n"
                                 + "\n".join(self.log)) from None
        await self._reader
        return code


async def kill_all_shippers() -> None:
    while _running:
        ship = _running.pop()
        if ship.proc.returncode is None:
            ship.proc.kill()
            await ship.proc.wait()
        ship._reader.cancel()


# ------------------------------------------------------------------ the subscriber


@dataclass
class Event:
    line: str
    stream: str
    seq: int
    dropped: int | None


class Collector:
    """Every event of ``topic``: those published before it subscribed (from
    ``wamp.subscription.get_events``, which returns history up to the subscription's
    attach point) followed by the live ones, so nothing is missed or seen twice
    whenever the shipper starts."""

    def __init__(self) -> None:
        self.history: list[Event] = []
        self.live: list[Event] = []
        self._changed = asyncio.Event()

    @classmethod
    async def start(cls, router, topic: str, **connect_kwargs) -> "Collector":
        c = cls()
        c.session = await connect(router, **connect_kwargs)
        subscription = await c.session.subscribe(c._on_event, topic)
        history = await c.session.call("wamp.subscription.get_events", subscription.id)
        c.history = [cls._event(e["args"], e["kwargs"]) for e in history]
        c._changed.set()
        return c

    @staticmethod
    def _event(args, kwargs) -> Event:
        assert len(args) == 1 and isinstance(args[0], str), f"args: {args!r}"
        assert set(kwargs) <= {"stream", "seq", "dropped"}, f"kwargs: {kwargs!r}"
        return Event(args[0], kwargs["stream"], kwargs["seq"], kwargs.get("dropped"))

    def _on_event(self, *args, **kwargs) -> None:
        self.live.append(self._event(args, kwargs))
        self._changed.set()

    @property
    def events(self) -> list[Event]:
        return self.history + self.live

    @property
    def lines(self) -> list[str]:
        return [e.line for e in self.events]

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.events]

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[Event]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.events) < n:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"expected {n} events within {timeout}s, got "
                                     f"{len(self.events)}: {self.lines!r}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return self.events


# ------------------------------------------------------------------ the network


class LateRouter(Router):
    """A router whose WebSocket listener is on ``port`` (chosen before it starts)."""

    def __init__(self, port: int):
        super().__init__(f"late-{port}")
        self.port = port

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = f"127.0.0.1:{self.port}"
        return cmd


class Proxy:
    """A TCP proxy between the shipper and the router.

    ``drop_from_router``: what the router sends is discarded (the publications arrive,
    their PUBLISHED answers are lost); ``drop_to_router``: what the client sends is
    discarded (the publications never arrive). ``cut()`` resets every connection
    through the proxy, on both sides, and ends both modes: the next connection is
    clean.
    """

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.drop_from_router = False
        self.drop_to_router = False
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> "Proxy":
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, router) -> str:
        return router.ws_url.replace(f":{router.ws_port}/", f":{self.port}/")

    async def _accept(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.pairs.append((writer, up_writer))
        for src, dst, to_router in ((reader, up_writer, True), (up_reader, writer, False)):
            t = asyncio.create_task(self._pipe(src, dst, to_router))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def _pipe(self, src, dst, to_router: bool):
        try:
            while data := await src.read(65536):
                if self.drop_to_router if to_router else self.drop_from_router:
                    continue
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        dst.transport.abort()

    def cut(self) -> None:
        for a, b in self.pairs:
            a.transport.abort()
            b.transport.abort()
        self.pairs.clear()
        self.drop_from_router = self.drop_to_router = False

    async def close(self) -> None:
        self.cut()
        self.server.close()
        for t in list(self.tasks):
            t.cancel()
