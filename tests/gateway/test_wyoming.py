"""The gateway's Wyoming server, driven by the ``wyoming`` package's own client, in front of the
REAL stt (tiny.en) and tts (Piper joe) handlers in in-process worker loops."""

import asyncio
import contextlib
import io
import warnings
import wave
from collections.abc import AsyncIterator
from functools import partial

import numpy as np
import pytest
import soxr
from fastapi import FastAPI

from pyparrot import redis_server
from services.gateway.settings import GatewaySettings
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.model import SttModel
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from services.tts.__main__ import worker_spec as tts_spec
from services.tts.settings import TtsSettings
from shared.textnorm import wer
from tests.apps import running_app, running_workers
from tests.audio import read_pcm, reference
from tests.polling import eventually
from tests.services.test_tts import bundled_voice

with warnings.catch_warnings():  # wyoming.audio imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from wyoming.asr import Transcribe, Transcript, TranscriptChunk
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.error import Error
    from wyoming.event import Event
    from wyoming.info import Describe, Info
    from wyoming.ping import Ping, Pong
    from wyoming.tts import Synthesize, SynthesizeVoice

pytestmark = [pytest.mark.redis, pytest.mark.model]

VOICE = "en_US-joe-medium"
SAMPLES_PER_CHUNK = 1024


@pytest.fixture(scope="module")
def tiny() -> SttModel:
    return load_stt(SttSettings(model="tiny.en"))


@pytest.fixture
async def workers(clean_redis: str, tiny: SttModel) -> AsyncIterator[None]:
    voice = bundled_voice()
    settings = TtsSettings(redis_url=clean_redis, worker_name="tts", block_ms=50)
    tts = tts_spec(voice, settings)
    stt_settings = SttSettings(redis_url=clean_redis, worker_name="stt", block_ms=50)
    stt = stt_spec(tiny, stt_settings)
    async with running_workers(clean_redis, [(stt, stt_settings), (tts, settings)]):
        yield


@contextlib.asynccontextmanager
async def gateway(redis_url: str) -> AsyncIterator[tuple[FastAPI, int]]:
    """A real gateway lifespan with the Wyoming server on a free loopback port."""
    port = redis_server.free_port()
    settings = GatewaySettings(
        redis_url=redis_url, request_timeout_s=60, registry_cache_s=0, wyoming_port=port
    )
    async with running_app(settings) as app:
        yield app, port


@pytest.fixture
async def port(clean_redis: str, workers: None) -> AsyncIterator[int]:
    async with gateway(clean_redis) as (_app, wyoming_port):
        await eventually(partial(has_both, wyoming_port), 10.0)
        yield wyoming_port


def connect(port: int) -> AsyncTcpClient:
    return AsyncTcpClient("127.0.0.1", port, connect_timeout=5, read_timeout=60)


async def describe(port: int) -> Info:
    async with connect(port) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
    assert event is not None and Info.is_type(event.type), event
    return Info.from_event(event)


async def has_both(port: int) -> bool:
    info = await describe(port)
    return bool(info.asr and info.tts)


def audio_events(pcm: bytes, rate: int, width: int, channels: int) -> list[Event]:
    """audio-start, chunks of SAMPLES_PER_CHUNK frames, audio-stop (as satellites send)."""
    step = SAMPLES_PER_CHUNK * width * channels
    chunks = [
        AudioChunk(rate, width, channels, pcm[i : i + step]).event()
        for i in range(0, len(pcm), step)
    ]
    return [AudioStart(rate, width, channels).event(), *chunks, AudioStop().event()]


async def until(client: AsyncTcpClient, event_type: str) -> list[Event]:
    """Events read up to and including the first of ``event_type`` (an error fails)."""
    events: list[Event] = []
    while True:
        event = await client.read_event()
        assert event is not None, f"connection closed after {[e.type for e in events]}"
        events.append(event)
        assert not Error.is_type(event.type), event.data
        if event.type == event_type:
            return events


async def transcribe(port: int, pcm: bytes, rate: int, width: int, channels: int) -> list[Event]:
    async with connect(port) as client:
        await client.write_event(Transcribe(language="en-US").event())
        for event in audio_events(pcm, rate, width, channels):
            await client.write_event(event)
        return await until(client, "transcript-stop")


