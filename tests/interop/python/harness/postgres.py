"""PostgreSQL for the workbench tests, as tests/support/postgres.rs does it for Rust.

* ``Postgres.shared()`` is the server of ``$DATABASE_URL`` when it is set; otherwise one
  throwaway cluster for the whole test session, made with ``initdb`` and started with
  ``pg_ctl`` on a free port in a temporary directory (trust auth), and stopped and
  removed at exit.  As root the cluster runs as the ``postgres`` system user, since
  ``initdb`` refuses root.  Clusters left behind by a killed run are reaped by the next
  one (Rust's or ours: the directory names are the same, ``switchyard-pg-<pid>-…``).
* ``create_database()`` makes ``sy_py_<pid>_<random>`` and returns its URL;
  ``drop_database(url)`` drops it (needed only on a ``$DATABASE_URL`` server: a
  throwaway cluster goes as a whole).
* ``psql(url, sql)`` / ``apsql(url, sql)`` run SQL with the ``psql`` client (the suite
  has no PostgreSQL driver): one call is one transaction; the output of the last
  statement comes back unaligned, without headers.

The binaries are taken from ``$PG_BIN``, else ``PATH``, else the newest
``/usr/lib/postgresql/*/bin``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DIR_PREFIX = "switchyard-pg-"


class PostgresError(Exception):
    pass


def pg_bin(name: str) -> str:
    if os.environ.get("PG_BIN"):
        return str(Path(os.environ["PG_BIN"]) / name)
    found = shutil.which(name)
    if found:
        return found
    versions = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        if (d / name).is_file() and d.parent.name.isdigit():
            versions.append((int(d.parent.name), d / name))
    if not versions:
        raise PostgresError(f"no {name}: install PostgreSQL, set PG_BIN, or set DATABASE_URL")
    return str(max(versions)[1])


def _run_as() -> tuple[int, int] | None:
    """The ``postgres`` user's uid and gid when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError("running as root needs a `postgres` user to run the cluster as")
    return pw.pw_uid, pw.pw_gid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` (query kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _psql_command(url: str, sql: str) -> list[str]:
    return [pg_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]


def psql(url: str, sql: str) -> str:
    out = subprocess.run(_psql_command(url, sql), capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=30)
    if out.returncode != 0:
        raise PostgresError(f"psql failed ({out.returncode}) on {sql!r}:\n{out.stderr}")
    return out.stdout.strip()


async def apsql(url: str, sql: str) -> str:
    """``psql`` without blocking the event loop (events keep flowing meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        *_psql_command(url, sql), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise PostgresError(f"psql failed ({proc.returncode}) on {sql!r}:\n{stderr.decode()}")
    return stdout.decode().strip()


class Cluster:
    """A throwaway cluster: ``dir/data``, log ``dir/log``, socket in ``dir``."""

    def __init__(self):
        _reap_stale_clusters()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-"))
        atexit.register(self.remove)
        self.user = _run_as()
        if self.user:
            os.chown(self.dir, *self.user)
        out = self._pg("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                       "-E", "UTF8", "--locale=C", "--no-sync")
        if out.returncode != 0:
            raise PostgresError(f"initdb failed:\n{out.stdout}{out.stderr}")
        last = ""
        # a port free a moment ago may be taken when the server binds it
        for _ in range(5):
            self.port = _free_port()
            out = self._start()
            if out.returncode == 0:
                return
            last = out.stderr + self._log()
        raise PostgresError(f"the throwaway cluster does not start:\n{last}")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, name: str, *args: str) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.user:
            kwargs = {"user": self.user[0], "group": self.user[1], "extra_groups": []}
        return subprocess.run([pg_bin(name), *args], cwd=self.dir, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"),
                              timeout=120, **kwargs)

    def _start(self) -> subprocess.CompletedProcess:
        options = f"-k {self.dir} -h 127.0.0.1 -p {self.port} -F -c max_connections=100"
        return self._pg("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                        "-w", "-t", "60", "-o", options, "start")

    def _log(self) -> str:
        try:
            return (self.dir / "log").read_text()
        except OSError:
            return ""

    def remove(self) -> None:
        _stop_cluster(self.dir, self.user)
        shutil.rmtree(self.dir, ignore_errors=True)


def _stop_cluster(directory: Path, user) -> None:
    data = directory / "data"
    if (data / "postmaster.pid").exists():
        kwargs = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        subprocess.run([pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       cwd=directory, capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=60, **kwargs)


def _reap_stale_clusters() -> None:
    """Stop and remove the clusters of test processes that are gone."""
    for entry in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        m = re.match(rf"{DIR_PREFIX}(\d+)-", entry.name)
        if not m or not entry.is_dir():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # alive
        except PermissionError:
            continue  # alive, someone else's
        except ProcessLookupError:
            pass
        _stop_cluster(entry, _run_as())
        shutil.rmtree(entry, ignore_errors=True)


class Postgres:
    _shared: "Postgres | None" = None

    def __init__(self, admin_url: str, cluster: Cluster | None):
        self.admin_url = admin_url
        self.cluster = cluster

    @classmethod
    def shared(cls) -> "Postgres":
        """``$DATABASE_URL``'s server, else this session's throwaway cluster (made once)."""
        if cls._shared is None:
            url = os.environ.get("DATABASE_URL")
            if url:
                cls._shared = Postgres(url, None)
            else:
                cluster = Cluster()
                cls._shared = Postgres(cluster.url(), cluster)
        return cls._shared

    def create_database(self) -> str:
        name = f"sy_py_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        psql(self.admin_url, f"create database {name}")
        return with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        if self.cluster is not None:
            return
        name = urlsplit(url).path.lstrip("/")
        psql(self.admin_url, f"drop database if exists {name} with (force)")
