"""Turning one synthesis job into one speech chunk per sentence. No Redis, no environment."""

from collections.abc import Iterator

from services.tts.engine import TtsEngine
from services.tts.settings import TtsSettings
from shared.errors import text_problem
from shared.messages import AudioFormat, Envelope, SpeechChunk, SynthesizeRequest
from shared.worker import Rejected


def _check(model: TtsEngine, settings: TtsSettings, request: SynthesizeRequest) -> None:
    if not request.text.strip():
        raise Rejected("empty_text", "there is no text to speak")
    if len(request.text) > settings.max_text_chars:
        raise Rejected("text_too_long", f"text is longer than {settings.max_text_chars} chars")
    if problem := text_problem(request.text):
        raise Rejected("invalid_text", problem)
    if request.voice and request.voice != model.name:
        raise Rejected("unknown_voice", f"this worker speaks {model.name!r}, not {request.voice!r}")
    if request.language and request.language not in model.languages:
        raise Rejected(
            "unsupported_language", f"voice {model.name} does not speak {request.language!r}"
        )


def synthesize(
    model: TtsEngine, settings: TtsSettings, request: SynthesizeRequest
) -> Iterator[SpeechChunk]:
    """Speak one request, a chunk per sentence as soon as it is synthesised."""
    _check(model, settings, request)
    # Counting first lets the last sentence carry last=True without holding any chunk back.
    total = model.count_sentences(request.text)
    if total == 0:
        raise Rejected("empty_text", "the text contains nothing speakable")
    fmt = AudioFormat(sample_rate_hz=model.sample_rate_hz, channels=1, sample_width_bytes=2)
    for index, pcm in enumerate(model.synthesize(request.text, request.speed)):
        yield SpeechChunk(
            audio=pcm, audio_format=fmt, index=index, last=index == total - 1, voice=model.name
        )


def handle(model: TtsEngine, settings: TtsSettings, job: Envelope) -> Iterator[SpeechChunk]:
    """The worker-loop handler: one chunk per sentence, the last marked ``last``."""
    if not isinstance(job.payload, SynthesizeRequest):
        raise Rejected("wrong_kind", f"tts cannot handle {job.kind!r}")
    yield from synthesize(model, settings, job.payload)
