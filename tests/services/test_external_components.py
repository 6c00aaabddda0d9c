"""External mt, tts and summarizer servers serving the gateway's normal routes, through the
real bus and adapter process (the asr path: test_external_failover.py, tests/cli)."""

import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shared import bus, streams
from tests.polling import eventually
from tests.services.external_standin import (
    TTS_RATE_HZ,
    Standin,
    adapter_process,
    externals,
    gateway_client,
    register,
    standins,
    tone_wav,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
WAV_HEADER_BYTES = 44


@pytest.fixture
def server(clean_redis: str, tmp_path: Path) -> Iterator[Standin]:
    with standins("ext1") as (standin,), adapter_process(clean_redis, tmp_path / "adapter.log"):
        yield standin


@pytest.fixture
async def gateway(clean_redis: str) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(clean_redis) as http:
        yield http


def pcm_of(wav: bytes) -> np.ndarray:
    """Samples of a WAV as the gateway streams it (a 44-byte header of unknown length)."""
    assert wav[:4] == b"RIFF" and wav[36:40] == b"data"
    channels, rate = struct.unpack("<HI", wav[22:28])
    assert (channels, rate) == (1, TTS_RATE_HZ)
    return np.frombuffer(wav[WAV_HEADER_BYTES:], dtype="<i2")


async def test_translation(gateway: httpx.AsyncClient, server: Standin, clean_redis: str) -> None:
    await register(gateway, "mt", server, pairs=["en-de", "de-en"])
    pairs = [streams.jobs("mt", "de-en"), streams.jobs("mt", "en-de")]
    await eventually(lambda: _streams(gateway, "mt", pairs), 15)
    response = await gateway.post(
        "/v1/translate", json={"text": "Good morning", "source": "en", "target": "de"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"translation": "<de>gninrom dooG", "source": "en", "target": "de"}
    assert server.calls == [
        ("/translate", {"text": "Good morning", "source": "en", "target": "de"})
    ]

    # A pair nobody serves is refused by the gateway, without a job.
    unserved = await gateway.post(
        "/v1/translate", json={"text": "x", "source": "en", "target": "fr"}
    )
    assert unserved.status_code == 400 and "'en-fr' is not served" in unserved.json()["detail"]

    # A server's refusal of the input is the client's (422, not dead-lettered); a reply
    # without the field is a failure of ours (502, dead-lettered).
    for text, status, reason in (
        ("reject me", 422, "HTTP 400"),
        ("garble", 502, "no string field 'translation'"),
    ):
        failed = await gateway.post(
            "/v1/translate", json={"text": text, "source": "de", "target": "en"}
        )
        assert failed.status_code == status and reason in failed.json()["detail"], failed.text
    dead = bus.sync_client(clean_redis).xrange(streams.dead(streams.jobs("mt", "de-en")))
    assert [entry[b"code"] for _id, entry in dead] == [b"bad_backend_reply"]


@pytest.mark.parametrize("channels", [1, 2])
async def test_speech(gateway: httpx.AsyncClient, server: Standin, channels: int) -> None:
    server.tts_channels = channels  # a stereo server is turned into the mono the gateway sends
    await register(gateway, "tts", server, model="standin-voice")
    await eventually(lambda: externals(gateway, "tts"), 15)
    text = "Hello there, this is speech."
    response = await gateway.post(
        "/v1/audio/speech",
        json={"input": text, "voice": "alloy", "response_format": "wav", "speed": 1.5},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    expected = np.frombuffer(tone_wav(text)[WAV_HEADER_BYTES:], dtype="<i2")
    assert np.array_equal(pcm_of(response.content), expected)
    body = {"text": text, "voice": "standin-voice", "language": None, "speed": 1.5}
    assert server.calls == [("/tts", body)]

    # The voice by name, and OpenAI's 24 kHz raw PCM (resampled in the gateway).
    pcm = await gateway.post(
        "/v1/audio/speech",
        json={"input": text, "voice": "standin-voice", "response_format": "pcm"},
    )
    assert pcm.status_code == 200, pcm.text
    assert len(pcm.content) // 2 == pytest.approx(len(expected) * 24_000 / TTS_RATE_HZ, abs=32)
    voices = (await gateway.get("/v1/voices")).json()["data"]
    assert [v["id"] for v in voices] == ["standin-voice"]


async def test_summary(gateway: httpx.AsyncClient, server: Standin) -> None:
    await register(gateway, "summarizer", server)
    await eventually(lambda: externals(gateway, "summarizer"), 15)
    text = "The budget grew by ten percent. Hiring paused. Offices reopen in May."
    response = await gateway.post("/v1/summarize", json={"text": text, "max_sentences": 2})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["summary"] == "ext1: The budget grew by ten percent."
    assert (summary["method"], summary["model"]) == ("abstractive", "external")
    body = {"text": text, "max_sentences": 2, "ratio": None}
    assert server.calls == [("/summarize", body)]

    # Unregistered: the adapter stops serving it and the gateway says there is no worker.
    gone = await gateway.post(
        "/ltapi/unregister_worker", json={"component": "summarizer", "name": "ext1"}
    )
    assert gone.status_code == 200, gone.text
    await eventually(lambda: _none(gateway, "summarizer"), 15)
    refused = await gateway.post("/v1/summarize", json={"text": text})
    assert refused.status_code == 503 and "no summarization worker" in refused.json()["detail"]


async def _none(gateway: httpx.AsyncClient, component: str) -> bool:
    return not await externals(gateway, component)


async def _streams(gateway: httpx.AsyncClient, component: str, expected: list[str]) -> bool:
    return sorted(w["stream"] for w in await externals(gateway, component)) == expected
