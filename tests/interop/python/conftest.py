"""Fixtures for the Switchyard autobahn-python interop suite.

* ``router``       shared router, default settings (realm1, anonymous allowed everything)
* ``auth_router``  shared router with AUTH_CONFIG (ticket auth, roles, 64 KiB limit)
* ``unix_router``  shared router that also listens on a Unix socket
* ``new_router``   factory for a dedicated router (killed after the test)
* ``workbench``    the workbench realm on PostgreSQL (harness/workbench.py): one fresh
                   database and router per test module, the graph reset to LAB before
                   each test; PostgreSQL is ``$DATABASE_URL``'s server or one throwaway
                   cluster per test session (harness/postgres.py)

The router binary is ``$SWITCHYARD_BIN`` or ``target/debug/switchyard``; it is
never built here.  A router that dies during a test fails that test with the
tail of its stderr; the next test gets a fresh one.

Async test functions run in a fresh event loop under a deadline (default
DEFAULT_DEADLINE seconds, ``@pytest.mark.deadline(n)`` to change it).
"""

from __future__ import annotations


from pathlib import Path

import pytest

from harness import OBSERVATIONS
from harness.client import close_all_sessions
from harness.postgres import Postgres, PostgresError
from harness.router import Router, RouterError, RouterManager, router_binary
from harness.runner import run_async_test
from harness.workbench import Workbench

DEFAULT_DEADLINE = 15.0

# Shared with the autobahn-js suite.
AUTH_CONFIG = (Path(__file__).resolve().parent.parent / "interop-config.toml").read_text()

_MANAGERS = {
    "default": RouterManager("default"),
    "auth": RouterManager("auth", config=AUTH_CONFIG),
    "unix": RouterManager("unix", unix=True),
}


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    binary = router_binary()
    if not binary.exists():
        pytest.exit(f"router binary {binary} not found: run `cargo build` or set SWITCHYARD_BIN",
                    returncode=1)


def _use_router(request, router: Router) -> Router:
    used = request.node.__dict__.setdefault("_switchyard_routers", [])
    if router not in used:
        used.append(router)
    return router


def _managed(request, name: str) -> Router:
    manager = _MANAGERS[name]
    try:
        router = manager.get()
    except RouterError as e:
        pytest.fail(str(e), pytrace=False)
    crash = manager.take_unnoticed_crash()
    if crash:
        pytest.fail(crash, pytrace=False)
    return _use_router(request, router)


@pytest.fixture
def router(request) -> Router:
    return _managed(request, "default")


@pytest.fixture
def auth_router(request) -> Router:
    return _managed(request, "auth")


@pytest.fixture
def unix_router(request) -> Router:
    return _managed(request, "unix")


@pytest.fixture
def new_router(request):
    """Factory: ``new_router(config=None, unix=False)`` -> started dedicated Router."""
    created: list[Router] = []

    def make(name: str = "dedicated", **kwargs) -> Router:
        r = Router(name, **kwargs)
        created.append(r)
        try:
            r.start()
        except RouterError as e:
            pytest.fail(str(e), pytrace=False)
        return _use_router(request, r)

    yield make
    for r in created:
        r.cleanup()


@pytest.fixture(scope="module")
def _workbench_module():
    try:
        wb = Workbench(Postgres.shared())
    except (PostgresError, RuntimeError) as e:
        pytest.fail(f"workbench: {e}", pytrace=False)
    try:
        wb.start()
    except RouterError as e:
        wb.close()
        pytest.fail(str(e), pytrace=False)
    yield wb
    wb.close()


@pytest.fixture
def workbench(request, _workbench_module) -> Workbench:
    wb = _workbench_module
    if not wb.router.alive():
        pytest.fail(f"the workbench router is dead (exit code {wb.router.proc.returncode}).\n"
                    f"stderr tail:\n{wb.router.stderr_tail()}", pytrace=False)
    _use_router(request, wb.router)
    wb.reset()
    return wb


@pytest.fixture(autouse=True)
def _router_crash_check(request):
    yield
    for r in request.node.__dict__.get("_switchyard_routers", []):
        if r.crashed():
            pytest.fail(
                f"router {r.name} died during the test (exit code {r.proc.returncode}).\n"
                f"stderr tail:\n{r.stderr_tail()}", pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    for m in _MANAGERS.values():
        m.shutdown()
    pg = Postgres._shared
    if pg is not None and pg.cluster is not None:
        pg.cluster.remove()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    return run_async_test(pyfuncitem, DEFAULT_DEADLINE, close_all_sessions)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for r in item.__dict__.get("_switchyard_routers", []):
            report.sections.append(
                (f"router {r.name} stderr (tail)", r.stderr_tail(40)))


def pytest_terminal_summary(terminalreporter):
    if OBSERVATIONS:
        terminalreporter.section("switchyard observations")
        for test, text in OBSERVATIONS:
            terminalreporter.write_line(f"{test}: {text}")
