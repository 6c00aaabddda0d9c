"""The espeak-ng engine: formant voices for ~100 languages that have no neural voice here.

Each sentence is one ``espeak-ng --stdout`` run, so the first sentence's audio exists before
the second is synthesised. A process per sentence costs a few milliseconds, is safe to run
from several worker threads at once, and a crash in espeak-ng cannot take the worker down
(the library binding would share one global, non-reentrant espeak state).
"""

import io
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass

from services.tts.engine import split_sentences
from services.tts.settings import TtsSettings

# espeak-ng treats any rate below 80 words per minute as 80.
MIN_WPM = 80
# A sentence takes espeak-ng milliseconds; this only stops a wedged process holding a job.
SENTENCE_TIMEOUT_S = 60.0


class EspeakError(RuntimeError):
    """espeak-ng is missing, does not know a voice, or failed on a sentence."""


def voice_language(voice: str) -> str:
    """The ISO language of an espeak-ng voice name: ``pt-br`` -> ``pt``, ``es-419`` -> ``es``."""
    return voice.split("-")[0].lower()


@dataclass(frozen=True)
class EspeakEngine:
    binary: str
    voice: str
    wpm: int
    sample_rate_hz: int
    engine: str = "espeak"

    @property
    def name(self) -> str:
        """Served as ``espeak-<voice>``, so it cannot be mistaken for a neural voice."""
        return f"espeak-{self.voice}"

    @property
    def languages(self) -> list[str]:
        """ISO codes this voice speaks."""
        return [voice_language(self.voice)]

    def count_sentences(self, text: str) -> int:
        """How many chunks ``synthesize`` will yield for ``text``."""
        return len(split_sentences(text, voice_language(self.voice)))

    def synthesize(self, text: str, speed: float) -> Iterator[bytes]:
        """16-bit mono PCM at ``sample_rate_hz``, one espeak-ng run per sentence, lazily."""
        wpm = max(MIN_WPM, round(self.wpm * speed))
        for sentence in split_sentences(text, voice_language(self.voice)):
            pcm, _ = speak(self.binary, self.voice, wpm, sentence)
            yield pcm


def speak(binary: str, voice: str, wpm: int, text: str) -> tuple[bytes, int]:
    """One espeak-ng run: the PCM and sample rate of ``text`` spoken by ``voice``."""
    # Text goes in on stdin: as an argument, a sentence starting with "-" would be an option.
    command = [binary, "--stdout", "-b", "1", "-v", voice, "-s", str(wpm)]
    try:
        done = subprocess.run(
            command, input=text.encode(), capture_output=True, timeout=SENTENCE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise EspeakError(f"espeak-ng took over {SENTENCE_TIMEOUT_S:.0f}s on one sentence") from exc
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise EspeakError(f"espeak-ng voice {voice!r}: {reason}")
    return pcm_of_wav(done.stdout)


def pcm_of_wav(data: bytes) -> tuple[bytes, int]:
    """The samples and rate of espeak-ng's WAV (its header gives no length: it streams)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise EspeakError("espeak-ng wrote audio that is not 16-bit mono")
        return wav.readframes(len(data)), wav.getframerate()


def find_binary() -> str:
    """The espeak-ng executable, or a load error that says how to install it."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise EspeakError(
            "TTS_ENGINE=espeak needs the espeak-ng program: apt-get install espeak-ng"
        )
    return binary


def espeak_voices(settings: TtsSettings) -> list[str]:
    """The voices listed in ``TTS_ESPEAK_VOICE`` (comma-separated), in order, once each."""
    voices = [v.strip().lower() for v in settings.espeak_voice.split(",") if v.strip()]
    if not voices:
        raise EspeakError("TTS_ESPEAK_VOICE is empty: name at least one voice, e.g. pt-br")
    return list(dict.fromkeys(voices))


def installed(binary: str, kind: str) -> set[str]:
    """Names espeak-ng lists for ``--voices=<kind>``: languages ("pt-br") or variants ("f3")."""
    listing = subprocess.run(
        [binary, f"--voices={kind}" if kind else "--voices"],
        capture_output=True,
        text=True,
        timeout=SENTENCE_TIMEOUT_S,
        check=True,
    ).stdout.splitlines()[1:]  # below the header
    columns = [line.split() for line in listing if len(line.split()) >= 5]
    if kind == "variant":  # the file column: "!v/f3"
        return {cols[4].rsplit("/", 1)[-1].lower() for cols in columns}
    return {cols[1].lower() for cols in columns}


def check_voice(voice: str, languages: set[str], variants: set[str]) -> None:
    """Refuse a voice espeak-ng does not list: it would silently fall back to a near one."""
    language, _, variant = voice.partition("+")
    if language not in languages or (variant and variant not in variants):
        raise EspeakError(
            f"TTS_ESPEAK_VOICE: espeak-ng has no voice {voice!r} "
            "(`espeak-ng --voices` lists languages, `--voices=variant` the +variants)"
        )


def load_espeak(settings: TtsSettings) -> list[EspeakEngine]:
    """One engine per configured voice; each is checked, and speaks a word to learn its rate."""
    binary = find_binary()
    languages, variants = installed(binary, ""), installed(binary, "variant")
    engines = []
    for voice in espeak_voices(settings):
        check_voice(voice, languages, variants)
        _, rate = speak(binary, voice, settings.espeak_wpm, "ok")
        engines.append(EspeakEngine(binary, voice, settings.espeak_wpm, rate))
    return engines
