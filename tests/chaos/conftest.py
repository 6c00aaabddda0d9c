"""Real processes for chaos tests: a private Redis, ``python -m services.gateway`` and the
stand-in worker process, all on free loopback ports, stopped (and their logs shown) after."""

import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyparrot import procs, redis_server

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    redis_url: str
    gateway_url: str
    tmp: Path
    redis: procs.Proc

    def kill_redis(self) -> None:
        """SIGKILL the Redis (no shutdown, no save) and reap it."""
        os.kill(self.redis.pid, signal.SIGKILL)
        procs.stop([self.redis], timeout_s=5)

    def start_redis(self) -> None:
        """Start a fresh, empty Redis on the same port."""
        self.redis = redis_server.start(self.redis_url, self.tmp / "logs", self.tmp / "data")


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Stack]]:
    """Start Redis, the gateway and one stand-in worker; ``env`` adds/overrides variables."""
    started: list[procs.Proc] = []
    stacks: list[Stack] = []
    logs = tmp_path / "logs"

    def start(env: dict[str, str]) -> Stack:
        redis_url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
        port = redis_server.free_port()
        redis = redis_server.start(redis_url, logs, tmp_path / "data")
        common = {"REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO"}
        gateway = [sys.executable, "-m", "services.gateway"]
        worker = [sys.executable, "-m", "tests.chaos.standin_worker"]
        full = {**common, "GATEWAY_PORT": str(port), "STANDIN_WORKER_NAME": "standin", **env}
        started.append(procs.spawn("gateway", gateway, full, logs))
        started.append(procs.spawn("worker", worker, full, logs))
        stacks.append(Stack(redis_url, f"http://127.0.0.1:{port}", tmp_path, redis))
        return stacks[-1]

    yield start
    procs.stop(started, timeout_s=15)
    procs.stop([s.redis for s in stacks], timeout_s=5)
    for name in ("gateway", "worker"):
        if (logs / f"{name}.log").exists():
            print(f"--- {name} log (tail) ---\n{procs.tail(str(logs / f'{name}.log'), 15)}")
