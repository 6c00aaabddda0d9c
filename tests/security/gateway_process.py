"""A real ``python -m services.gateway`` on a free port, its output captured in a file."""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from pyparrot import redis_server

ROOT = Path(__file__).parents[2]
START_S = 60.0


@dataclass
class GatewayProcess:
    url: str
    host: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def gateway_process(redis_url: str, workdir: Path, **env: str) -> Iterator[GatewayProcess]:
    """Start the gateway as ``pyparrot up`` does and wait for ``/health``; stop it after."""
    port = redis_server.free_port()
    log = workdir / "gateway.log"
    environment = os.environ | {
        "REDIS_URL": redis_url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_KEYS_MARKER_DIR": str(workdir / "markers"),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield GatewayProcess(url, "127.0.0.1", port, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
