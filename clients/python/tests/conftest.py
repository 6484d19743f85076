"""Fixtures for the switchyard-ship tests: real routers, a PostgreSQL-backed workbench
realm, and an async test runner.

The router harness is the autobahn-python interop suite's (``tests/interop/python/
harness``: the binary from ``$SWITCHYARD_BIN`` or ``target/debug/switchyard``, its ready
line, PostgreSQL from ``$DATABASE_URL`` or a throwaway cluster, the workbench realm's
files); it is imported from there rather than copied.

* ``router``     one router for the session (default realm1, which stores every topic)
* ``late_router`` factory: ``late_router(port)`` starts a router listening on ``port``
                 (for tests where the shipper starts before the router exists)
* ``workbench``  the workbench realm on PostgreSQL, graph reset to LAB

Async tests run in a fresh event loop under a deadline (``DEFAULT_DEADLINE`` seconds,
``@pytest.mark.deadline(n)`` to change it); every shipper process a test started is
killed after it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "interop" / "python"))

from harness.client import close_all_sessions  # noqa: E402
from harness.postgres import Postgres, PostgresError  # noqa: E402
from harness.router import Router, RouterError, router_binary  # noqa: E402
from harness.runner import run_async_test  # noqa: E402
from harness.workbench import Workbench  # noqa: E402

from support import LateRouter, kill_all_shippers  # noqa: E402

DEFAULT_DEADLINE = 15.0


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): deadline for an async test")


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    if not router_binary().exists():
        pytest.exit(f"router binary {router_binary()} not found: run `cargo build` or set "
                    "SWITCHYARD_BIN", returncode=1)


@pytest.fixture(scope="session")
def router():
    r = Router("ship")
    try:
        r.start()
    except RouterError as e:
        pytest.fail(str(e), pytrace=False)
    yield r
    r.cleanup()


@pytest.fixture
def late_router():
    started: list[Router] = []

    def start(port: int) -> Router:
        r = LateRouter(port)
        started.append(r)
        try:
            r.start()
        except RouterError as e:
            pytest.fail(str(e), pytrace=False)
        return r

    yield start
    for r in started:
        r.cleanup()


@pytest.fixture(scope="module")
def _workbench_module():
    try:
        wb = Workbench(Postgres.shared())
        wb.start()
    except (PostgresError, RouterError, RuntimeError) as e:
        pytest.fail(f"workbench: {e}", pytrace=False)
    yield wb
    wb.close()


@pytest.fixture
def workbench(_workbench_module) -> Workbench:
    _workbench_module.reset()
    return _workbench_module


def pytest_sessionfinish(session, exitstatus):
    pg = Postgres._shared
    if pg is not None and pg.cluster is not None:
        pg.cluster.remove()


async def _after_each_test() -> None:
    await kill_all_shippers()
    await close_all_sessions()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    return run_async_test(pyfuncitem, DEFAULT_DEADLINE, _after_each_test)
