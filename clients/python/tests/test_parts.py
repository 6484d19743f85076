"""The shipper's pure parts, without a router: cutting bytes into lines, the backoff's
delays, and the buffer's bookkeeping (which line goes out next, what a full buffer
does, what a reconnect settles)."""

from __future__ import annotations

import asyncio

import pytest

from switchyard_ship.backoff import Backoff
from switchyard_ship.buffer import BLOCK, DROP_OLDEST, Closed, LineBuffer
from switchyard_ship.lines import LineSplitter


def test_lines_end_at_newline_and_lose_a_carriage_return():
    s = LineSplitter(100)
    assert s.feed(b"one\r\ntwo\n\nthr") == ["one", "two", ""]
    assert s.feed(b"ee\nfour") == ["three"]
    assert s.flush() == ["four"]
    assert s.flush() == []


def test_invalid_utf8_is_replaced():
    assert LineSplitter(100).feed(b"caf\xc3\xa9 \xff!\n") == ["caf\u00e9 \ufffd!"]


def test_long_lines_are_cut_at_a_character_boundary():
    s = LineSplitter(5)
    # "é" is 2 bytes: a cut at 5 bytes would split the third one
    assert s.feed("ab\u00e9\u00e9x\n".encode()) == ["ab\u00e9", "\u00e9x"]
    # an unfinished line is shipped as soon as it exceeds the limit
    assert s.feed(b"0123456789ab") == ["01234", "56789"]
    assert s.feed(b"\n") == ["ab"]


def test_backoff_doubles_to_its_cap_within_half_and_whole_ceiling():
    low = Backoff(0.1, 0.5, rng=lambda: 0.0)
    high = Backoff(0.1, 0.5, rng=lambda: 1.0)
    assert [round(low.next(), 6) for _ in range(5)] == [0.05, 0.1, 0.2, 0.25, 0.25]
    assert [round(high.next(), 6) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    high.reset()
    assert high.next() == pytest.approx(0.1)
    # a router down for a very long time
    assert Backoff(0.1, 0.5).ceiling(10_000) == 0.5


async def test_lines_go_out_in_order_and_leave_only_when_acknowledged():
    b = LineBuffer(10)
    for text in ("a", "b", "c"):
        await b.put(text)
    first, second = b.take(), b.take()
    assert (first.seq, first.text, second.seq, b.in_flight) == (1, "a", 2, 2)
    assert b.ack(2) and not b.ack(2)
    # a refused line goes back before the lines read after it
    assert b.refuse(1, b.generation)
    assert [b.take().seq, b.take().seq, b.take()] == [1, 3, None]
    assert (len(b), b.acknowledged, b.peak_in_flight) == (2, 1, 2)


async def test_a_reconnect_settles_unanswered_lines():
    b = LineBuffer(10)
    for i in range(1, 6):
        await b.put(f"l{i}")
    for _ in range(4):
        b.take()
    b.ack(1)
    b.connection_lost()
    assert [line.seq for line in b.unknown()] == [2, 3, 4]
    # refusals from the session that ended are not final any more
    assert not b.refuse(2, b.generation - 1)
    assert b.settle({2, 3}) == (2, 1)
    assert [b.take().seq, b.take().seq, b.take()] == [4, 5, None]
    assert (b.acknowledged, b.in_flight) == (3, 2)


async def test_block_waits_for_room():
    b = LineBuffer(2, BLOCK)
    await b.put("a")
    await b.put("b")
    third = asyncio.ensure_future(b.put("c"))
    await asyncio.sleep(0.01)
    assert not third.done()
    b.take()
    b.ack(1)
    assert await asyncio.wait_for(third, 1) == 3
    fourth = asyncio.ensure_future(b.put("d"))
    await asyncio.sleep(0.01)
    b.close()
    with pytest.raises(Closed):
        await asyncio.wait_for(fourth, 1)


async def test_drop_oldest_drops_unsent_lines_only():
    b = LineBuffer(3, DROP_OLDEST)
    for text in ("a", "b", "c"):
        await b.put(text)
    assert b.take().seq == 1  # in flight: may be published, never dropped
    await b.put("d")  # drops 2
    await b.put("e")  # drops 3
    assert (b.dropped, [b.take().seq, b.take().seq]) == (2, [4, 5])
    # every line is in flight: nothing can be dropped, so put waits
    sixth = asyncio.ensure_future(b.put("f"))
    await asyncio.sleep(0.01)
    assert not sixth.done()
    b.ack(1)
    assert await asyncio.wait_for(sixth, 1) == 6
