"""Runs an ``async def`` test in a fresh event loop under a deadline, for the conftests
of this suite and of ``clients/python`` (they install it as their ``pytest_pyfunc_call``).

A test taking longer than its deadline (``@pytest.mark.deadline(n)``, else the
conftest's default) fails saying so; ``cleanup`` (a coroutine function: close the
sessions, kill the processes a test started) runs after every test, passed or not.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable

import pytest


def run_async_test(pyfuncitem, default_deadline: float,
                   cleanup: Callable[[], Awaitable[None]]) -> bool | None:
    """Runs the test if it is a coroutine function (returns True), else None so that
    pytest calls it as usual."""
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    marker = pyfuncitem.get_closest_marker("deadline")
    deadline = marker.args[0] if marker else default_deadline

    async def run():
        cm = asyncio.timeout(deadline)
        try:
            async with cm:
                await fn(**kwargs)
        except TimeoutError:
            if cm.expired():
                pytest.fail(f"test did not finish within its {deadline}s deadline",
                            pytrace=False)
            raise
        finally:
            await cleanup()

    asyncio.run(run())
    return True
