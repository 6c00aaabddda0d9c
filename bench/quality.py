"""Benchmark: accuracy of every path against the model called in-process.

``python -m bench quality [--quick] [--out PATH]``

The corpus (``bench/quality_corpus.py``) goes through the model called the plain way
(``bench/quality_reference.py``, the reference) and through a running PyParrot: HTTP file
upload, ``/v1/pipeline``, Wyoming (all with ``whisper-1``), and the live paths
(``/ws/converse`` at 1× and faster, WebRTC) on a subset, since they take real time. Word error
rates are deterministic (greedy decoding, the same audio): they decide; timings on a shared
machine only orient. Quick mode (CI) runs a small corpus and skips the model comparison.
"""

import asyncio
import pickle
import sys
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from bench import quality_corpus as qc
from bench import quality_paths as paths
from bench import quality_reference as reference
from bench.quality_corpus import Clip, Sample
from bench.quality_reference import Heard
from bench.quality_score import Score, score
from bench.stack import Stack, http_ok, wait_until
from bench.wyoming import ready as wyoming_ready
from pyparrot import redis_server

STT_WORKERS = {"tiny.en": "stt-tiny", "base": "stt-base"}  # the default stack's two models
LIVE_MODEL = "tiny.en"  # what whisper-1 live sessions are sent to (the gateway's default)
FILE_PATHS = ("http", "pipeline", "wyoming")
T = TypeVar("T")


@dataclass(frozen=True)
class QualityConfig:
    quick: bool
    conditions: tuple[str, ...]
    condition_clips: int  # real sentences varied under every condition
    real_sentences: int  # of the 12, spread over both speakers
    languages: tuple[str, ...]  # espeak-ng clips in these languages...
    languages_per: int  # ...this many each
    long_clips: bool  # the long clips, the conversation, synthetic and code-switched clips
    live_clips: int  # clean clips (shortest first) sent over the live paths
    live_speeds: tuple[float, ...] = (1.0, 4.0)
    webrtc_clips: int = 1
    compare_models: bool = True  # HTTP with tiny.en and base named explicitly, too


FULL = QualityConfig(False, tuple(qc.FULL_CONDITIONS), 2, 12, ("es", "pt", "de", "fr"), 1, True, 6)
# Quick (CI): a few clips, a few conditions; no French, which base mishears as other
# languages and re-decodes for minutes.
QUICK = QualityConfig(
    True, tuple(qc.QUICK_CONDITIONS), 1, 2, ("es", "de"), 1, False, 1, compare_models=False
)


@dataclass(frozen=True)
class Row:
    sample: Sample
    path: str  # "in-process", "http", "pipeline", "wyoming", "live 1x", "webrtc", ...
    model: str  # the model that answered (the reference is that model in-process)
    heard: Heard
    score: Score
    reference: Score  # the in-process model's score on the same sample


@dataclass
class QualityResult:
    config: QualityConfig
    rows: list[Row] = field(default_factory=list)
    references: "References" = field(default_factory=lambda: References())
    switch_languages: tuple[str, ...] = ()  # the code-switched clip's segment languages
    dropped: int = 0  # uploads the gateway closed without an answer (then retried)
    failures: dict[str, int] = field(default_factory=dict)  # per path: calls that failed


def _progress(message: str) -> None:
    print(f"bench quality: {message}", file=sys.stderr, flush=True)


