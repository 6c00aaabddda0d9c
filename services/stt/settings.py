"""STT worker settings (prefix ``STT_``)."""

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings


class SttSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="STT_", extra="ignore", populate_by_name=True)

    model: str = Field(
        "tiny.en",
        description="'tiny.en' and 'base' are bundled; any CTranslate2 Whisper directory works",
    )
    model_cache_dir: str = Field(
        "~/.cache/pyparrot/models", description="where bundled split models are assembled"
    )
    compute_type: str = Field("int8", description="CTranslate2 compute type")
    cpu_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="threads per model call: a call alone (a live final in a pause) then "
        "uses both cores of a 2-core machine (measured in docs/BENCHMARKS.md)",
    )
    concurrency: int = Field(
        2,
        ge=1,
        le=64,
        description="model calls at once, each on STT_CPU_THREADS threads, each with its own "
        "model replica: with 2, a live final need not wait behind a partial (the two share "
        "the cores when both run; measured in docs/BENCHMARKS.md)",
    )
    beam_size: int = Field(1, ge=1, le=10, description="beam width; 1 is greedy")
    vad_filter: bool = Field(True, description="skip non-speech with the bundled Silero VAD")
    temperature_fallback: bool = Field(
        True, description="re-decode at higher temperature when a final decode looks bad"
    )
    partial_window_s: float = Field(
        15.0,
        ge=0,
        le=30,
        description="encoder window for live partials shorter than it (Whisper pads every "
        "input to 30 s, and a shorter window encodes faster; 0 or 30 keeps the full window)",
    )
    live_final_window_s: float = Field(
        0.0,
        ge=0,
        le=30,
        description="the same for live finals (0: Whisper's full 30 s, as file "
        "transcriptions always use): shorter windows are faster but changed words "
        "(docs/BENCHMARKS.md)",
    )
    live_skip_tail_s: float = Field(
        1.0,
        ge=0,
        le=30,
        description="a live job's window after its first that holds less audio than this is "
        "not decoded: the pause after the last word, which faster-whisper's word timings "
        "decode once more and hear made-up words in",
    )
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="where the model runs")
    drop_no_speech_prob: float = Field(
        0.4,
        ge=0,
        le=1,
        description="a live segment this likely to be silence, and decoded with an average "
        "log-probability under STT_DROP_LOGPROB, is dropped as a hallucination (file jobs "
        "keep what Whisper keeps)",
    )
    drop_logprob: float = Field(-0.6, le=0, description="see STT_DROP_NO_SPEECH_PROB")
    drop_compression_ratio: float = Field(
        2.4,
        gt=1,
        description="a segment whose decoding window's text compresses (zlib, as Whisper "
        "measures it) better than this repeats itself: a decoding loop, dropped (Whisper's "
        "own threshold)",
    )
    language_confidence: float = Field(
        0.7,
        ge=0,
        le=1,
        description="below this detection probability, candidate languages are re-scored "
        "by decoding (multilingual models only; 0 trusts Whisper's first guess)",
    )
    language_candidates: list[str] = Field(
        default_factory=lambda: ["en", "es", "pt", "de", "fr", "it"],
        description="languages this deployment expects: an unsure detection is decided among "
        "them by decoding",
    )
