"""The speech-to-text stage's client: which STT worker takes a request, and the job that
carries 16 kHz mono PCM to it."""

from dataclasses import dataclass

from services.gateway.core import Core, call
from services.gateway.errors import GatewayError, bus_guard
from services.gateway.stages.workers import least_busy, live_workers, serving
from shared import streams
from shared.heartbeat import WorkerInfo
from shared.messages import SttMode, TranscribeRequest, Transcript

TITLE = "speech-to-text"
OPENAI_STT_ALIASES = {"whisper-1", "", "default"}  # names that let the gateway choose


@dataclass(frozen=True)
class SttOptions:
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    task: str = "transcribe"
    word_timestamps: bool = False
    mode: SttMode = SttMode.FILE  # a partial goes to the background lane
    start_within_s: float | None = None  # not started by then: answered expired


async def stt_worker(core: Core, model: str, language: str | None, live: bool) -> WorkerInfo:
    """A live STT worker for ``model`` (or an alias) that handles ``language``. An alias
    with no language sends a file to a multilingual model, which hears any language
    (English-only ones turn other speech into made-up English), and a live session's
    audio to the default model, which is faster."""
    workers = await live_workers(core, "stt", TITLE)
    served = sorted({w.model for w in workers})
    default_model = core.settings.default_stt_model
    if model not in OPENAI_STT_ALIASES:
        chosen = serving(workers, model, "model", "no_worker")
    elif language is None and not live:
        chosen = sorted(workers, key=lambda w: (len(w.languages) == 1, w.model))
    else:
        chosen = sorted(workers, key=lambda w: (w.model != default_model, len(w.languages) > 1))
    fit = [w for w in chosen if language is None or language in w.languages]
    if not fit:
        message = f"no running model transcribes language {language!r}; served models: {served}"
        raise GatewayError(400, message, "no_worker")
    return fit[0]


async def transcribe(core: Core, pcm16: bytes, options: SttOptions) -> Transcript:
    """Send 16 kHz mono PCM through an STT worker and return its transcript."""
    worker = await stt_worker(core, options.model, options.language, options.mode.live)
    payload = TranscribeRequest(
        audio=pcm16,
        language=options.language,
        prompt=options.prompt,
        task=options.task,  # type: ignore[arg-type]
        word_timestamps=options.word_timestamps,
        mode=options.mode,
    )
    stream = streams.jobs("stt", worker.model)
    if options.mode is SttMode.PARTIAL:
        stream = streams.background(stream)  # finals and file jobs go first
    result = await call(core, stream, payload, "stt", options.start_within_s)
    if not isinstance(result, Transcript):
        raise GatewayError(502, f"stt answered with {result.kind!r}", "bad_reply")
    return result


async def english_stt_model(core: Core, model: str) -> str:
    """The STT model for speech -> English text. An OpenAI alias picks a live multilingual
    model (Whisper translates); with only English models live it stays the default one,
    which transcribes: right for English speech, wrong for any other (documented)."""
    if model not in OPENAI_STT_ALIASES:
        return model
    with bus_guard():
        live = [w for w in await core.registry.workers() if w.component == "stt"]
    multilingual = [w for w in live if len(w.languages) > 1]
    return least_busy(multilingual, lambda w: w.name).model if multilingual else model


async def speech_to_english(core: Core, pcm16: bytes, language: str) -> str:
    """English text of 16 kHz speech in ``language`` by Whisper's translate task (direct,
    end-to-end speech translation); empty for English speech, whose transcript is already
    the answer. 503 if no multilingual model runs (English-only models cannot translate)."""
    if language == "en":
        return ""
    model = await english_stt_model(core, "whisper-1")
    live = await live_workers(core, "stt", TITLE)
    if not any(w.model == model and len(w.languages) > 1 for w in live):
        raise GatewayError(
            503,
            "speech translation needs a multilingual Whisper model (e.g. STT_MODEL=base); "
            f"served models: {sorted({w.model for w in live})}",
            "no_worker",
        )
    options = SttOptions(model=model, language=language, task="translate")
    return (await transcribe(core, pcm16, options)).text
