"""The /ws/converse protocol: the client's messages, error
codes, and turning the client's audio into 16 kHz float32 mono.

Client -> server: ``auth`` (first), binary audio, ``audio_complete``, ``text_input``,
``interrupt``. Server -> client: ``session_started``, ``stt_partial``, ``stt_final``,
``translation``, ``llm_response``, binary TTS audio + ``tts_complete``, ``interrupt_ack``,
``audio_processed`` and ``error`` ``{code, message}``.
"""

import json
from typing import Any, Literal

import numpy as np
import soxr
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.gateway.ids import ID_OR_EMPTY_PATTERN, ID_PATTERN
from shared.silero import RATE_HZ

MIN_RATE_HZ = 4_000
MAX_RATE_HZ = 192_000
END2END_TARGET = "en"  # Whisper translates speech directly into English only
SESSION_ID_PATTERN = ID_PATTERN  # services/gateway/ids.py: one pattern for every id


class ProtocolError(Exception):
    """A client message that cannot be honoured; becomes an ``error`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SessionOptions(BaseModel):
    """What a presenter chooses for a session, over either transport (socket or WebRTC)."""

    model_config = ConfigDict(extra="ignore")

    user_id: str = Field("", pattern=ID_OR_EMPTY_PATTERN)
    session_id: str | None = Field(None, pattern=SESSION_ID_PATTERN, description="resume it")
    pipeline: Literal["end2end", "cascaded", "dialog"] = "cascaded"
    target_languages: list[str] = Field(default_factory=list, max_length=8)
    voice: str | None = Field(None, max_length=128)
    language: str | None = Field(None, min_length=2, max_length=8, description="source hint")


class Auth(SessionOptions):
    """The first message of a socket connection."""

    type: Literal["auth"]
    api_key: str = Field("", max_length=512, description="a presenter API key (unless open mode)")
    audio_format: Literal["float32", "pcm_s16le"] = "float32"
    sample_rate: int = 16_000


def parse_auth(message: dict[str, Any]) -> Auth:
    """Validate an ``auth`` message; raise ``ProtocolError`` with what is wrong."""
    try:
        auth = Auth.model_validate(message)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ProtocolError("invalid_auth", "; ".join(parts)) from exc
    if not MIN_RATE_HZ <= auth.sample_rate <= MAX_RATE_HZ:
        raise ProtocolError(
            "bad_sample_rate",
            f"sample_rate {auth.sample_rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz",
        )
    check_options(auth)
    return auth


def check_options(options: SessionOptions) -> None:
    """What the model cannot check alone: language codes, and what ``end2end`` can do."""
    for language in options.target_languages:
        if not 2 <= len(language) <= 8 or not language.isalpha():
            raise ProtocolError("invalid_auth", f"target language {language[:16]!r} is no code")
    other = sorted(set(options.target_languages) - {END2END_TARGET})
    if options.pipeline == "end2end" and other:
        raise ProtocolError(
            "invalid_auth",
            f"pipeline 'end2end' translates speech into {END2END_TARGET!r} only (Whisper's "
            f"translate task); use 'cascaded' for {other}",
        )


def parse_message(text: str) -> dict[str, Any]:
    """A client's JSON text message; raise ``ProtocolError`` unless it is an object."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_json", f"malformed JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("bad_json", "expected a JSON object with a 'type'")
    return message


class AudioInput:
    """Decodes the client's binary frames and resamples them to 16 kHz float32 mono."""

    def __init__(self, audio_format: str, sample_rate: int) -> None:
        self.dtype = np.dtype("<f4") if audio_format == "float32" else np.dtype("<i2")
        self.scale = 1.0 if audio_format == "float32" else 1 / 32768
        self.resampler = (
            None
            if sample_rate == RATE_HZ
            else soxr.ResampleStream(sample_rate, RATE_HZ, 1, dtype="float32")
        )

    def decode(self, data: bytes) -> np.ndarray:
        """One binary message as 16 kHz samples; raise ``ProtocolError`` on a torn frame."""
        if len(data) % self.dtype.itemsize:
            raise ProtocolError(
                "bad_audio",
                f"{len(data)} bytes is not a whole number of {self.dtype.itemsize}-byte samples",
            )
        samples = np.frombuffer(data, dtype=self.dtype).astype(np.float32) * self.scale
        if not np.all(np.isfinite(samples)):
            raise ProtocolError("bad_audio", "audio contains NaN or infinite samples")
        samples = np.clip(samples, -1.0, 1.0)
        if self.resampler is None:
            return samples
        return self.resampler.resample_chunk(samples)

    def finish(self) -> np.ndarray:
        """What the resampler still holds at the end of a stream."""
        if self.resampler is None:
            return np.zeros(0, dtype=np.float32)
        tail = self.resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self.resampler.clear()
        return tail


def error(code: str, message: str) -> dict[str, Any]:
    """An ``error`` event."""
    return {"type": "error", "code": code, "message": message}
