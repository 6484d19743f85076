"""Reconnecting: lines whose answer was lost are neither lost nor duplicated, and the
delays between attempts follow the backoff."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from support import Collector, Proxy, Ship, free_port, lines, uniq

SETTLED = (r"INFO {} lines were unacknowledged when the last session ended: {} found "
           r"published in the topic's history, {} to send again$")


@pytest.mark.deadline(25)
async def test_no_line_lost_or_duplicated_across_cut_connections(router):
    """Two cuts through a proxy: before the first, the router publishes ten lines whose
    PUBLISHED never reaches the shipper (sending them again would duplicate them);
    before the second, ten publications never reach the router (not sending them again
    would lose them). The subscriber, connected to the router directly, sees every
    line once, in order."""
    cid = uniq()
    events = await Collector.start(router, f"containers.{cid}.logs")
    proxy = await Proxy(router.ws_host, router.ws_port).start()
    try:
        ship = await Ship.start("--url", proxy.url(router), "--container", cid, "--verbose",
                                "--backoff-initial", "0.05", "--backoff-max", "0.2")
        await ship.write(lines(1, 10))
        await events.wait_for(10)
        await ship.wait_log(r"line 10 published")

        proxy.drop_from_router = True
        await ship.write(lines(11, 20))
        await events.wait_for(20)  # published by the router; the answers are lost
        await ship.wait_log(r"sent line 20$")
        proxy.cut()
        await ship.wait_log(SETTLED.format(10, 10, 0))

        proxy.drop_to_router = True
        await ship.write(lines(21, 30))
        await ship.wait_log(r"sent line 30$")
        proxy.cut()
        await ship.wait_log(SETTLED.format(10, 0, 10))

        await ship.write(lines(31, 40))
        await ship.close_stdin()
        assert await ship.wait() == 0
    finally:
        await proxy.close()
    await events.wait_for(40)
    assert events.lines == lines(1, 40)
    assert events.seqs == list(range(1, 41))
    assert len(ship.matches(r"WARNING session ended \(.*\); retrying in")) == 2
    # (how many were in flight at most depends on when the answers came)
    assert ship.summary().startswith(
        "40 lines read, 40 published, 0 dropped, 0 unacknowledged; 10 re-sent and 10 found "
        "already published after a reconnect; 0 refused; 3 sessions;")


def _logged_at(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


@pytest.mark.deadline(20)
async def test_backoff_until_the_router_starts(late_router):
    """No router yet: the attempts are spaced by the backoff, each delay between half
    and all of its ceiling (0.05 s doubling to 0.4 s); once the router is up, the
    lines read meanwhile are published."""
    port = free_port()
    cid = uniq()
    ship = await Ship.start("--url", f"ws://127.0.0.1:{port}/ws", "--container", cid,
                            "--backoff-initial", "0.05", "--backoff-max", "0.4")
    await ship.write(lines(1, 3))
    found = await ship.wait_log(r"WARNING cannot connect to ws://127\.0\.0\.1:\d+/ws \(.*\); "
                                r"retrying in ([0-9.]+) s \(attempt (\d+)\)$", count=7)
    delays = [float(m.group(1)) for m in found]
    assert [int(m.group(2)) for m in found] == list(range(1, 8))
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling / 2 - 0.001 <= delay <= ceiling + 0.001, (delays, ceilings)
    # jitter: the delays are not a fixed fraction of their ceilings
    assert len({round(d / c, 3) for d, c in zip(delays, ceilings)}) > 1, delays
    # each attempt waited its delay (the log's clock has milliseconds)
    attempts = [line for line in ship.log if re.search(r"retrying in", line)][:7]
    for previous, this, delay in zip(attempts, attempts[1:], delays):
        waited = (_logged_at(this) - _logged_at(previous)).total_seconds()
        assert waited >= delay - 0.002, (waited, delay)

    router = late_router(port)
    events = await Collector.start(router, f"containers.{cid}.logs")
    await ship.close_stdin()
    assert await ship.wait(5) == 0
    await events.wait_for(3)
    assert events.lines == lines(1, 3)
    assert events.seqs == [1, 2, 3]


@pytest.mark.deadline(20)
async def test_router_restart(late_router):
    """The router shuts down (GOODBYE wamp.close.system_shutdown) and comes back on the
    same port: the shipper reconnects and goes on; the new router's subscriber gets
    what was read meanwhile."""
    port = free_port()
    cid = uniq()
    first = late_router(port)
    before = await Collector.start(first, f"containers.{cid}.logs")
    ship = await Ship.start("--url", first.ws_url, "--container", cid, "--verbose",
                            "--backoff-initial", "0.05", "--backoff-max", "0.2")
    await ship.write(lines(1, 5))
    await ship.wait_log(r"line 5 published")
    first.stop()
    await ship.wait_log(r"WARNING session ended \(wamp\.close\.system_shutdown.*\); "
                        r"retrying in [0-9.]+ s \(attempt 1\)$")
    await ship.write(lines(6, 10))
    second = late_router(port)
    after = await Collector.start(second, f"containers.{cid}.logs")
    await ship.close_stdin()
    assert await ship.wait() == 0
    await after.wait_for(5)
    assert (before.lines, before.seqs) == (lines(1, 5), [1, 2, 3, 4, 5])
    assert (after.lines, after.seqs) == (lines(6, 10), [6, 7, 8, 9, 10])
    assert {e.stream for e in before.events + after.events} == {ship.stream()}
