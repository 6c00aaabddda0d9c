"""The two Wyoming jobs: audio to a transcript, text to streamed audio (via the gateway core)."""

from collections.abc import Awaitable, Callable

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.stages import stt
from services.gateway.stages.tts import SpeechOptions, speak
from services.gateway.stages.workers import live_workers
from services.gateway.wyoming.info import PROGRAM

Send = Callable[[Event], Awaitable[None]]


def _language(tag: str | None) -> str | None:
    """Home Assistant may send a region ("en-US"); workers list ISO 639-1 codes."""
    return tag.split("-")[0].split("_")[0].lower() if tag else None


async def transcribe(core: Core, request: Transcribe, pcm16: bytes, send: Send) -> None:
    """One STT job; the answer streamed (start, chunk per segment, transcript, stop)."""
    language = _language(request.language)
    if pcm16:
        model = request.name if request.name and request.name != PROGRAM else "whisper-1"
        options = stt.SttOptions(model=model, language=language)
        result = await stt.transcribe(core, pcm16, options)
        text, language, pieces = result.text, result.language, [s.text for s in result.segments]
    else:
        text, pieces = "", []  # no audio at all: nothing was said (as wyoming-faster-whisper)
    await send(TranscriptStart(language=language).event())
    for index, piece in enumerate(pieces):
        await send(TranscriptChunk(text=piece if index == 0 else f" {piece}").event())
    # The plain transcript is what non-streaming clients wait for; the protocol puts it here.
    await send(Transcript(text=text, language=language).event())
    await send(TranscriptStop().event())


async def _voice_name(core: Core, voice: SynthesizeVoice | None) -> str:
    """The served voice a request means; "" picks the default voice."""
    if voice is None or voice.name == PROGRAM:
        return ""
    if voice.name:
        return voice.name
    language = _language(voice.language)
    if language is None:
        return ""
    live = await live_workers(core, "tts", "text-to-speech")
    fit = sorted(w.model for w in live if language in w.languages)
    if not fit:
        served = sorted({lang for w in live for lang in w.languages})
        raise GatewayError(
            400, f"no voice speaks {voice.language!r}; served languages: {served}", "unknown_voice"
        )
    return fit[0]


async def synthesize(core: Core, request: Synthesize, send: Send) -> None:
    """One TTS job; audio-start on the first sentence, an audio-chunk per sentence, audio-stop."""
    options = SpeechOptions(text=request.text, voice=await _voice_name(core, request.voice))
    chunks = speak(core, options)
    started = False
    try:
        async for chunk in chunks:
            fmt = chunk.audio_format
            shape = (fmt.sample_rate_hz, fmt.sample_width_bytes, fmt.channels)
            if not started:
                await send(AudioStart(*shape).event())
                started = True
            await send(AudioChunk(*shape, audio=chunk.audio).event())
    except GatewayError:
        if started:  # clients wait for audio-stop: end the stream, then say what went wrong
            await send(AudioStop().event())
        raise
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    await send(AudioStop().event())
