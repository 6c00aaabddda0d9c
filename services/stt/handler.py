"""Turning one transcription job into one transcript. No Redis, no environment."""

import contextlib
import time
from collections.abc import Iterator

import numpy as np

from services.stt.langid import Choice, choose_language
from services.stt.model import ClipLanguage, LaterWindowSkipped, SttModel
from services.stt.sentence_end import mark_probability
from services.stt.settings import SttSettings
from shared.audio import WHISPER_RATE_HZ, to_float32_mono
from shared.messages import Envelope, Segment, SttMode, TranscribeRequest, Transcript, Word
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


def _segment(index: int, seg: object, language: str | None) -> Segment:
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
        language=language,
    )


def _heard(settings: SttSettings, segment: Segment, live: bool) -> bool:
    """False for a segment Whisper made up rather than heard. A file job keeps what Whisper
    keeps (its own no-speech and loop checks ran already): stricter rules there lost real
    speech at a clip's end. A live job's audio ends in a pause Whisper hears words in:

    - over silence, likely no speech and decoded unsurely (a polite phrase after the last
      word, prompted by the previous finals);
    - in a decoding loop: its window's text repeats itself (Whisper's own test, the zlib
      compression ratio), or it holds no word at all. Kept, it would become the next
      finals' prompt, and each of them would loop too.
    """
    if not any(c.isalnum() for c in segment.text):
        return False
    if not live:
        return True
    if segment.compression_ratio > settings.drop_compression_ratio:
        return False
    return not (
        segment.no_speech_prob >= settings.drop_no_speech_prob
        and segment.avg_logprob < settings.drop_logprob
    )


def _switching(model: SttModel, request: TranscribeRequest) -> bool:
    """A file of no stated language on a multilingual model: each window may change it."""
    return model.multilingual and request.language is None and not request.mode.live


def _decode(
    model: SttModel,
    settings: SttSettings,
    request: TranscribeRequest,
    audio: np.ndarray,
    choice: Choice | None,
    fallback: bool,
) -> tuple[list[tuple[object, str | None]], object]:
    """One Whisper call: its segments, each with its window's language when it may change.
    A live job runs on a shorter encoder window and skips a short window after its first
    (the pause after the last word); a partial's tokens are capped."""
    live = request.mode.live
    language = choice.language if choice else request.language
    switching = _switching(model, request)
    window_s = settings.live_final_window_s if request.mode is SttMode.LIVE_FINAL else 0.0
    skip_s = settings.live_skip_tail_s if live else 0.0
    max_tokens = None
    if request.mode is SttMode.PARTIAL:
        window_s = settings.partial_window_s
        duration_s = request.audio_format.duration_s(request.audio)
        max_tokens = min(PARTIAL_MIN_TOKENS + int(duration_s * PARTIAL_TOKENS_PER_S), 200)
    clip = None
    if choice is not None and switching:
        clip = ClipLanguage(choice.language, choice.guess, settings.language_confidence)
    with model.whisper.encoder_window(window_s, skip_s, clip):
        segments, info = model.whisper.transcribe(
            audio,
            language=language if model.multilingual else "en",
            task=request.task if model.multilingual else "transcribe",
            beam_size=settings.beam_size,
            vad_filter=settings.vad_filter,
            word_timestamps=request.word_timestamps,
            initial_prompt=request.prompt or None,
            temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if fallback else 0.0,
            # A file carries context across its 30 s windows, as Whisper does by default;
            # a live utterance is prompted with the finals before it instead, and a
            # code-switched file must not carry one language's text into the next window.
            condition_on_previous_text=not (live or switching),
            multilingual=switching,
            max_new_tokens=max_tokens,
        )
        decoded: list[tuple[object, str | None]] = []  # decoded here, inside the window
        with contextlib.suppress(LaterWindowSkipped):
            for seg in segments:
                decoded.append((seg, model.whisper.window_language() or info.language))
        return decoded, info


def transcribe(model: SttModel, settings: SttSettings, request: TranscribeRequest) -> Transcript:
    """Run Whisper on one request."""
    _check(model, request)
    started = time.perf_counter()
    audio = to_float32_mono(request.audio, request.audio_format)
    # Live jobs must be fast and predictable: no temperature fallback re-decodes.
    fallback = settings.temperature_fallback and request.mode.fallback
    choice = None
    if model.multilingual and request.language is None:
        choice = choose_language(model, settings, audio, rescore=request.mode.final)
    segments, info = _decode(model, settings, request, audio, choice, fallback)
    parts = [_segment(i, seg, lang) for i, (seg, lang) in enumerate(segments)]
    parts = [p for p in parts if _heard(settings, p, request.mode.live)]
    text = " ".join(p.text for p in parts if p.text)
    # A live final's text may end a sentence or only a fragment: the gateway asks which.
    one_window = request.audio_format.duration_s(request.audio) < 30
    ask = request.mode is SttMode.LIVE_FINAL and one_window and text
    end_p = mark_probability(model, text, info.language) if ask else None
    return Transcript(
        text=text,
        language=info.language,
        language_probability=info.language_probability if choice is None else choice.probability,
        duration_s=request.audio_format.duration_s(request.audio),
        segments=parts,
        final=request.mode.final,
        model=model.name,
        processing_s=time.perf_counter() - started,
        sentence_end_p=end_p,
    )


def handle(model: SttModel, settings: SttSettings, job: Envelope) -> Iterator[Transcript]:
    """The worker-loop handler: one transcript per job."""
    if not isinstance(job.payload, TranscribeRequest):
        raise Rejected("wrong_kind", f"stt cannot handle {job.kind!r}")
    yield transcribe(model, settings, job.payload)
