"""Benchmark 1: a 30 s file through HTTP → gateway → bus → STT worker vs an in-process call.

All paths run the same bundled tiny.en with the same settings (``STT_THREADS`` = 2 threads
per call, one call at a time in the worker too), one transcription at
a time, interleaved round by round in rotating order so machine noise hits each alike;
the gateway and the worker are the real processes (``python -m
services.gateway``, ``python -m services.stt``). The bus-only path submits the job through
a ``Bridge`` in this process, to tell the bus from the HTTP layer.
"""

import asyncio
import io
import statistics
import sys
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry

from bench import REPO, scrape
from bench.stack import Stack, http_ok, wait_until
from bench.stats import percentile
from pyparrot import redis_server
from services.gateway.bridge import Bridge
from services.gateway.metrics import gateway_metrics
from shared import bus, streams
from shared.messages import TranscribeRequest, Transcript

SPEECH_S = 30.0
RATE_HZ = 16_000
SAMPLE_BYTES = 2
PIECES = ("en_lecture.wav", "en_short.wav", "en_lecture.wav")
STT_THREADS = 2  # per call, on every path; the record since 2026-11-21
IN_PROCESS, HTTP, BUS = "in-process", "http", "bus"
Path = Callable[[], tuple[float, str]]  # one transcription: (seconds, text)


@dataclass(frozen=True)
class SpeechConfig:
    rounds: int
    warmup: int = 1
    # Off by default: this file says the lecture twice, so every decode of its 30 s window
    # looks "too repetitive" (zlib ratio 2.64 > 2.4) and Whisper re-decodes it at five more
    # temperatures with five samples each: ~10x the time, and random, which buries the bus.
    temperature_fallback: bool = False


@dataclass(frozen=True)
class SpeechResult:
    config: SpeechConfig
    upload_bytes: int
    series: dict[str, list[float]]  # path -> seconds per transcription, one per round
    same_text: bool
    layers: scrape.Layers

    def ratio(self, path: str, q: float = 50) -> float:
        """The ``q``-th percentile of ``path`` over that of the in-process baseline."""
        return percentile(self.series[path], q) / percentile(self.series[IN_PROCESS], q)

    def paired_ratio(self, path: str) -> float:
        """Median over rounds of ``path`` / in-process in the same round."""
        pairs = zip(self.series[path], self.series[IN_PROCESS], strict=True)
        return statistics.median(p / b for p, b in pairs)


def speech_pcm() -> bytes:
    """en_lecture + en_short + en_lecture (16 kHz mono s16), cut or padded to 30.0 s."""
    pcm = bytearray()
    for name in PIECES:
        with wave.open(str(REPO / "tests" / "data" / name), "rb") as wav:
            if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (16_000, 1, 2):
                raise ValueError(f"{name}: expected 16 kHz mono 16-bit")
            pcm += wav.readframes(wav.getnframes())
    size = int(SPEECH_S * RATE_HZ) * SAMPLE_BYTES
    return bytes(pcm[:size].ljust(size, b"\0"))


def wav_bytes(pcm: bytes) -> bytes:
    """``pcm`` (16 kHz mono s16) as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_BYTES)
        wav.setframerate(RATE_HZ)
        wav.writeframes(pcm)
    return out.getvalue()


def _progress(message: str) -> None:
    print(f"bench speech: {message}", file=sys.stderr, flush=True)


def _in_process_path(config: SpeechConfig, request: TranscribeRequest) -> tuple[Path, str]:
    """The baseline: the worker's own ``transcribe()`` on a model loaded here."""
    # Imported here so the bus benchmark alone never loads faster-whisper.
    from services.stt.handler import transcribe
    from services.stt.model import load_model
    from services.stt.settings import SttSettings

    settings = SttSettings(
        temperature_fallback=config.temperature_fallback, cpu_threads=STT_THREADS, concurrency=1
    )
    model = load_model(settings)

    def run() -> tuple[float, str]:
        started = time.perf_counter()
        text = transcribe(model, settings, request).text
        return time.perf_counter() - started, text

    return run, model.name


