"""`pyparrot start/stop` of an end2end pipeline whose STT is an external HTTP server."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pyparrot import redis_server
from shared import bus
from tests.audio import DATA
from tests.cli.helpers import asr_server, cli_env, pyparrot

pytestmark = [pytest.mark.redis, pytest.mark.timeout(240)]


@pytest.fixture
def started(tmp_path: Path, clean_redis: str, request: pytest.FixtureRequest) -> Iterator[tuple]:
    """Configure and start an end2end/external pipeline against ``request.param``'s server."""
    env = cli_env(tmp_path, clean_redis)
    port = redis_server.free_port()
    with asr_server() as live_url:
        stt_url = (
            live_url if request.param == "live" else f"http://127.0.0.1:{redis_server.free_port()}"
        )
        done = pyparrot(
            "configure", "e2e", "--type", "end2end", "--backends", "external",
            "--stt-backend-url", stt_url, "--domain", "example.com", "--port", str(port),
            env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = pyparrot("start", "e2e", env=env)
        try:
            yield out, f"http://127.0.0.1:{port}", stt_url, env
        finally:
            stopped = pyparrot("stop", "e2e", env=env)
            assert stopped.returncode == 0, stopped.stderr


@pytest.mark.parametrize("started", ["live"], indirect=True)
def test_start_registers_and_serves(started: tuple, clean_redis: str) -> None:
    out, url, stt_url, _env = started
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "✓ Successfully started local processes" in lines
    assert "✓ Redis groups initialized (admin, presenter)" in lines
    assert "Registering external backends..." in lines
    assert f"✓ STT backend registered: {stt_url}" in lines
    client = bus.sync_client(clean_redis)
    assert client.smembers("groups:admin") == {b"admin@example.com"}
    assert client.smembers("groups:presenter") == {b"admin@example.com"}
    client.close()
    workers = httpx.get(f"{url}/v1/workers").json()
    external = [w for w in workers if w["kind"] == "external"]
    assert [(w["component"], w["model"], w["languages"]) for w in external] == [
        ("stt", "external", ["en"])
    ]
    with (DATA / "en_short.wav").open("rb") as fh:
        response = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("a.wav", fh)},
            data={"model": "whisper-1"},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    assert response.json()["text"].startswith("external heard ")


@pytest.mark.parametrize("started", ["dead"], indirect=True)
def test_unreachable_backend_warns_and_pipeline_runs(started: tuple) -> None:
    out, url, stt_url, _env = started
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert "⚠ STT backend registration failed: HTTP 422" in text
    assert f"{stt_url}/health unreachable" in text
    assert "the pipeline keeps running" in text
    assert httpx.get(f"{url}/health").status_code == 200
    refused = httpx.post(
        f"{url}/ltapi/register_worker",
        json={"component": "asr", "name": "x", "server": "ftp://nowhere"},
    )
    assert refused.status_code == 422 and "http(s) URL" in refused.json()["detail"]
