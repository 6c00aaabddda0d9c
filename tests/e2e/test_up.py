"""End to end: `pyparrot up` starts Redis, the gateway and a real STT worker as processes;
a WAV goes through HTTP and comes back as text; `status` and `down` see exactly those."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pyparrot import redis_server
from shared.textnorm import wer
from tests.audio import DATA, reference

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def pyparrot(
    *args: str, env: dict[str, str], timeout_s: float = 240
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "pyparrot"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "pyparrot"]
    return subprocess.run(
        [*cmd, *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A stack started by `pyparrot up --detach` on a Redis port nobody serves yet."""
    env = {
        **os.environ,
        "PYPARROT_HOME": str(tmp_path / "home"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_server.free_port()}/0",
        "STT_MODEL_CACHE_DIR": str(tmp_path / "models"),
    }
    port = redis_server.free_port()
    started = pyparrot("up", "--detach", "--port", str(port), env=env)  # default: every stage
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    try:
        yield f"http://127.0.0.1:{port}", env
    finally:
        pyparrot("down", env=env)


def test_up_transcribe_status_down(stack: tuple[str, dict[str, str]]) -> None:
    url, env = stack
    # The README's curl, in Python.
    with (DATA / "en_lecture.wav").open("rb") as fh:
        response = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("talk.wav", fh)},
            data={
                "model": "whisper-1",
                "response_format": "verbose_json",
                "timestamp_granularities[]": "word",
            },
            timeout=120,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert wer(reference("en_lecture"), body["text"]) <= 0.10, body["text"]
    assert body["language"] == "en" and body["duration"] == pytest.approx(12.84, abs=0.05)
    assert body["words"][0]["word"].lower().startswith("welcome")

    bad = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("x.wav", b"RIFF junk")})
    assert bad.status_code == 400 and bad.json()["detail"]

    cli = pyparrot("transcribe", str(DATA / "en_short.wav"), "--url", url, env=env)
    assert cli.returncode == 0, cli.stderr
    assert wer(reference("en_short"), cli.stdout) <= 0.2, cli.stdout

    status = json.loads(pyparrot("status", "--json", env=env).stdout)
    procs = {p["name"]: p for p in status["processes"]}
    assert set(procs) == {
        "redis", "gateway", "supervisor", "stt-1", "stt-base-1", "mt-1", "tts-1",
        "tts-espeak-1", "summarizer-1", "llm-1", "speaker-1",
    }  # fmt: skip
    assert all(p["alive"] for p in procs.values())
    stt = {w["model"]: w["pid"] for w in status["workers"] if w["component"] == "stt"}
    assert stt == {"tiny.en": procs["stt-1"]["pid"], "base": procs["stt-base-1"]["pid"]}
    workers = httpx.get(f"{url}/v1/workers").json()
    by_pid = {w["pid"]: w["component"] for w in workers}
    not_workers = ("redis", "gateway", "supervisor")
    assert {by_pid[procs[name]["pid"]] for name in procs if name not in not_workers} == {
        "stt", "mt", "tts", "summarizer", "llm", "speaker",
    }  # fmt: skip
    voices = {v["id"]: v for v in httpx.get(f"{url}/v1/voices").json()["data"]}
    assert voices["espeak-pt-br"]["engine"] == "espeak" and "en_US-joe-medium" in voices

    # Spoken language: the multilingual worker tells Spanish and Portuguese speech apart.
    for clip, language in (("es_short", "es"), ("pt_short", "pt")):
        with (DATA / f"{clip}.wav").open("rb") as fh:
            heard = httpx.post(
                f"{url}/v1/audio/transcriptions",
                files={"file": (f"{clip}.wav", fh)},
                data={"model": "base", "response_format": "verbose_json"},
                timeout=120,
            )
        assert heard.status_code == 200 and heard.json()["language"] == language, heard.text

    # Every stage through the one gateway: speak a held-out sentence, transcribe it back.
    sentence = "The weather station reported strong winds along the northern coast this morning."
    speech = httpx.post(
        f"{url}/v1/audio/speech",
        json={"model": "tts-1", "input": sentence, "voice": "alloy", "response_format": "wav"},
        timeout=60,
    )
    assert speech.status_code == 200, speech.text
    back = httpx.post(
        f"{url}/v1/audio/transcriptions",
        files={"file": ("s.wav", speech.content)},
        data={"response_format": "json"},
        timeout=60,
    )
    # Piper's voice varies from run to run (its noise scales), and tiny.en may mishear one
    # word of these twelve ("strom winds", once in a CI run): one, not two.
    assert wer(sentence, back.json()["text"]) <= 1 / 12, back.json()["text"]
    translated = httpx.post(
        f"{url}/v1/translate",
        json={
            "text": "I would like to book a table for two people.",
            "source": "en",
            "target": "pt",
        },
    )
    assert translated.status_code == 200 and "mesa" in translated.json()["translation"].lower()

    again = pyparrot("up", "--detach", "--port", "1", env=env)
    assert again.returncode == 1 and "already running" in again.stderr

    stopped = pyparrot("down", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(alive(p["pid"]) for p in procs.values())
    assert pyparrot("down", env=env).stdout.strip() == "nothing to stop"


def test_up_rejects_bad_worker_spec(tmp_path: Path) -> None:
    env = {**os.environ, "PYPARROT_HOME": str(tmp_path)}
    for spec, message in (
        ("stt=-1", "bad worker count"),
        ("ocr=1", "bad worker spec"),
        ("stt", "bad worker spec"),
        ("dialog=1", "the stage is called llm now"),  # an earlier release's name
    ):
        result = pyparrot("up", "--detach", "--workers", spec, env=env, timeout_s=60)
        assert result.returncode == 1 and message in result.stderr, (spec, result.stderr)
