"""The wire contract: every payload kind survives pack/unpack, bad entries fail loudly."""

import msgpack
import pytest
from pydantic import BaseModel

from shared.messages import (
    MAX_ENTRY_BYTES,
    PAYLOAD_TYPES,
    AudioFormat,
    ChatMessage,
    ChatReply,
    ChatRequest,
    DecodeError,
    Envelope,
    ErrorResult,
    Segment,
    SpeakerRequest,
    SpeakerResult,
    SpeakerTurn,
    SpeechChunk,
    SttMode,
    SummarizeRequest,
    Summary,
    SynthesizeRequest,
    TranscribeRequest,
    Transcript,
    TranslateRequest,
    Translation,
    Voiceprint,
    Word,
    pack,
    unpack,
)

EXAMPLES: list[BaseModel] = [
    TranscribeRequest(
        audio=b"\x01\x00" * 160,
        audio_format=AudioFormat(sample_rate_hz=16_000),
        language="en",
        prompt="lecture",
        task="translate",
        word_timestamps=True,
        mode=SttMode.PARTIAL,
    ),
    Transcript(
        text="hello world",
        language="en",
        language_probability=0.9,
        duration_s=1.5,
        segments=[
            Segment(
                id=0,
                start_s=0.0,
                end_s=1.5,
                text="hello world",
                avg_logprob=-0.2,
                no_speech_prob=0.01,
                words=[Word(start_s=0.0, end_s=0.5, word="hello", probability=0.99)],
                language="en",
            )
        ],
        final=True,
        model="tiny.en",
        processing_s=0.3,
    ),
    TranslateRequest(text="Good morning.", source="en", target="pt"),
    Translation(text="Bom dia.", source="en", target="pt", model="bergamot", processing_s=0.2),
    SynthesizeRequest(text="Hello there.", voice="joe", language="en", speed=1.25),
    SpeechChunk(
        audio=b"\x00\x01" * 4,
        audio_format=AudioFormat(sample_rate_hz=22_050),
        index=2,
        text="Hello there.",
        last=True,
        voice="joe",
    ),
    SummarizeRequest(
        text="First point. Second point.", max_sentences=1, ratio=0.5, session_id="lecture-1"
    ),
    Summary(
        text="First point.",
        method="extractive",
        model="extractive",
        source_sentences=2,
        processing_s=0.01,
    ),
    ChatRequest(
        messages=[
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Hello?"),
        ],
        max_tokens=64,
        temperature=0.2,
        session_id="s1",
        user_id="u1",
    ),
    ChatReply(
        text="Hello there.",
        index=1,
        last=True,
        model="smollm2",
        finish_reason="stop",
        processing_s=0.3,
    ),
    SpeakerRequest(audio=b"\x01\x00" * 160, task="embed", num_speakers=2),
    SpeakerResult(
        task="diarize",
        turns=[SpeakerTurn(start_s=0.5, end_s=2.25, speaker="S1")],
        speakers=[Voiceprint(speaker="S1", embedding=[0.6, 0.8], speech_s=1.75)],
        duration_s=3.0,
        speech_s=1.75,
        model="ge2e",
        processing_s=0.1,
    ),
    ErrorResult(code="failed", message="boom", stage="stt"),
]


def test_examples_cover_every_payload_kind() -> None:
    assert {type(e) for e in EXAMPLES} == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.kind)
def test_round_trip_keeps_every_field(payload: BaseModel) -> None:
    original = Envelope(
        payload=payload, session="s1", seq=7, parent="p", reply_to="r", deadline_s=1.0
    )
    decoded = unpack(pack(original))
    assert decoded == original
    assert decoded.kind == payload.kind  # type: ignore[attr-defined]
    assert decoded.model_dump() == original.model_dump()


def test_reply_is_addressed_to_the_job() -> None:
    job = Envelope(payload=EXAMPLES[0], session="s", reply_to="pp:replies:g")
    answer = job.reply(EXAMPLES[-1], seq=3)
    assert (answer.parent, answer.session, answer.seq) == (job.id, "s", 3)
    assert answer.id != job.id


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "not msgpack"),
        (b"\xc1", "not msgpack"),
        (msgpack.packb([1, 2]), "expected a map"),
        (msgpack.packb({"v": 2}), "invalid envelope"),
        (
            msgpack.packb({"v": 1, "payload": {"kind": "error", "code": "x", "message": "y"}}),
            "invalid envelope",
        ),
        (msgpack.packb({"payload": {"kind": "nope"}}), "invalid envelope"),
        (
            msgpack.packb({"payload": {"kind": "error", "code": "x", "message": "y"}, "evil": 1}),
            "invalid envelope",
        ),
    ],
)
def test_bad_entries_raise_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        unpack(data)


def test_oversized_entry_is_refused_before_decoding() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        unpack(b"\x00" * (MAX_ENTRY_BYTES + 1))


def test_audio_must_be_whole_frames() -> None:
    with pytest.raises(ValueError, match="whole number of frames"):
        TranscribeRequest(audio=b"\x00\x00\x00", audio_format=AudioFormat(sample_width_bytes=2))


def test_audio_format_duration() -> None:
    fmt = AudioFormat(sample_rate_hz=8_000, channels=2, sample_width_bytes=2)
    assert fmt.duration_s(b"\x00" * 32_000) == pytest.approx(1.0)


def test_envelope_is_frozen() -> None:
    env = Envelope(payload=EXAMPLES[-1])
    with pytest.raises(ValueError):
        env.seq = 3  # type: ignore[misc]
