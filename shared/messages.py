"""The one message contract: an envelope around a typed payload, msgpack on the wire.

``pack`` and ``unpack`` are the only serialisation code in the project. Every payload
kind is a frozen pydantic model with a ``kind`` literal, so a decoded entry is either a
fully valid message or a ``DecodeError`` with the reason.
"""

import time
import uuid
from enum import StrEnum
from typing import Annotated, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 2  # 2: a transcription job names its mode (SttMode) instead of three flags
# Refuse absurd entries before msgpack allocates for them (an hour of 16 kHz s16 mono is 115 MB).
MAX_ENTRY_BYTES = 128 * 1024 * 1024


class DecodeError(ValueError):
    """A stream entry that is not a valid PyParrot message."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AudioFormat(_Frozen):
    """How raw PCM bytes are laid out: little-endian signed integers, interleaved."""

    sample_rate_hz: int = Field(16_000, ge=1_000, le=192_000)
    channels: int = Field(1, ge=1, le=8)
    sample_width_bytes: Literal[2, 4] = 2

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample on every channel)."""
        return self.channels * self.sample_width_bytes

    def duration_s(self, audio: bytes) -> float:
        """Seconds of audio in ``audio``."""
        return len(audio) / (self.frame_bytes * self.sample_rate_hz)


class Word(_Frozen):
    start_s: float
    end_s: float
    word: str
    probability: float


class Segment(_Frozen):
    id: int
    start_s: float
    end_s: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0  # of its decoding window's text (zlib); high = a loop
    words: list[Word] = []
    language: str | None = Field(None, description="ISO 639-1 code this segment was heard in")


class SttMode(StrEnum):
    """What an STT job is for, which decides how the worker decodes it."""

    FILE = "file"  # a whole file or request: full windows, context carried across them
    LIVE_FINAL = "live_final"  # a live session's utterance, once it has ended
    PARTIAL = "partial"  # a live utterance's hypothesis so far, replaced by its final

    @property
    def final(self) -> bool:
        """Not a partial: the text stands."""
        return self is not SttMode.PARTIAL

    @property
    def live(self) -> bool:
        """A live session's job: the worker may trade a little accuracy for time."""
        return self is not SttMode.FILE

    @property
    def fallback(self) -> bool:
        """Whisper's temperature-fallback re-decodes are allowed (if the worker does them):
        on a live job's short utterances they fire often and cost seconds."""
        return self is SttMode.FILE


class TranscribeRequest(_Frozen):
    """Audio to transcribe (or translate to English, Whisper's ``translate`` task)."""

    kind: Literal["stt.request"] = "stt.request"
    audio: bytes
    audio_format: AudioFormat = AudioFormat()
    language: str | None = Field(None, description="ISO 639-1 code; None detects it")
    prompt: str | None = Field(None, max_length=2_000)
    task: Literal["transcribe", "translate"] = "transcribe"
    word_timestamps: bool = False
    mode: SttMode = Field(
        SttMode.FILE,
        description="a file, a live final (the worker may decode a shorter window and skip "
        "the pause after the last word, as its own settings say) or a live partial",
    )

    @model_validator(mode="after")
    def _whole_frames(self) -> "TranscribeRequest":
        if len(self.audio) % self.audio_format.frame_bytes:
            raise ValueError("audio length is not a whole number of frames")
        return self


class Transcript(_Frozen):
    kind: Literal["stt.result"] = "stt.result"
    text: str
    language: str
    language_probability: float = 1.0
    duration_s: float
    segments: list[Segment] = []
    final: bool = True
    model: str = ""
    processing_s: float = 0.0
    sentence_end_p: float | None = Field(
        None, description="a live final's: the model's probability of a sentence mark after it"
    )


class TranslateRequest(_Frozen):
    """Text to translate from ``source`` to ``target`` (ISO 639-1 codes)."""

    kind: Literal["mt.request"] = "mt.request"
    text: str = Field(min_length=1, max_length=20_000)
    source: str = Field(min_length=2, max_length=8)
    target: str = Field(min_length=2, max_length=8)


class Translation(_Frozen):
    kind: Literal["mt.result"] = "mt.result"
    text: str
    source: str
    target: str
    model: str = ""
    processing_s: float = 0.0


class SynthesizeRequest(_Frozen):
    """Text to speak; the worker answers with one ``SpeechChunk`` per sentence."""

    kind: Literal["tts.request"] = "tts.request"
    text: str = Field(min_length=1, max_length=20_000)
    voice: str = ""
    language: str | None = None
    speed: float = Field(1.0, ge=0.25, le=4.0)


class SpeechChunk(_Frozen):
    """One sentence of synthesised speech; ``last`` marks the end of the request."""

    kind: Literal["tts.audio"] = "tts.audio"
    audio: bytes
    audio_format: AudioFormat
    index: int = Field(0, ge=0)
    text: str = ""
    last: bool = False
    voice: str = ""


class SummarizeRequest(_Frozen):
    """Text to summarise (one-shot, or a session's transcript so far); one ``Summary`` back.

    The worker is stateless: a session's transcript travels in ``text``; ``session_id`` only
    says whose it is (logs, prompts)."""

    kind: Literal["sum.request"] = "sum.request"
    text: str = Field(min_length=1, max_length=200_000)
    max_sentences: int | None = Field(None, ge=1, le=200, description="cap on summary length")
    ratio: float | None = Field(
        None, gt=0, le=1, description="summary length as a share of the sentences"
    )
    session_id: str | None = Field(None, max_length=128)


