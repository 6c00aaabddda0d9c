"""Turning one transcription job into one transcript. No Redis, no environment."""

import contextlib
import time
from collections.abc import Iterator

import numpy as np

from services.stt.langid import choose_language
from services.stt.model import LaterWindowSkipped, SttModel
from services.stt.settings import SttSettings
from shared.audio import WHISPER_RATE_HZ, to_float32_mono
from shared.messages import Envelope, Segment, TranscribeRequest, Transcript, Word
from shared.worker import Rejected

MIN_AUDIO_S = 0.05
# A partial's tokens per second of audio, at most (capped at 200: faster-whisper refuses a
# prompt plus new tokens over 448, and cuts the prompt at 223): speech runs ~4 text tokens/s
# plus timestamps; the cap stops the rare repetition loop a shortened window can start.
PARTIAL_TOKENS_PER_S = 8
PARTIAL_MIN_TOKENS = 24


def _check(model: SttModel, request: TranscribeRequest) -> None:
    fmt = request.audio_format
    if fmt.sample_rate_hz != WHISPER_RATE_HZ:
        raise Rejected(
            "unsupported_audio", f"expected {WHISPER_RATE_HZ} Hz, got {fmt.sample_rate_hz}"
        )
    if fmt.duration_s(request.audio) < MIN_AUDIO_S:
        raise Rejected("empty_audio", f"audio shorter than {MIN_AUDIO_S} s")
    if request.language and request.language not in model.languages:
        raise Rejected(
            "unsupported_language",
            f"model {model.name} does not transcribe {request.language!r}",
        )


def _segment(index: int, seg: object) -> Segment:
    words = [
        Word(start_s=w.start, end_s=w.end, word=w.word, probability=w.probability)
        for w in (getattr(seg, "words", None) or [])
    ]
    return Segment(
        id=index,
        start_s=seg.start,  # type: ignore[attr-defined]
        end_s=seg.end,  # type: ignore[attr-defined]
        text=seg.text.strip(),  # type: ignore[attr-defined]
        avg_logprob=seg.avg_logprob,  # type: ignore[attr-defined]
        no_speech_prob=seg.no_speech_prob,  # type: ignore[attr-defined]
        compression_ratio=seg.compression_ratio,  # type: ignore[attr-defined]
        words=words,
    )


def _heard(settings: SttSettings, segment: Segment) -> bool:
    """False for a segment Whisper made up rather than heard:

    - over silence, likely no speech and decoded unsurely. Measured on a live utterance's
      trailing pause with the previous text as prompt: "Thank you very much." at no_speech
      0.49 / logprob -1.54, where real speech in the same call scores 0.00 / -0.08;
    - in a decoding loop: its window's text repeats itself (Whisper's own test, the zlib
      compression ratio), or it holds no word at all. Measured on the 0.4 s after a live
      final's last word (a second window that word timings open): " . . . ." x 223 at ratio
      29.7, logprob -0.03. Kept, it became the next finals' prompt, and each of them looped.
    """
    if not any(c.isalnum() for c in segment.text):
        return False
    if segment.compression_ratio > settings.drop_compression_ratio:
        return False
    return not (
        segment.no_speech_prob >= settings.drop_no_speech_prob
        and segment.avg_logprob < settings.drop_logprob
    )


def _decode(
    model: SttModel,
    settings: SttSettings,
    request: TranscribeRequest,
    audio: np.ndarray,
    language: str | None,
    fallback: bool,
) -> tuple[list[object], object]:
    """One Whisper call. A live job runs on a shorter encoder window and skips a short
    window after its first (the pause after the last word); a partial's tokens are capped."""
    live = request.live or not request.final  # partials are live jobs too
    window_s = settings.live_final_window_s if request.live else 0.0
    skip_s = settings.live_skip_tail_s if live else 0.0
    max_tokens = None
    if not request.final:
        window_s = settings.partial_window_s
        duration_s = request.audio_format.duration_s(request.audio)
        max_tokens = min(PARTIAL_MIN_TOKENS + int(duration_s * PARTIAL_TOKENS_PER_S), 200)
    with model.whisper.encoder_window(window_s, skip_s):
        segments, info = model.whisper.transcribe(
            audio,
            language=language if model.multilingual else "en",
            task=request.task if model.multilingual else "transcribe",
            beam_size=settings.beam_size,
            vad_filter=settings.vad_filter,
            word_timestamps=request.word_timestamps,
            initial_prompt=request.prompt or None,
            temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if fallback else 0.0,
            condition_on_previous_text=False,
            max_new_tokens=max_tokens,
        )
        decoded: list[object] = []  # decoded here, inside the window
        with contextlib.suppress(LaterWindowSkipped):
            decoded.extend(segments)
        return decoded, info


def transcribe(model: SttModel, settings: SttSettings, request: TranscribeRequest) -> Transcript:
    """Run Whisper on one request."""
    _check(model, request)
    started = time.perf_counter()
    audio = to_float32_mono(request.audio, request.audio_format)
    # Partials must be fast and predictable: no temperature fallback re-decodes.
    fallback = settings.temperature_fallback and request.final and request.fallback
    language, probability = request.language, None
    if model.multilingual and language is None:
        choice = choose_language(model, settings, audio, rescore=request.final)
        language, probability = choice.language, choice.probability
    segments, info = _decode(model, settings, request, audio, language, fallback)
    parts = [p for p in (_segment(i, seg) for i, seg in enumerate(segments)) if _heard(settings, p)]
    return Transcript(
        text=" ".join(p.text for p in parts if p.text),
        language=info.language,
        language_probability=info.language_probability if probability is None else probability,
        duration_s=request.audio_format.duration_s(request.audio),
        segments=parts,
        final=request.final,
        model=model.name,
        processing_s=time.perf_counter() - started,
    )


def handle(model: SttModel, settings: SttSettings, job: Envelope) -> Iterator[Transcript]:
    """The worker-loop handler: one transcript per job."""
    if not isinstance(job.payload, TranscribeRequest):
        raise Rejected("wrong_kind", f"stt cannot handle {job.kind!r}")
    yield transcribe(model, settings, job.payload)
