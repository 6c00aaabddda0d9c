"""The speaker stage on real recordings: diarization of a real two-person call and of a
conversation built from two readers, voiceprints that tell the readers apart, bad input
refused with the reason, and the worker loop answering over a real Redis."""

import wave
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.speaker.handler import analyse, handle
from services.speaker.model import SpeakerModel, load_model
from services.speaker.settings import SpeakerSettings
from shared import bus, heartbeat, streams
from shared.audio import float32_to_pcm16
from shared.messages import (
    AudioFormat,
    Envelope,
    ErrorResult,
    SpeakerRequest,
    SpeakerResult,
    TranslateRequest,
    unpack,
)
from shared.metrics import worker_metrics
from shared.worker import Rejected, WorkerSpec, run_worker

pytestmark = [pytest.mark.redis, pytest.mark.model]

REAL = Path(__file__).parents[1] / "data" / "real"
RATE_HZ = 16_000
FORMAT = AudioFormat(sample_rate_hz=RATE_HZ)
MATCH_COSINE = 0.75


def read(name: str) -> np.ndarray:
    with wave.open(str(REAL / f"{name}.wav"), "rb") as f:
        assert (f.getframerate(), f.getnchannels()) == (RATE_HZ, 1)
        return np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE_HZ), np.float32)


def request(wav: np.ndarray, **kw: object) -> SpeakerRequest:
    return SpeakerRequest(audio=float32_to_pcm16(wav), audio_format=FORMAT, **kw)


@pytest.fixture(scope="module")
def settings() -> SpeakerSettings:
    return SpeakerSettings()


@pytest.fixture(scope="module")
def model(settings: SpeakerSettings) -> SpeakerModel:
    return load_model(settings)


def voiceprint(
    model: SpeakerModel, settings: SpeakerSettings, *names: str, min_speech_s: float = 2.0
) -> np.ndarray:
    joined = np.concatenate([x for n in names for x in (read(n), silence(0.25))])
    result = analyse(model, settings, request(joined, task="embed", min_speech_s=min_speech_s))
    assert [v.speaker for v in result.speakers] == ["S1"]
    return np.asarray(result.speakers[0].embedding)


def test_real_call_is_diarized_within_the_error_budget(
    model: SpeakerModel, settings: SpeakerSettings
) -> None:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    result = analyse(model, settings, request(read("pyannote_sample")))
    assert [v.speaker for v in result.speakers] == ["S1", "S2"]
    reference, hypothesis = Annotation(), Annotation()
    for line in (REAL / "pyannote_sample.rttm").read_text().splitlines():
        parts = line.split()
        start = float(parts[3])
        reference[Segment(start, start + float(parts[4]))] = parts[7]
    for turn in result.turns:
        assert 0 <= turn.start_s < turn.end_s <= result.duration_s
        hypothesis[Segment(turn.start_s, turn.end_s)] = turn.speaker
    metric = DiarizationErrorRate(collar=0.5)  # +-0.25 s around each reference boundary
    der = metric(reference, hypothesis, uem=Segment(0, result.duration_s))
    assert der <= 0.15, der


def test_two_readers_taking_turns_get_alternating_labels(
    model: SpeakerModel, settings: SpeakerSettings
) -> None:
    order = ["spk1_snt3", "spk2_snt3", "spk1_snt4", "spk2_snt4", "spk1_snt5", "spk2_snt5"]
    pieces, centres, t = [], [], 0.0
    for name in order:
        clip = read(name)
        centres.append(t + len(clip) / RATE_HZ / 2)
        pieces += [clip, silence(0.4)]
        t += len(clip) / RATE_HZ + 0.4
    result = analyse(model, settings, request(np.concatenate(pieces)))
    assert len(result.speakers) == 2
    heard = [
        next(turn.speaker for turn in result.turns if turn.start_s <= c <= turn.end_s)
        for c in centres
    ]
    assert heard == ["S1", "S2"] * 3


def test_one_reader_alone_is_one_speaker(model: SpeakerModel, settings: SpeakerSettings) -> None:
    wav = np.concatenate([x for i in range(1, 7) for x in (read(f"spk1_snt{i}"), silence(0.3))])
    result = analyse(model, settings, request(wav))
    assert {turn.speaker for turn in result.turns} == {"S1"}