def _http_path(client: httpx.Client, upload: bytes) -> Path:
    def run() -> tuple[float, str]:
        started = time.perf_counter()
        response = client.post(
            scrape.UPLOAD_ROUTE,
            files={"file": ("speech.wav", upload, "audio/wav")},
            data={"model": "whisper-1", "response_format": "json"},
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, str(response.json()["text"])

    return run


@contextmanager
def _bus_path(url: str, model: str, request: TranscribeRequest) -> Iterator[Path]:
    """Submit straight to the worker's stream with a Bridge on a private event loop."""
    loop = asyncio.new_event_loop()
    client = bus.client(url)
    bridge = Bridge(client, "bench-speech", gateway_metrics(CollectorRegistry()))
    loop.run_until_complete(bridge.start())
    stream = streams.jobs("stt", model)

    def run() -> tuple[float, str]:
        started = time.perf_counter()
        job = bridge.job(request, 300.0)
        reply = loop.run_until_complete(bridge.request(stream, job, "stt", 300.0))
        elapsed = time.perf_counter() - started
        if not isinstance(reply.payload, Transcript):
            raise RuntimeError(f"stt answered {reply.payload!r}")
        return elapsed, reply.payload.text

    try:
        yield run
    finally:
        loop.run_until_complete(bridge.stop())
        loop.run_until_complete(client.aclose())
        loop.close()


def _rounds(paths: dict[str, Path], config: SpeechConfig) -> tuple[dict[str, list[float]], bool]:
    """Run every path once per round, starting each round one path later (so no path always
    follows the same one); also whether every text matched."""
    series: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    same = True
    for index in range(config.rounds):
        texts = set()
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed, text = paths[name]()
            series[name].append(elapsed)
            texts.add(text)
        same = same and len(texts) == 1
        times = ", ".join(f"{name} {s[-1]:.3f} s" for name, s in series.items())
        _progress(f"round {index + 1}/{config.rounds}: {times}")
    return series, same


def run(config: SpeechConfig) -> SpeechResult:
    """Measure ``config.rounds`` interleaved rounds of the three paths."""
    pcm = speech_pcm()
    upload = wav_bytes(pcm)
    request = TranscribeRequest(audio=pcm)
    in_process, model = _in_process_path(config, request)
    with Stack() as stack:
        worker_port, gateway_port = redis_server.free_port(), redis_server.free_port()
        worker_env = {
            "STT_METRICS_PORT": str(worker_port),
            "STT_TEMPERATURE_FALLBACK": str(config.temperature_fallback).lower(),
            "STT_CPU_THREADS": str(STT_THREADS),
            "STT_CONCURRENCY": "1",
        }
        worker = stack.spawn("stt", ["-m", "services.stt"], worker_env)
        gateway_env = {"GATEWAY_PORT": str(gateway_port)}
        gateway = stack.spawn("gateway", ["-m", "services.gateway"], gateway_env)
        base = f"http://127.0.0.1:{gateway_port}"
        wait_until(lambda: http_ok(f"{base}/ready"), [worker, gateway], 120.0)
        _progress(f"gateway ready; {config.rounds} rounds after {config.warmup} warm-up")
        metrics = {"gateway": f"{base}/metrics", "worker": f"http://127.0.0.1:{worker_port}"}
        with (
            httpx.Client(base_url=base, timeout=300) as client,
            _bus_path(stack.redis_url, model, request) as over_bus,
        ):
            paths = {IN_PROCESS: in_process, HTTP: _http_path(client, upload), BUS: over_bus}
            for _ in range(config.warmup):
                for path in paths.values():
                    path()
            probe = scrape.LayerProbe(metrics)
            series, same = _rounds({**paths, HTTP: probe.wrap(paths[HTTP])}, config)
    return SpeechResult(config, len(upload), series, same, probe.mean())
