"""The workbench realm for the interop tests: a database, a router on it, the graph.

    wb = Workbench(Postgres.shared()).start()  # fresh database, `switchyard migrate`, router
    wb.reset()                                 # the LAB graph only, applied by the router
    token = wb.token("alice")                  # `switchyard token create --user alice`
    seq = await wb.sql("delete from grants where ...; select max(seq) from switchyard_graph_changes")
    await wb.settle()                          # the router applied every change so far

The router's configuration is written to its temporary folder: ``switchyard.toml``
(``realms_dir = "realms"``), ``realms/workbench.toml`` (``tests/interop/workbench-realm.toml``
with ``database_url`` under ``[graph]``) and ``policies/workbench.toml``
(``tests/interop/workbench-policy.toml``).  Both suites use the same two files.

"Applied" is the router's own word: ``switchyard_graph_applied_seq{realm="workbench"}``
on ``/metrics`` is the last change-log seq whose re-checks are done, compared with
``max(seq)`` of ``switchyard_graph_changes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
import urllib.request
from pathlib import Path

from .postgres import Postgres, apsql, psql
from .router import Router, router_binary

INTEROP_DIR = Path(__file__).resolve().parents[2]
REALM_TEMPLATE = INTEROP_DIR / "workbench-realm.toml"
POLICY = INTEROP_DIR / "workbench-policy.toml"

SERVICE_TICKETS = {"controller-1": "controller-1-secret", "dispatcher-1": "dispatcher-1-secret"}

# The graph of tests/workbench/main.rs: users alice, bob, carol (admin); role `lab`
# with alice and bob as readers; project `p1` shared with `lab` at read, owning
# containers c1 and c2; c3 owned by carol.
LAB = """
insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('lab', 'role'), ('p1', 'project');
insert into principals (id, kind, is_admin) values ('carol', 'user', true);
insert into objects (id, kind, owner_id) values ('c1', 'container', 'p1'), ('c2', 'container', 'p1'), ('c3', 'container', 'carol');
insert into grants (tail_id, head_id, level) values ('alice', 'lab', 1), ('bob', 'lab', 1), ('lab', 'p1', 1);
"""

APPLIED = 'switchyard_graph_applied_seq{realm="workbench"} '
ONLINE = 'switchyard_graph_online{realm="workbench"} 1'


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def router_files(database_url: str) -> tuple[str, dict[str, str]]:
    """The router's ``switchyard.toml`` and its realm and policy files."""
    realm = REALM_TEMPLATE.read_text()
    if "\n[graph]\n" not in realm:
        raise RuntimeError(f"{REALM_TEMPLATE} has no [graph] table")
    realm = realm.replace("\n[graph]\n", f'\n[graph]\ndatabase_url = "{database_url}"\n', 1)
    config = 'realms_dir = "realms"\n'
    return config, {"realms/workbench.toml": realm, "policies/workbench.toml": POLICY.read_text()}


class Workbench:
    def __init__(self, pg: Postgres):
        self.pg = pg
        self.url = pg.create_database()
        self.cli("migrate")
        config, files = router_files(self.url)
        self.router = Router("workbench", config=config, files=files)

    def start(self) -> "Workbench":
        self.router.start()
        self.wait_online()
        return self

    def close(self) -> None:
        self.router.cleanup()
        self.pg.drop_database(self.url)

    # ------------------------------------------------------------ the CLI

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(router_binary()), *args, "--database-url", self.url]
        out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
        return out

    def token(self, user: str, ttl: str | None = None) -> str:
        """``switchyard token create --user USER [--ttl TTL]``: the token."""
        args = ["token", "create", "--user", user] + (["--ttl", ttl] if ttl else [])
        return self.cli(*args).stdout.strip()

    def revoke_token(self, token: str) -> str:
        """``switchyard token revoke TOKEN``: what it says on stderr."""
        return self.cli("token", "revoke", token).stderr.strip()

    # ------------------------------------------------------------ the graph

    async def sql(self, statements: str) -> str:
        """Runs ``statements`` in one transaction, as the platform would."""
        return await apsql(self.url, statements)

    def reset(self) -> None:
        """Empties the graph (a TRUNCATE: the router drops its whole cache), loads LAB and
        waits until the router has applied it."""
        psql(self.url, "truncate grants, read_via, tokens, user_keys, objects, principals;" + LAB)
        self.wait_applied(self.last_seq_sync())

    def last_seq_sync(self) -> int:
        return int(psql(self.url, "select coalesce(max(seq), 0) from switchyard_graph_changes"))

    async def last_seq(self) -> int:
        return int(await self.sql("select coalesce(max(seq), 0) from switchyard_graph_changes"))

    # ------------------------------------------------------------ the router

    def metrics(self) -> str:
        url = f"http://{self.router.ws_host}:{self.router.ws_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def applied_seq(self) -> int:
        for line in self.metrics().splitlines():
            if line.startswith(APPLIED):
                return int(line[len(APPLIED):])
        raise AssertionError(f"no {APPLIED.strip()} on /metrics")

    def metric(self, name: str) -> float:
        for line in self.metrics().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no {name} on /metrics")

    def wait_online(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while ONLINE not in self.metrics():
            if time.monotonic() > deadline:
                raise AssertionError(f"the workbench realm did not come online within {timeout}s")
            time.sleep(0.02)

    def wait_applied(self, seq: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.applied_seq() < seq:
            if time.monotonic() > deadline:
                raise AssertionError(f"the router did not apply change {seq} within {timeout}s "
                                     f"(applied {self.applied_seq()})")
            time.sleep(0.005)

    async def settle(self, seq: int | None = None, timeout: float = 5.0) -> int:
        """Waits until the router has applied change ``seq`` (default: every change
        committed so far); returns the applied seq."""
        if seq is None:
            seq = await self.last_seq()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            applied = await asyncio.to_thread(self.applied_seq)
            if applied >= seq:
                return applied
            if loop.time() > deadline:
                raise AssertionError(f"the router did not apply change {seq} within {timeout}s "
                                     f"(applied {applied})")
            await asyncio.sleep(0.005)
