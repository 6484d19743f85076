"""Where the lines come from: standard input, or a file followed like ``tail -F``.

Both hand each line to ``put`` (``LineBuffer.put``) and wait for it: while the buffer is
full and the policy is ``block``, nothing more is read.

Standard input is read in a thread with blocking reads, which work alike on a pipe, a
redirected file and a terminal (asyncio's pipe transport refuses regular files); the
thread waits for ``put`` on the event loop, so a full buffer stops it reading and, once
the pipe's own buffer is full, blocks whoever writes into the pipe.

A followed file is polled (no inotify: the same code on every platform and file
system). At the end of the file the follower checks its path:

* a *different* file at the path (rotation by rename and create): the old file is read
  to its end once more, since its writer may have added lines just before the rename,
  and then the new file is followed from its start;
* no file at the path (between the rename and the create, or deleted): the old file is
  still followed, because its writer may still hold it open;
* the open file shorter than the read position (truncation, ``copytruncate``): it is
  read again from its start. As with ``tail``, a truncation followed by more writes than
  were read before is indistinguishable from appended data: the start of the new
  content is then missed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Awaitable, Callable

from .buffer import Closed
from .lines import LineSplitter

Put = Callable[[str], Awaitable[int]]

READ_SIZE = 65536


async def read_stdin(put: Put, splitter: LineSplitter) -> None:
    """Reads standard input to its end; returns once every line was put."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def finish(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    async def put_all(lines: list[str]) -> None:
        for line in lines:
            await put(line)

    def reader() -> None:
        error = None
        try:
            fd = 0
            while True:
                data = os.read(fd, READ_SIZE)
                lines = splitter.feed(data) if data else splitter.flush()
                # one hand-over per read, not per line: crossing threads costs more
                # than putting a line
                asyncio.run_coroutine_threadsafe(put_all(lines), loop).result()
                if not data:
                    break
        except Closed:
            pass
        except BaseException as e:  # reported on the loop, where it can be handled
            error = e
        try:
            loop.call_soon_threadsafe(finish, error)
        except RuntimeError:
            pass  # the loop is gone: the process is exiting

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    await done


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


async def follow_file(path: str, put: Put, splitter: LineSplitter, *, poll: float,
                      from_end: bool, log: logging.Logger) -> None:
    """Follows ``path`` until cancelled. ``from_end``: the file found at start is read
    from its end (later files after a rotation always from their start)."""
    f = None
    first = True
    waiting_logged = False
    try:
        while True:
            if f is None:
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    if not waiting_logged:
                        log.warning("%s does not exist: waiting for it", path)
                        waiting_logged = True
                    await asyncio.sleep(poll)
                    continue
                identity = _identity(os.fstat(f.fileno()))
                if first and from_end:
                    f.seek(0, os.SEEK_END)
                if not first or waiting_logged:
                    log.info("following %s (a new file)", path)
                first = False
                waiting_logged = False
            data = f.read(READ_SIZE)
            if data:
                for line in splitter.feed(data):
                    await put(line)
                continue
            # at the end of the file: was it truncated, or replaced?
            if os.fstat(f.fileno()).st_size < f.tell():
                log.warning("%s was truncated: reading it again from its start", path)
                for line in splitter.flush():
                    await put(line)
                f.seek(0)
                continue
            try:
                replaced = _identity(os.stat(path)) != identity
            except FileNotFoundError:
                replaced = False  # keep reading the old file until a new one appears
            if replaced:
                while data := f.read(READ_SIZE):
                    for line in splitter.feed(data):
                        await put(line)
                for line in splitter.flush():
                    await put(line)
                f.close()
                f = None
                log.info("%s was rotated", path)
                continue
            await asyncio.sleep(poll)
    finally:
        if f is not None:
            f.close()
