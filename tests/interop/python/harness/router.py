"""Start and stop a Switchyard router process for the tests.

The router prints one JSON line on stdout once every listener is bound:

    {"event":"listening","websocket":"ws://127.0.0.1:PORT/ws",
     "rawsocket":"127.0.0.1:PORT","rawsocket_tls":false,"unix":"/path/to.sock"|null}

(``wss://`` and ``"rawsocket_tls":true`` when the configuration has ``[tls]``.)

Logs go to stderr, which we write to a file so that a crash can be reported
with the tail of the log.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parents[4]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "switchyard"

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def router_binary() -> Path:
    return Path(os.environ.get("SWITCHYARD_BIN") or DEFAULT_BIN)


class RouterError(Exception):
    pass


class Router:
    """One router process.

    ``ws_url``, ``ws_host``/``ws_port``, ``rs_host``/``rs_port`` and
    ``unix_path`` come from the ready line.
    """

    def __init__(self, name: str, *, config: str | None = None, unix: bool = False,
                 extra_args: list[str] | None = None, files: dict[str, str] | None = None):
        self.name = name
        self.config_text = config
        # more files for the configuration to name (realm and policy files), by path
        # relative to the router's temporary folder
        self.files = dict(files or {})
        self.unix = unix
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.ready: dict | None = None
        self.stopping = False
        self._tmp = tempfile.TemporaryDirectory(prefix=f"switchyard-{name}-")
        self.tmpdir = Path(self._tmp.name)
        self.stderr_path = self.tmpdir / "stderr.log"
        self._stdout_lines: queue.Queue = queue.Queue()
        self.extra_stdout: list[str] = []

    # ------------------------------------------------------------------ start

    def command(self) -> list[str]:
        cmd = [str(router_binary()), "serve",
               "--listen", "127.0.0.1:0",
               "--rawsocket", "127.0.0.1:0"]
        if self.unix:
            cmd += ["--unix", str(self.tmpdir / "switchyard.sock")]
        for rel, text in self.files.items():
            path = self.tmpdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if self.config_text is not None:
            cfg = self.tmpdir / "switchyard.toml"
            cfg.write_text(self.config_text)
            cmd += ["--config", str(cfg)]
        return cmd + self.extra_args

    def start(self) -> "Router":
        binary = router_binary()
        if not binary.exists():
            raise RouterError(
                f"router binary {binary} does not exist (set SWITCHYARD_BIN or run cargo build)")
        self.stopping = False
        self.ready = None
        self._stdout_lines = queue.Queue()
        self.extra_stdout = []
        cmd = self.command()
        self._stderr_file = open(self.stderr_path, "ab")
        self._stderr_file.write(f"\n===== start: {' '.join(cmd)}\n".encode())
        self._stderr_file.flush()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr_file, cwd=self.tmpdir)
        threading.Thread(target=self._drain_stdout, args=(self.proc,),
                         daemon=True).start()
        atexit.register(self._kill_at_exit, self.proc)

        deadline = time.monotonic() + READY_TIMEOUT
        line = None
        while time.monotonic() < deadline:
            try:
                line = self._stdout_lines.get(timeout=0.05)
                break
            except queue.Empty:
                if self.proc.poll() is not None:
                    # give the reader a moment to hand over a line written just before exit
                    try:
                        line = self._stdout_lines.get(timeout=0.2)
                        break
                    except queue.Empty:
                        pass
                    raise RouterError(
                        f"router {self.name} exited with code {self.proc.returncode} before "
                        f"printing its ready line.\ncommand: {' '.join(cmd)}\n"
                        f"stderr tail:\n{self.stderr_tail()}")
        if line is None:
            self.kill()
            raise RouterError(
                f"router {self.name} printed no ready line within {READY_TIMEOUT}s.\n"
                f"command: {' '.join(cmd)}\nstderr tail:\n{self.stderr_tail()}")
        try:
            ready = json.loads(line)
        except ValueError as e:
            self.kill()
            raise RouterError(f"router {self.name} ready line is not JSON ({e}): {line!r}")
        if ready.get("event") != "listening":
            self.kill()
            raise RouterError(f"router {self.name} ready line has no event=listening: {line!r}")
        self.ready = ready
        self._parse_ready(ready)
        return self

    def _parse_ready(self, ready: dict) -> None:
        ws = urlparse(ready["websocket"])
        # wss:// when the configuration has [tls]
        if ws.scheme not in ("ws", "wss") or not ws.port:
            raise RouterError(f"bad websocket url in ready line: {ready!r}")
        self.ws_url = ready["websocket"]
        self.ws_host, self.ws_port = ws.hostname, ws.port
        host, _, port = ready["rawsocket"].rpartition(":")
        self.rs_host, self.rs_port = host, int(port)
        self.unix_path = ready.get("unix")
        if self.unix and not self.unix_path:
            raise RouterError(f"router started with --unix but ready line has unix=null: {ready!r}")

    def _drain_stdout(self, proc: subprocess.Popen) -> None:
        first = True
        for raw in proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if first:
                self._stdout_lines.put(text)
                first = False
            else:
                self.extra_stdout.append(text)

    # ------------------------------------------------------------------ state

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def crashed(self) -> bool:
        """True when the process died without us asking it to."""
        return self.proc is not None and not self.stopping and self.proc.poll() is not None

    def stderr_tail(self, lines: int = 60) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return "<no stderr>"
        text = data.decode("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:])

    # ------------------------------------------------------------------ stop

    def terminate(self, sig=signal.SIGTERM) -> None:
        """Send a signal without waiting (used by the shutdown test)."""
        self.stopping = True
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(STOP_TIMEOUT) is None:
                self.kill()
        self._close_files()
        return self.proc.returncode

    def kill(self) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._close_files()

    def _close_files(self) -> None:
        f = getattr(self, "_stderr_file", None)
        if f is not None and not f.closed:
            f.close()
        if self.proc is not None and self.proc.stdout is not None and self.proc.poll() is not None:
            try:
                self.proc.stdout.close()
            except OSError:
                pass

    @staticmethod
    def _kill_at_exit(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()

    def cleanup(self) -> None:
        self.stop()
        keep = os.environ.get("SWITCHYARD_KEEP_LOGS")
        if keep:
            dest = Path(keep)
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / f"{self.name}-{self.tmpdir.name}.stderr.log"
            try:
                target.write_bytes(self.stderr_path.read_bytes())
            except OSError:
                pass
        self._tmp.cleanup()

    def __repr__(self) -> str:
        return f"<Router {self.name} ready={self.ready}>"


class RouterManager:
    """Keeps one shared router running, restarting it after a crash."""

    def __init__(self, name: str, **kwargs):
        self.name = name
        self.kwargs = kwargs
        self.router: Router | None = None
        # set when a router is found dead between tests; the test that finds it
        # reports it (and gets a fresh router next time)
        self.unnoticed_crash: str | None = None

    def get(self) -> Router:
        if self.router is not None and self.router.alive():
            return self.router
        if self.router is not None:
            old = self.router
            if old.crashed():
                self.unnoticed_crash = (
                    f"shared router {self.name} died between tests (exit code "
                    f"{old.proc.returncode}).\nstderr tail:\n{old.stderr_tail()}")
            old.stop()
        self.router = Router(self.name, **self.kwargs)
        self.router.start()
        return self.router

    def take_unnoticed_crash(self) -> str | None:
        report, self.unnoticed_crash = self.unnoticed_crash, None
        return report

    def shutdown(self) -> None:
        if self.router is not None:
            self.router.cleanup()
            self.router = None
