"""A full buffer, with the router not there yet: ``block`` stops reading and loses
nothing, ``drop-oldest`` keeps reading, drops the oldest unsent lines and says so in
every later event."""

from __future__ import annotations

import asyncio

import pytest

from support import Collector, Ship, free_port, lines, uniq


@pytest.mark.deadline(20)
async def test_block_stops_reading_and_loses_nothing(late_router):
    port = free_port()
    cid = uniq()
    ship = await Ship.start("--url", f"ws://127.0.0.1:{port}/ws", "--container", cid,
                            "--buffer", "5", "--backoff-initial", "0.05", "--backoff-max", "0.2")
    await ship.write(lines(1, 20))
    await ship.close_stdin()
    await ship.wait_log(r"WARNING buffer full \(5 lines\): reading paused until the router "
                        r"acknowledges lines$")
    # the reader holds line 6 and waits: it never gets to the end of the input
    await asyncio.sleep(0.5)
    assert not ship.matches(r"end of input"), ship.log

    router = late_router(port)
    events = await Collector.start(router, f"containers.{cid}.logs")
    assert await ship.wait(5) == 0
    await events.wait_for(20)
    assert events.lines == lines(1, 20)
    assert events.seqs == list(range(1, 21))
    assert {e.dropped for e in events.events} == {None}
    await ship.wait_log(r"INFO end of input: 20 lines read$")
    assert ship.summary().startswith("20 lines read, 20 published, 0 dropped, 0 unacknowledged;")


@pytest.mark.deadline(20)
async def test_drop_oldest_keeps_the_newest_lines_and_counts_the_others(late_router):
    port = free_port()
    cid = uniq()
    ship = await Ship.start("--url", f"ws://127.0.0.1:{port}/ws", "--container", cid,
                            "--buffer", "5", "--on-full", "drop-oldest",
                            "--backoff-initial", "0.05", "--backoff-max", "0.2")
    await ship.write(lines(1, 20))
    await ship.close_stdin()
    # the whole input is read while the router is away
    await ship.wait_log(r"INFO end of input: 20 lines read$")
    await ship.wait_log(r"WARNING buffer full \(5 lines\): dropping the oldest unsent lines$")

    router = late_router(port)
    events = await Collector.start(router, f"containers.{cid}.logs")
    assert await ship.wait(5) == 0
    await events.wait_for(5)
    assert events.lines == lines(16, 20)
    assert events.seqs == [16, 17, 18, 19, 20]
    assert [e.dropped for e in events.events] == [15] * 5
    assert ship.summary() == ("20 lines read, 5 published, 15 dropped, 0 unacknowledged; "
                              "0 re-sent and 0 found already published after a reconnect; "
                              "0 refused; 1 sessions; at most 5 in flight")
