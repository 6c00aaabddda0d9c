"""`pyparrot scale` on a running stack, and `distributed` mode: a worker that knows only the
Redis URL, in its own process group, serves the gateway's jobs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pyparrot import redis_server
from shared.textnorm import wer
from tests.audio import DATA, reference
from tests.cli.helpers import cli_env, pyparrot

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(300)]


def stt_processes(env: dict[str, str]) -> list[dict[str, object]]:
    status = json.loads(pyparrot("status", "--json", env=env).stdout)
    return [p for p in status["processes"] if str(p["name"]).startswith("stt-") and p["alive"]]


def test_scale_stt_up_and_down(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", f"redis://127.0.0.1:{redis_server.free_port()}/0")
    port = str(redis_server.free_port())
    started = pyparrot("up", "--detach", "--port", port, "--workers", "stt=1", env=env)
    assert started.returncode == 0, started.stderr
    try:
        refused = pyparrot("scale", "stt=-1", env=env)
        assert refused.returncode != 0 and len(stt_processes(env)) == 1
        grown = pyparrot("scale", "stt=2", env=env)
        assert grown.returncode == 0 and "stt: 1 -> 2" in grown.stdout, grown.stderr
        assert len(stt_processes(env)) == 2
        shrunk = pyparrot("scale", "stt=1", env=env)
        assert shrunk.returncode == 0 and "stt: 2 -> 1" in shrunk.stdout, shrunk.stderr
        assert len(stt_processes(env)) == 1
    finally:
        pyparrot("down", env=env)


def wait_ready(http: httpx.Client, procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll /ready (bounded); fail at once if a process died."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a process exited during start-up"
        try:
            if http.get("/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the gateway never became ready")


def test_distributed_worker_knows_only_the_redis_url(clean_redis: str, tmp_path: Path) -> None:
    port = redis_server.free_port()
    gateway_env = {**os.environ, "REDIS_URL": clean_redis, "GATEWAY_PORT": str(port)}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"],
        env=gateway_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The worker's environment has no REDIS_URL: only the command-line flag tells it where.
    worker_env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    worker_env["PYPARROT_HOME"] = str(tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-m", "pyparrot", "worker", "stt", "--redis-url", clean_redis],
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as on another host
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            wait_ready(http, [worker, gateway])
            workers = http.get("/v1/workers").json()
            assert [(w["component"], w["pid"]) for w in workers] == [("stt", worker.pid)]
            audio = (DATA / "en_short.wav").read_bytes()
            response = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio)})
            assert response.status_code == 200, response.text
            assert wer(reference("en_short"), response.json()["text"]) <= 0.2
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        gateway.terminate()
        assert worker.wait(30) == 0  # a clean SIGTERM exit
        gateway.wait(30)
