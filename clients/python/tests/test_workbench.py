"""The workbench realm (permission graph on PostgreSQL): the shipper logs in with an
API token read from a file, and what the graph allows decides what it may publish."""

from __future__ import annotations

import pytest

from support import Collector, Ship, lines



async def _reader(wb, container: str) -> Collector:
    """bob reads c1 and c2 (the LAB graph: bob -> lab -> p1, which owns both, at read).
    Each test ships to a container of its own: the router, and the topics' history,
    are the module's."""
    return await Collector.start(wb.router, f"containers.{container}.logs", realm="workbench",
                                 ticket=wb.token("bob"))


@pytest.mark.deadline(20)
async def test_token_from_a_file_read_again_before_each_attempt(workbench, tmp_path):
    wb = workbench
    await wb.sql("insert into grants (tail_id, head_id, level) values ('alice', 'p1', 2)")
    await wb.settle()
    events = await _reader(wb, "c1")
    token_file = tmp_path / "token"
    token_file.write_text("not-a-token\n")
    ship = await Ship.start("--url", wb.router.ws_url, "--realm", "workbench",
                            "--container", "c1", "--ticket-file", str(token_file),
                            "--backoff-initial", "0.2", "--backoff-max", "0.4")
    await ship.write(lines(1, 3))
    await ship.wait_log(r"ERROR the router refused the session \(wamp\.error\."
                        r"authentication_failed: unknown token\); retrying in [0-9.]+ s "
                        r"\(attempt 1\)$")
    # the platform puts a valid token in the file: the next attempt uses it
    token_file.write_text(wb.token("alice") + "\n")
    await ship.wait_log(r"INFO joined realm workbench at ws://\S+ as alice \(role user, "
                        r"session \d+\)$")
    await ship.close_stdin()
    assert await ship.wait() == 0
    await events.wait_for(3)
    assert events.lines == lines(1, 3)
    assert events.seqs == [1, 2, 3]


@pytest.mark.deadline(20)
async def test_a_refused_line_is_published_once_permitted(workbench):
    """(With the token in $SWITCHYARD_TICKET rather than in a file.)"""
    wb = workbench
    events = await _reader(wb, "c2")
    # bob may read c2, not write it: every publication is refused, and retried
    ship = await Ship.start("--url", wb.router.ws_url, "--realm", "workbench",
                            "--container", "c2", "--backoff-initial", "0.1",
                            "--backoff-max", "0.2", env={"SWITCHYARD_TICKET": wb.token("bob")})
    await ship.wait_log(r"INFO joined realm workbench at ws://\S+ as bob \(role user, "
                        r"session \d+\)$")
    await ship.write(["refused at first"])
    await ship.wait_log(r"ERROR the router refused line 1 \(wamp\.error\.not_authorized"
                        r"[^)]*\); retrying in [0-9.]+ s$", count=2)
    assert events.lines == []
    await wb.sql("insert into grants (tail_id, head_id, level) values ('bob', 'p1', 2)")
    await wb.settle()
    await events.wait_for(1)
    await ship.write(["then permitted"])
    await ship.close_stdin()
    assert await ship.wait() == 0
    await events.wait_for(2)
    assert events.lines == ["refused at first", "then permitted"]
    assert events.seqs == [1, 2]
    assert ship.summary().startswith("2 lines read, 2 published, 0 dropped, 0 unacknowledged; "
                                     "0 re-sent and 0 found already published after a "
                                     "reconnect; ")