class Summary(_Frozen):
    kind: Literal["sum.result"] = "sum.result"
    text: str
    method: Literal["extractive", "abstractive"]
    model: str = ""
    source_sentences: int = Field(0, ge=0, description="sentences in the summarised text")
    processing_s: float = 0.0


class ChatMessage(_Frozen):
    """One message of a conversation, in OpenAI's chat shape."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20_000)


class ChatRequest(_Frozen):
    """A conversation for the LLM to continue; the worker answers with ``ChatReply`` chunks.

    Workers are stateless: the gateway sends the whole context (history, memory) each time;
    ``session_id`` and ``user_id`` only say whose it is (logs)."""

    kind: Literal["llm.request"] = "llm.request"
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    max_tokens: int = Field(256, ge=1, le=4_096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    session_id: str | None = Field(None, max_length=128)
    user_id: str | None = Field(None, max_length=128)


class ChatReply(_Frozen):
    """One sentence of the reply as soon as it is generated; ``last`` marks the end (its
    ``text`` may be empty)."""

    kind: Literal["llm.result"] = "llm.result"
    text: str
    index: int = Field(0, ge=0)
    last: bool = False
    model: str = ""
    finish_reason: str = ""
    processing_s: float = 0.0


class SpeakerRequest(_Frozen):
    """Audio for the speaker stage: ``diarize`` (who spoke when, one voiceprint per speaker)
    or ``embed`` (one voiceprint of all the speech, e.g. to enrol a person)."""

    kind: Literal["speaker.request"] = "speaker.request"
    audio: bytes
    audio_format: AudioFormat = AudioFormat()
    task: Literal["diarize", "embed"] = "diarize"
    num_speakers: int | None = Field(
        None, ge=1, le=32, description="known number of speakers; None estimates it"
    )
    min_speech_s: float = Field(
        0.0, ge=0, le=600, description="less speech than this is refused (insufficient_speech)"
    )

    @model_validator(mode="after")
    def _whole_frames(self) -> "SpeakerRequest":
        if len(self.audio) % self.audio_format.frame_bytes:
            raise ValueError("audio length is not a whole number of frames")
        return self


class SpeakerTurn(_Frozen):
    """A stretch of speech by one speaker (labels "S1", "S2", ... in order of first voice)."""

    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    speaker: str


class Voiceprint(_Frozen):
    """One speaker's unit-length embedding and how much speech it was made from."""

    speaker: str
    embedding: list[float] = Field(min_length=1, max_length=4_096)
    speech_s: float = Field(ge=0)


class SpeakerResult(_Frozen):
    kind: Literal["speaker.result"] = "speaker.result"
    task: Literal["diarize", "embed"]
    turns: list[SpeakerTurn] = []
    speakers: list[Voiceprint] = []
    duration_s: float = 0.0
    speech_s: float = 0.0
    model: str = ""
    processing_s: float = 0.0


class ErrorResult(_Frozen):
    """A job that ended without a result; the requester hears why."""

    kind: Literal["error"] = "error"
    code: str
    message: str
    stage: str = ""


Payload = Annotated[
    TranscribeRequest
    | Transcript
    | TranslateRequest
    | Translation
    | SynthesizeRequest
    | SpeechChunk
    | SummarizeRequest
    | Summary
    | ChatRequest
    | ChatReply
    | SpeakerRequest
    | SpeakerResult
    | ErrorResult,
    Field(discriminator="kind"),
]
PAYLOAD_TYPES: tuple[type[BaseModel], ...] = (
    TranscribeRequest,
    Transcript,
    TranslateRequest,
    Translation,
    SynthesizeRequest,
    SpeechChunk,
    SummarizeRequest,
    Summary,
    ChatRequest,
    ChatReply,
    SpeakerRequest,
    SpeakerResult,
    ErrorResult,
)


def new_id() -> str:
    """A fresh, unique message id."""
    return uuid.uuid4().hex


class Envelope(_Frozen):
    """One message on a stream: routing and bookkeeping around a typed payload."""

    v: Literal[2] = SCHEMA_VERSION
    id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    session: str | None = Field(None, max_length=128)
    seq: int = Field(0, ge=0)
    created_s: float = Field(default_factory=time.time)
    parent: str | None = Field(None, max_length=64, description="id of the job this answers")
    reply_to: str | None = Field(None, max_length=256, description="stream for the results")
    deadline_s: float | None = Field(
        None, description="epoch seconds after which the job is not started (answered expired)"
    )
    payload: Payload

    @property
    def kind(self) -> str:
        """The payload's kind, e.g. ``stt.request``."""
        return self.payload.kind

    def reply(self, payload: BaseModel, seq: int = 0) -> "Envelope":
        """An envelope answering this one, addressed to its requester."""
        return Envelope(
            session=self.session, seq=seq, parent=self.id, reply_to=None, payload=payload
        )


def pack(envelope: Envelope) -> bytes:
    """Serialise an envelope for a stream entry."""
    return msgpack.packb(envelope.model_dump(mode="python"), use_bin_type=True)


def unpack(data: bytes) -> Envelope:
    """Decode and validate a stream entry; raise ``DecodeError`` with the reason."""
    if len(data) > MAX_ENTRY_BYTES:
        raise DecodeError(f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
    try:
        raw = msgpack.unpackb(data, raw=False)  # its length limits default to len(data)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"not msgpack: {exc}") from exc
    if not isinstance(raw, dict):
        raise DecodeError(f"expected a map, got {type(raw).__name__}")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        raise DecodeError(f"invalid envelope: {exc.errors(include_url=False)}") from exc