def text_of(events: list[Event]) -> str:
    return next(Transcript.from_event(e).text for e in events if Transcript.is_type(e.type))


def stereo_48k(pcm16: bytes) -> bytes:
    """The 16 kHz mono clip as a 48 kHz stereo stream (what a desktop microphone sends)."""
    mono = np.frombuffer(pcm16, dtype="<i2")
    up = soxr.resample(mono, 16_000, 48_000).astype("<i2")
    return np.repeat(up, 2).tobytes()


async def test_describe_lists_the_live_models_and_voices(port: int) -> None:
    info = await describe(port)
    assert [m.name for m in info.asr[0].models] == ["tiny.en"]
    assert info.asr[0].models[0].languages == ["en"] and info.asr[0].installed
    assert info.asr[0].supports_transcript_streaming
    assert [(v.name, v.languages) for v in info.tts[0].voices] == [(VOICE, ["en"])]


async def test_describe_without_workers_offers_nothing(clean_redis: str) -> None:
    async with gateway(clean_redis) as (_app, wyoming_port):
        info = await describe(wyoming_port)
    assert info.asr == [] and info.tts == []


async def test_lecture_is_transcribed_from_a_48k_stereo_stream(port: int) -> None:
    pcm, _fmt = read_pcm("en_lecture")
    events = await transcribe(port, stereo_48k(pcm), 48_000, 2, 2)
    types = [e.type for e in events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"]
    text = text_of(events)
    assert wer(reference("en_lecture"), text) <= 0.10, text
    chunks = "".join(TranscriptChunk.from_event(e).text for e in events if e.type == types[1])
    assert types[1] == "transcript-chunk" and chunks == text
    assert Transcript.from_event(events[-2]).language == "en"


async def test_synthesized_speech_is_playable_and_transcribes_back(port: int) -> None:
    sentence = "The weather is sunny today. Please open the kitchen window."
    async with connect(port) as client:
        await client.write_event(Synthesize(sentence, SynthesizeVoice(name=VOICE)).event())
        events = await until(client, "audio-stop")
    start = AudioStart.from_event(events[0])
    chunks = [AudioChunk.from_event(e) for e in events[1:-1]]
    assert events[0].type == "audio-start" and len(chunks) == 2  # one per sentence
    assert {(c.rate, c.width, c.channels) for c in chunks} == {(start.rate, 2, 1)}
    wav_bytes = io.BytesIO()
    with wave.open(wav_bytes, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(start.rate)
        wav.writeframes(b"".join(c.audio for c in chunks))
    with wave.open(io.BytesIO(wav_bytes.getvalue()), "rb") as wav:  # a playable WAV file
        assert 2.0 < wav.getnframes() / wav.getframerate() < 10.0
        pcm = wav.readframes(wav.getnframes())
    heard = text_of(await transcribe(port, pcm, start.rate, 2, 1))
    assert wer(sentence, heard) <= 0.10, heard


async def test_voice_by_language_and_default(port: int) -> None:
    for voice in (SynthesizeVoice(language="en_US"), None):
        async with connect(port) as client:
            await client.write_event(Synthesize("Hello there.", voice).event())
            events = await until(client, "audio-stop")
        assert [e.type for e in events] == ["audio-start", "audio-chunk", "audio-stop"]


BAD_REQUESTS: dict[str, tuple[list[Event], str]] = {
    "chunk without start": ([AudioChunk(16_000, 2, 1, b"\0\0" * 160).event()], "bad_order"),
    "stop without start": ([AudioStop().event()], "bad_order"),
    "unknown event": ([Event("frobnicate", {"x": 1})], "unknown_event"),
    "transcribe mid-stream": (
        [AudioStart(16_000, 2, 1).event(), Transcribe().event()],
        "bad_order",
    ),
    "synthesize mid-stream": (
        [AudioStart(16_000, 2, 1).event(), Synthesize("hi").event()],
        "bad_order",
    ),
    "second audio-start": (
        [AudioStart(16_000, 2, 1).event(), AudioStart(16_000, 2, 1).event()],
        "bad_order",
    ),
    "24-bit audio": ([AudioStart(16_000, 3, 1).event()], "bad_audio"),
    "chunk format change": (
        [AudioStart(16_000, 2, 1).event(), AudioChunk(8_000, 2, 1, b"\0\0").event()],
        "bad_audio",
    ),
    "torn frame": (
        [AudioStart(16_000, 2, 2).event(), AudioChunk(16_000, 2, 2, b"\0\0\0").event()],
        "bad_audio",
    ),
    "audio-start without rate": ([Event("audio-start", {"width": 2})], "bad_event"),
    "synthesize without text": ([Event("synthesize", {})], "bad_event"),
    "unknown voice": ([Synthesize("hi", SynthesizeVoice(name="nobody")).event()], "unknown_voice"),
    "unserved language": (
        [Synthesize("hi", SynthesizeVoice(language="fr")).event()],
        "unknown_voice",
    ),
    "empty text": ([Synthesize("   ").event()], "empty_text"),
    "unknown model": (
        [Transcribe(name="large-v3").event(), *audio_events(b"\0\0" * 16_000, 16_000, 2, 1)],
        "no_worker",
    ),
}


# Refused mid-stream: the rest of that stream is dropped quietly. Elsewhere a stray
# audio-chunk/audio-stop is itself out of order.
IN_STREAM = {"transcribe mid-stream", "synthesize mid-stream", "second audio-start"} | {
    "24-bit audio",
    "chunk format change",
    "torn frame",
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_input_gets_an_error_event_and_the_connection_stays_usable(
    port: int, case: str
) -> None:
    sent, code = BAD_REQUESTS[case]
    async with connect(port) as client:
        for event in sent:
            await client.write_event(event)
        reply = await client.read_event()
        assert reply is not None and Error.is_type(reply.type), reply
        assert Error.from_event(reply).code == code, reply.data
        await client.write_event(AudioChunk(16_000, 2, 1, b"\0\0").event())
        await client.write_event(AudioStop().event())
        await client.write_event(Ping("still there?").event())
        late = [await client.read_event() for _ in range(1 if case in IN_STREAM else 3)]
    assert all(e is not None for e in late)
    assert [Error.from_event(e).code for e in late[:-1]] == [  # type: ignore[arg-type]
        "bad_order"
    ] * (len(late) - 1)
    assert Pong.is_type(late[-1].type)  # type: ignore[union-attr]
    await good_request_still_works(port)


async def good_request_still_works(port: int) -> None:
    pcm, fmt = read_pcm("en_short")
    text = text_of(await transcribe(port, pcm, fmt.sample_rate_hz, 2, 1))
    assert wer(reference("en_short"), text) <= 0.10, text


async def test_audio_stop_right_after_start_is_an_empty_transcript(port: int) -> None:
    async with connect(port) as client:
        for event in audio_events(b"", 16_000, 2, 1):
            await client.write_event(event)
        events = await until(client, "transcript-stop")
    assert text_of(events) == ""


async def test_clients_that_vanish_or_hang_do_not_touch_others(port: int) -> None:
    pcm, _fmt = read_pcm("en_short")
    hanging = connect(port)
    await hanging.connect()
    for event in audio_events(pcm, 16_000, 2, 1)[:10]:  # mid-stream, never stops
        await hanging.write_event(event)
    for upto in (5, None):  # gone mid-stream; gone right after audio-stop (job in flight)
        async with connect(port) as leaving:
            for event in audio_events(pcm, 16_000, 2, 1)[:upto]:
                await leaving.write_event(event)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"this is not json\n")  # a line the framing cannot parse: a clean close
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    await good_request_still_works(port)
    await hanging.disconnect()
    await good_request_still_works(port)


async def test_gateway_shutdown_ends_open_connections(clean_redis: str) -> None:
    async with gateway(clean_redis) as (_app, wyoming_port):
        client = connect(wyoming_port)
        await client.connect()
        await client.write_event(AudioStart(16_000, 2, 1).event())
        await client.write_event(Ping().event())
        assert Pong.is_type((await client.read_event()).type)  # type: ignore[union-attr]
    assert await client.read_event() is None
    await client.disconnect()