def corpus(config: QualityConfig) -> list[Sample]:
    """The clips, clean, and some of them under every condition."""
    real = qc.real_sentences()
    clips: list[Clip] = [*real[:: 12 // config.real_sentences], qc.lecture_32s()]
    clips += qc.languages(config.languages_per, config.languages)
    if config.long_clips:  # the rest: long clips, the conversation, synthetic, code-switching
        clips += [qc.real_conversation(), *qc.synthetic(), qc.code_switched()]
        clips += [qc.real_concatenated(real), qc.lecture_long(real)]
    varied = real[:: max(1, len(real) // config.condition_clips)][: config.condition_clips]
    return [*qc.variants(clips, ["clean"]), *qc.variants(varied, list(config.conditions))]


class References:
    """Each sample through a bundled model in-process, taken when a path first needs it."""

    def __init__(self) -> None:
        self.models: dict[str, object] = {}
        self.heard: dict[tuple[str, str], Heard] = {}  # (model, sample name)

    def get(self, model: str, sample: Sample) -> Heard:
        key = (model, sample.name)
        if key not in self.heard:
            if model not in self.models:
                self.models[model] = reference.load(model)
            self.heard[key] = reference.plain(self.models[model], sample)  # type: ignore[arg-type]
        return self.heard[key]


def _row(result: QualityResult, sample: Sample, path: str, model: str, heard: Heard) -> Row:
    ref = result.references.get(model, sample)
    truth = sample.clip.reference or ref.text  # no human reference: the model's own text
    row = Row(sample, path, model, heard, score(truth, heard.text), score(truth, ref.text))
    result.rows.append(row)
    return row


def start(stack: Stack) -> tuple[str, int]:
    """Redis, one worker per bundled model, and a gateway with Wyoming: the default stack's
    speech side. Returns the gateway's URL and Wyoming port."""
    for model, name in STT_WORKERS.items():
        stack.spawn(name, ["-m", "services.stt"], {"STT_MODEL": model})
    port, wyoming_port = redis_server.free_port(), redis_server.free_port()
    env = {"GATEWAY_PORT": str(port), "GATEWAY_WYOMING_PORT": str(wyoming_port)}
    stack.spawn("gateway", ["-m", "services.gateway"], env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/ready"), stack.children, 180.0)
    wait_until(lambda: asyncio.run(wyoming_ready(wyoming_port)), stack.children, 60.0)
    wait_until(lambda: _models_live(url), stack.children, 180.0)
    return url, wyoming_port


def _models_live(url: str) -> bool:
    served = httpx.get(f"{url}/v1/models", timeout=5).json()["data"]
    return set(STT_WORKERS) <= {m["id"] for m in served}


async def _attempt(result: QualityResult, path: str, call: Awaitable[T]) -> T | None:
    """One path's answer, or None (counted in the report) when it failed."""
    try:
        return await call
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        result.failures[path] = result.failures.get(path, 0) + 1
        _progress(f"{path} failed: {type(exc).__name__}: {exc}")
        return None


async def _files(result: QualityResult, url: str, wyoming_port: int, samples: list[Sample]) -> None:
    # A fresh connection per request: one the gateway drops costs only that request.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=paths.TIMEOUT_S, limits=limits) as client:
        for sample in samples:
            answer = await _attempt(result, "http", paths.http_file(client, sample, "whisper-1"))
            if answer is None:
                continue  # the other paths' reference is the model that answered here
            heard, served = answer
            _row(result, sample, "http", served, heard)
            if sample.clip.language == "en+de":
                result.switch_languages = tuple(dict.fromkeys(heard.languages))
            piped = await _attempt(result, "pipeline", paths.pipeline(client, sample, "whisper-1"))
            if piped is not None:
                _row(result, sample, "pipeline", served, piped)
            wyoming = paths.wyoming(wyoming_port, sample, "whisper-1")
            if (said := await _attempt(result, "wyoming", wyoming)) is not None:
                _row(result, sample, "wyoming", served, said)
            if result.config.compare_models:
                for model in STT_WORKERS:
                    if model == "base" or sample.clip.language == "en":
                        call = paths.http_file(client, sample, model)
                        if (named := await _attempt(result, f"http {model}", call)) is not None:
                            _row(result, sample, f"http {model}", model, named[0])
        _progress(f"file paths: {len(samples)} samples")


async def _live(result: QualityResult, url: str, samples: list[Sample]) -> None:
    clean = [s for s in samples if s.condition == "clean" and s.clip.language == "en"]
    chosen = sorted(clean, key=lambda s: (s.clip.reference == "", s.clip.duration_s))
    for index, sample in enumerate(chosen[: result.config.live_clips]):
        for speed in result.config.live_speeds:
            path = f"live {speed:g}x"
            if (heard := await _attempt(result, path, paths.live(url, sample, speed))) is not None:
                _row(result, sample, path, LIVE_MODEL, heard)
        if index < result.config.webrtc_clips:
            if (heard := await _attempt(result, "webrtc", paths.webrtc(url, sample))) is not None:
                _row(result, sample, "webrtc", LIVE_MODEL, heard)
    _progress("live paths done")


def _in_process(result: QualityResult, samples: list[Sample]) -> None:
    """The models alone (full mode): tiny.en on English, base on everything."""
    for sample in samples:
        for model in STT_WORKERS:
            if model == "base" or sample.clip.language == "en":
                heard = result.references.get(model, sample)
                _row(result, sample, f"in-process {model}", model, heard)
    _progress("in-process models done")


def run(config: QualityConfig) -> QualityResult:
    """Build the corpus, then run every path on a private stack against the references."""
    samples = corpus(config)
    _progress(f"corpus: {len(samples)} samples")
    result = QualityResult(config)
    if config.compare_models:
        _in_process(result, samples)
    with Stack() as stack:
        url, wyoming_port = start(stack)
        asyncio.run(_files(result, url, wyoming_port, samples))
        asyncio.run(_live(result, url, samples))
    result.dropped = paths.dropped[0]
    _keep(result)
    return result


def _keep(result: QualityResult) -> None:
    """The rows, pickled, so a report can be rendered again without re-running."""
    kept = Path(tempfile.mkdtemp(prefix="pyparrot-quality-")) / "result.pickle"
    result.references.models.clear()  # loaded models do not pickle
    kept.write_bytes(pickle.dumps(result))
    _progress(f"rows kept in {kept}")
