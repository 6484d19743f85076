"""Shipping standard input and a followed file to a real router (realm1, which stores
every topic): every line once, in order, with its seq; stopping; usage errors."""

from __future__ import annotations

import asyncio
import os

from support import Collector, Ship, free_port, lines, uniq


async def test_stdin_every_line_in_order_with_pipelined_publications(router):
    cid = uniq()
    events = await Collector.start(router, f"containers.{cid}.logs")
    ship = await Ship.start("--url", router.ws_url, "--container", cid, "--window", "8")
    sent = lines(1, 2000) + ["", "caf\u00e9", "a last line without its newline"]
    ship.proc.stdin.write("\n".join(sent).encode())
    await ship.close_stdin()
    assert await ship.wait(10) == 0
    await events.wait_for(len(sent))
    assert events.lines == sent
    assert events.seqs == list(range(1, len(sent) + 1))
    assert {e.stream for e in events.events} == {ship.stream()}
    assert {e.dropped for e in events.events} == {None}
    # 2,003 lines come far faster than one round trip each: the window fills up
    assert ship.summary() == ("2003 lines read, 2003 published, 0 dropped, 0 unacknowledged; "
                              "0 re-sent and 0 found already published after a reconnect; "
                              "0 refused; 1 sessions; at most 8 in flight")
    await asyncio.sleep(0.2)
    assert len(events.events) == len(sent), "an event after the shipper left"


async def test_follow_through_rotation_and_truncation(router, tmp_path):
    cid = uniq()
    path = tmp_path / "app.log"
    writer = open(path, "a", buffering=1)
    writer.write("a1\na2\n")
    events = await Collector.start(router, f"containers.{cid}.logs")
    ship = await Ship.start("--url", router.ws_url, "--container", cid, "--follow", str(path),
                            "--poll-interval", "0.05", stdin=False)
    await events.wait_for(2)
    writer.write("a3\na4")
    await events.wait_for(3)
    await asyncio.sleep(0.3)
    assert events.lines == ["a1", "a2", "a3"], "an unfinished line was shipped"
    writer.write(" end\n")
    await events.wait_for(4)

    # rotation by rename and create, the writer adding a line to the old file after
    # the rename: the old file is read to its end before the new one
    os.rename(path, tmp_path / "app.log.1")
    writer.write("a5\n")
    writer.close()
    writer = open(path, "a", buffering=1)
    writer.write("b1\nb2\n")
    await events.wait_for(7)
    await ship.wait_log(r"app\.log was rotated$")

    # copytruncate: the file is emptied in place, and written again from its start
    os.truncate(path, 0)
    writer.write("c1\n")
    await events.wait_for(8)
    await ship.wait_log(r"app\.log was truncated: reading it again from its start$")
    writer.close()

    ship.signal()
    assert await ship.wait() == 0
    assert events.lines == ["a1", "a2", "a3", "a4 end", "a5", "b1", "b2", "c1"]
    assert events.seqs == list(range(1, 9))
    assert ship.summary().startswith("8 lines read, 8 published, 0 dropped, 0 unacknowledged;")


async def test_follow_from_the_end(router, tmp_path):
    cid = uniq()
    path = tmp_path / "app.log"
    path.write_text("written before the shipper started\n")
    events = await Collector.start(router, f"containers.{cid}.logs")
    ship = await Ship.start("--url", router.ws_url, "--container", cid, "--follow", str(path),
                            "--start-at", "end", "--poll-interval", "0.05", stdin=False)
    # the file is opened before the connection is made (both start together; opening
    # does not wait)
    await ship.wait_log(r"INFO joined realm realm1")
    with open(path, "a") as f:
        f.write("new 1\nnew 2\n")
    await events.wait_for(2)
    ship.signal()
    assert await ship.wait() == 0
    assert (events.lines, events.seqs) == (["new 1", "new 2"], [1, 2])


async def test_stopped_with_lines_unpublished_exits_1():
    # nothing listens on the port: the lines cannot be published
    ship = await Ship.start("--url", f"ws://127.0.0.1:{free_port()}/ws", "--container", uniq(),
                            "--backoff-initial", "0.05", "--flush-timeout", "0.3")
    await ship.write(lines(1, 3))
    await ship.wait_log(r"end of input|retrying in")
    await ship.wait_log(r"retrying in", count=2)
    ship.signal()
    assert await ship.wait() == 1
    await ship.wait_log(r"stopping: 3 lines to publish, waiting at most 0\.3 s$")
    await ship.wait_log(r"ERROR 3 lines were not acknowledged and are lost$")
    assert ship.summary() == ("3 lines read, 0 published, 0 dropped, 3 unacknowledged; "
                              "0 re-sent and 0 found already published after a reconnect; "
                              "0 refused; 0 sessions; at most 0 in flight")


async def test_usage_errors_exit_2():
    bad_id = await Ship.start("--container", "c1.logs", stdin=False)
    both = await Ship.start("--container", "c1", "--follow", "app.log", "-", stdin=False)
    neither = await Ship.start(stdin=False)
    bad_url = await Ship.start("--container", "c1", "--url", "http://127.0.0.1:8080/ws",
                               stdin=False)
    assert [await s.wait() for s in (bad_id, both, neither, bad_url)] == [2, 2, 2, 2]
    assert bad_id.log[-1] == ("switchyard-ship: error: argument --container: 'c1.logs' is not "
                              "a container id (one URI component: no '.', '#' or space)")
    assert both.log[-1] == ("switchyard-ship: error: give either --follow FILE or '-' "
                            "(standard input), not both")
    assert neither.log[-1] == ("switchyard-ship: error: one of the arguments --container "
                               "--topic is required")
    assert bad_url.log[-1].startswith("switchyard-ship: error: argument --url: ")


async def test_answers_no_retry_can_change_exit_3(router):
    no_realm = await Ship.start("--url", router.ws_url, "--realm", "nosuchrealm",
                                "--container", uniq())
    # strict URIs (the default): no capital letters
    bad_topic = await Ship.start("--url", router.ws_url, "--topic", "containers.C1.logs")
    for ship in (no_realm, bad_topic):
        await ship.write(["a line"])
    assert [await no_realm.wait(), await bad_topic.wait()] == [3, 3]
    assert no_realm.matches(r"ERROR the router refused the session: wamp\.error\.no_such_realm")
    assert bad_topic.matches(r"ERROR the router refused line 1: wamp\.error\.invalid_uri")
    assert [s.summary() for s in (no_realm, bad_topic)] == [
        "1 lines read, 0 published, 0 dropped, 1 unacknowledged; 0 re-sent and 0 found "
        f"already published after a reconnect; 0 refused; {n} sessions; at most {n} in flight"
        for n in (0, 1)]