def test_voiceprints_identify_each_reader_and_refuse_a_stranger(
    model: SpeakerModel, settings: SpeakerSettings
) -> None:
    enrolled = {
        who: voiceprint(model, settings, f"{who}_snt1", f"{who}_snt2") for who in ("spk1", "spk2")
    }
    for who in ("spk1", "spk2"):
        for i in (3, 4, 5, 6):
            probe = voiceprint(model, settings, f"{who}_snt{i}", min_speech_s=0.5)
            scores = {name: float(probe @ print_) for name, print_ in enrolled.items()}
            assert max(scores, key=scores.__getitem__) == who, scores
            assert scores[who] >= MATCH_COSINE, scores
    # Each reader, enrolled alone, is a stranger to the other's voiceprint.
    assert float(enrolled["spk1"] @ enrolled["spk2"]) < MATCH_COSINE


@pytest.mark.parametrize(
    "wav, reason",
    [
        (silence(3.0), "no speech in 3.0 s"),
        (read("noise2"), "no speech"),
        (read("spk2_snt2")[: RATE_HZ + RATE_HZ // 2], "only 1."),
    ],
    ids=["silence", "noise", "short"],
)
def test_enrolling_without_enough_speech_says_why(
    model: SpeakerModel, settings: SpeakerSettings, wav: np.ndarray, reason: str
) -> None:
    with pytest.raises(Rejected) as caught:
        analyse(model, settings, request(wav, task="embed", min_speech_s=2.0))
    assert caught.value.code == "insufficient_speech"
    assert reason in caught.value.message and "2.0 s of speech" in caught.value.message


def test_bad_requests_are_rejected(model: SpeakerModel, settings: SpeakerSettings) -> None:
    wrong_rate = SpeakerRequest(
        audio=b"\x00\x00" * 8_000, audio_format=AudioFormat(sample_rate_hz=8_000)
    )
    with pytest.raises(Rejected, match="16000 Hz") as caught:
        analyse(model, settings, wrong_rate)
    assert caught.value.code == "unsupported_audio"
    with pytest.raises(Rejected) as caught:
        analyse(model, settings, request(silence(0.01)))
    assert caught.value.code == "empty_audio"
    job = Envelope(payload=TranslateRequest(text="hi", source="en", target="pt"))
    with pytest.raises(Rejected) as caught:
        list(handle(model, settings, job))
    assert caught.value.code == "wrong_kind"


async def test_worker_answers_over_redis(
    aredis: aioredis.Redis, clean_redis: str, model: SpeakerModel, settings: SpeakerSettings
) -> None:
    stream, replies = streams.jobs("speaker", model.name), streams.replies("test")
    loop_settings = SpeakerSettings(redis_url=clean_redis, worker_name="spk", block_ms=50)
    spec = WorkerSpec(
        component="speaker",
        stream=stream,
        handle=lambda job: handle(model, settings, job),
        model=model.name,
        audio_field="audio",
    )
    good = Envelope(payload=request(read("spk1_snt1"), task="embed"), reply_to=replies)
    quiet = Envelope(
        payload=request(silence(2.0), task="embed", min_speech_s=2.0), reply_to=replies
    )
    await bus.ensure_group(aredis, stream, streams.group("speaker"))
    for job in (good, quiet):
        await bus.submit(aredis, stream, job)
    registry = CollectorRegistry()
    await run_worker(aredis, spec, loop_settings, worker_metrics(registry), burst=True)
    got = {
        e.parent: e.payload for e in map(unpack, (f[b"e"] for _, f in await aredis.xrange(replies)))
    }
    assert isinstance(got[good.id], SpeakerResult) and got[good.id].speakers[0].speech_s > 1.5
    assert isinstance(got[quiet.id], ErrorResult) and got[quiet.id].code == "insufficient_speech"
    assert await aredis.xlen(stream) == 0
    assert await heartbeat.live_workers(aredis) == []  # removed when the burst ended
