"""Private processes for a benchmark: a redis-server, workers and a gateway on free ports.

Each child runs in its own session with its output in a log file; ``Stack`` stops every
child it started (SIGTERM, then SIGKILL after a grace period) however the run ends.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from bench import REPO
from pyparrot import redis_server


class StartupError(RuntimeError):
    """A child process did not become ready."""


class Child:
    """One child process with its log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO), **env},
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of the child's log, for error messages."""
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.popen.wait()


class Stack:
    """A context manager owning a private Redis and whatever children are started on it."""

    def __init__(self) -> None:
        self.logs = Path(tempfile.mkdtemp(prefix="pyparrot-bench-"))
        self.children: list[Child] = []
        self.redis_url = ""
        self.redis_pid = 0

    def __enter__(self) -> "Stack":
        try:
            self._start_redis()
        except BaseException:
            self.close(keep_logs=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(keep_logs=exc is not None)

    def close(self, keep_logs: bool = False) -> None:
        """Stop the children, newest first (Redis last); keep their logs after a failure."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if keep_logs:
            print(f"bench: child logs kept in {self.logs}", file=sys.stderr)
        else:
            shutil.rmtree(self.logs, ignore_errors=True)

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        """Start ``python args...`` with this stack's REDIS_URL."""
        env = {"REDIS_URL": self.redis_url, **(env or {})}
        child = Child(name, [sys.executable, *args], env, self.logs)
        self.children.append(child)
        return child

    def _start_redis(self) -> None:
        port = redis_server.free_port()
        cmd = [redis_server.binary(), "--port", str(port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.logs)]
        child = Child("redis", cmd, {}, self.logs)
        self.children.append(child)
        self.redis_pid = child.popen.pid
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: redis_server.reachable(self.redis_url, 0.2), [child], 10.0)


def wait_until(ready: Callable[[], bool], children: list[Child], timeout_s: float) -> None:
    """Poll ``ready`` until true; fail early, with its log, if one of ``children`` exits."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        for child in children:
            if not child.running():
                raise StartupError(f"{child.name} exited:\n{child.tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name}:\n{c.tail()}" for c in children)
            raise StartupError(f"not ready in {timeout_s:.0f} s:\n{logs}")
        time.sleep(0.05)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_ok(url: str) -> bool:
    """True if GET ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
