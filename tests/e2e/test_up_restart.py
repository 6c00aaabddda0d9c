"""`pyparrot up` keeps its stack running: a worker killed with SIGKILL is started again and
`status` says so (restarts, last exit code); `down` stops it all, supervisor included.
Real processes: Redis, the gateway, one MT worker (Bergamot) and the supervisor."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pyparrot import redis_server
from tests.e2e.test_up import alive, pyparrot
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYPARROT_HOME": str(tmp_path / "home"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_server.free_port()}/0",
        "PYPARROT_RESTART_BACKOFF_S": "0.5",
    }


def processes(env: dict[str, str]) -> dict[str, dict[str, object]]:
    status = json.loads(pyparrot("status", "--json", env=env, timeout_s=60).stdout)
    return {str(p["name"]): p for p in status["processes"]}


async def translates(url: str) -> bool:
    body = {"text": "Good morning.", "source": "en", "target": "pt"}
    async with httpx.AsyncClient() as http:
        try:
            response = await http.post(f"{url}/v1/translate", json=body, timeout=30)
        except httpx.HTTPError:
            return False
    return response.status_code == 200 and response.json()["translation"] == "Bom dia."


async def restart_of_mt_is_shown(env: dict[str, str], url: str) -> dict[str, dict[str, object]]:
    """SIGKILL the MT worker; wait until it serves again; the processes after."""
    before = processes(env)
    os.kill(int(str(before["mt-1"]["pid"])), signal.SIGKILL)

    async def back() -> bool:
        mt = processes(env)["mt-1"]
        return bool(mt["alive"] and mt["pid"] != before["mt-1"]["pid"] and mt["restarts"] == 1)

    await eventually(back, timeout_s=60)
    await eventually(lambda: translates(url), timeout_s=60)
    return processes(env)


@pytest.fixture
def detached(env: dict[str, str]) -> Iterator[str]:
    port = redis_server.free_port()
    started = pyparrot("up", "--detach", "--port", str(port), "--workers", "mt=1", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "supervisor" in started.stdout
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        pyparrot("down", env=env)


async def test_detached_up_restarts_a_killed_worker(detached: str, env: dict[str, str]) -> None:
    assert await translates(detached)
    after = await restart_of_mt_is_shown(env, detached)
    assert after["supervisor"]["alive"]
    # The supervisor did not start the first MT worker, so that exit code is not its to read.
    assert after["mt-1"]["last_exit_code"] is None
    assert after["gateway"]["restarts"] == 0
    table = pyparrot("status", env={**env, "COLUMNS": "250"}, timeout_s=60).stdout
    assert "restarts" in table and "last exit" in table

    stopped = pyparrot("down", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(alive(int(str(p["pid"]))) for p in after.values())


def start_foreground(port: int, env: dict[str, str], output: Path) -> subprocess.Popen[bytes]:
    """`pyparrot up` in the foreground, its output in a file (a pipe could fill and block it)."""
    command = [sys.executable, "-m", "pyparrot", "up", "--port", str(port), "--workers", "mt=1"]
    with output.open("wb") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)


async def test_foreground_up_restarts_a_killed_worker_and_stops_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = redis_server.free_port()
    foreground = start_foreground(port, env, tmp_path / "up.out")
    url = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: translates(url), timeout_s=180)
        after = await restart_of_mt_is_shown(env, url)
        assert after["supervisor"]["pid"] == foreground.pid
        assert after["mt-1"]["last_exit_code"] == -signal.SIGKILL  # its own child: known
        foreground.send_signal(signal.SIGTERM)
        foreground.wait(60)
    finally:
        if foreground.poll() is None:
            foreground.kill()
            pyparrot("down", env=env)
    output = (tmp_path / "up.out").read_text()
    assert foreground.returncode == 0, output
    assert "mt-1 exited with code -9" in output and "restarted mt-1" in output
    assert not any(alive(int(str(p["pid"]))) for p in after.values() if p["name"] != "supervisor")
