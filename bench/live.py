"""Benchmark: live captions at 1× real time, PyParrot vs wyoming-faster-whisper and WhisperLive.

``python -m bench.live [--quick] [--out PATH]``

The lecture clip is streamed at real-time pace (100 ms chunks) by 1, 2, 4 and 8 sessions at
once to each system: PyParrot (``/ws/converse`` on the real gateway, with 1 and then 2
``services.stt`` workers), wyoming-faster-whisper and WhisperLive, all running the bundled
tiny.en with int8, beam 1 on 2 CPU threads per model call (PyParrot's STT workers take 2
calls at once between them, their default: 1 worker 2, 2 workers one each; ``--stt-threads``
and ``--stt-calls`` set them per worker). PyParrot's sessions run over ``/ws/converse`` and,
as a second system at each step, over WebRTC (``POST /offer``, Opus; ``bench/live_webrtc.py``).
Figures (``live_score``): speech → text per word, utterance onset → first text, end of
utterance → final, end of audio → last final, final WER; the report gives each as PyParrot,
peer and ratio. Quick mode: one session, one worker, PyParrot only. The figures'
definitions are in ``bench/live_score.py``.
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis

from bench import DEFAULT_REPORT, live_clients, live_webrtc, machine, whisperlive
from bench.live_clip import LECTURE, Clip, Offline, load_clip, spoken_clip, transcribe_offline
from bench.live_score import Scores, Trace, score
from bench.live_tap import Job, Tap
from bench.report import write_section
from bench.stack import Stack, http_ok, wait_until
from bench.wyoming import ready as wyoming_ready
from bench.wyoming import spawn_peer, tiny_en_dir
from pyparrot import redis_server
from shared import streams

PYPARROT, WYOMING, WHISPERLIVE = "PyParrot", "wyoming-faster-whisper", "WhisperLive"
WEBSOCKET, WEBRTC = "websocket", "webrtc"  # PyParrot's transports
GATEWAY_ID = "bench-live"
STT_ENV = {"STT_MODEL": "tiny.en", "STT_COMPUTE_TYPE": "int8", "STT_BEAM_SIZE": "1"}
# Model threads per call, as each peer's one model has them; PyParrot's STT workers take CALLS
# calls at once between them (a worker's default: 2 × 2 threads on this machine's 2 cores).
THREADS = 2
CALLS = 2
SETTLE_S = 1.0  # between batches, so one batch's stragglers do not load the next


@dataclass(frozen=True)
class LiveConfig:
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    workers: tuple[int, ...] = (1, 2)  # PyParrot STT workers, in increasing order
    peers: bool = True
    rounds: int = 2
    # Copies of the lecture in the clip. More than one makes every Whisper with temperature
    # fallback (wyoming-faster-whisper's, our finals') see "repetitive" text and decode it
    # six times over: tens of seconds, measuring that pathology instead of streaming.
    repeat: int = 1
    gap_s: float = 1.0
    chunk_s: float = 0.1
    whisperlive_wait_s: float = 20.0  # how long to wait for WhisperLive's last final
    timeout_s: float = 120.0
    cache: Path = whisperlive.DEFAULT_CACHE
    clip: Path = LECTURE  # a 16 kHz WAV with its .txt, or a .txt for Piper to read
    stt_threads: int = THREADS  # per model call of a PyParrot STT worker
    stt_calls: int | None = None  # model calls at once per worker (None: CALLS in all)
    webrtc: bool = True  # PyParrot over WebRTC too, beside /ws/converse


FULL = LiveConfig()
QUICK = LiveConfig(concurrency=(1,), workers=(1,), peers=False, rounds=1)


@dataclass(frozen=True)
class Batch:
    """``concurrency`` sessions streamed at once to one system."""

    system: str
    workers: int  # PyParrot's STT workers (0 for a peer)
    concurrency: int
    traces: list[Trace]
    scores: list[Scores]
    jobs: list[Job] = field(default_factory=list)  # PyParrot's STT jobs, from the tap
    transport: str = WEBSOCKET  # PyParrot's

    @property
    def label(self) -> str:
        if self.system != PYPARROT:
            return self.system
        over = " over WebRTC" if self.transport == WEBRTC else ""
        return f"{PYPARROT}{over}, {self.workers} STT worker{'s' if self.workers > 1 else ''}"


@dataclass(frozen=True)
class LiveResult:
    config: LiveConfig
    clip: Clip
    offline: Offline
    batches: list[Batch]


def _progress(message: str) -> None:
    print(f"bench live: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Shape:
    """One PyParrot STT worker's share of the threads: calls at once × threads per call."""

    calls: int
    threads: int
    model: str = "tiny.en"

    @property
    def suffix(self) -> str:
        return f"{self.calls}x{self.threads}-{self.model}"

    def describe(self) -> str:
        calls = f"{self.calls} call{'s' if self.calls > 1 else ''}"
        return f"{calls} × {self.threads} thread{'s' if self.threads > 1 else ''}"


def _spawn_stt(stack: Stack, number: int, shape: Shape) -> None:
    env = STT_ENV | {"STT_MODEL": shape.model, "STT_CPU_THREADS": str(shape.threads)}
    env["STT_CONCURRENCY"] = str(shape.calls)
    stack.spawn(f"stt-{number}-{shape.suffix}", ["-m", "services.stt"], env)


def _stt_workers(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(1 for _ in client.scan_iter(streams.heartbeat("stt", "*")))
    finally:
        client.close()


def start_gateway(stack: Stack, settings: dict[str, str] | None = None) -> str:
    """The gateway (``settings``: extra environment); its ``/ws/converse`` URL."""
    port = redis_server.free_port()
    env = {"GATEWAY_PORT": str(port), "GATEWAY_INSTANCE_ID": GATEWAY_ID, **(settings or {})}
    stack.spawn("gateway", ["-m", "services.gateway"], env)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), stack.children, 180.0)
    return f"ws://127.0.0.1:{port}/ws/converse"


def worker_shape(config: LiveConfig, workers: int) -> Shape:
    """Each of ``workers`` workers' calls and threads: together they take CALLS at once."""
    calls = config.stt_calls or max(1, CALLS // workers)
    return Shape(calls, config.stt_threads)


def set_stt_workers(stack: Stack, total: int, shape: Shape) -> None:
    """``total`` live STT workers of that shape (heartbeat = model loaded): more are added,
    or, if the shape changes, all are replaced."""
    running = [c for c in stack.children if c.name.startswith("stt-") and c.running()]
    if running and not running[0].name.endswith(f"-{shape.suffix}"):
        for child in running:
            child.stop()
            stack.children.remove(child)  # an exit the stack must not report as a crash
        wait_until(lambda: _stt_workers(stack.redis_url) == 0, stack.children, 30.0)
    for number in range(_stt_workers(stack.redis_url) + 1, total + 1):
        _spawn_stt(stack, number, shape)
    wait_until(lambda: _stt_workers(stack.redis_url) >= total, stack.children, 180.0)


def start_wyoming(stack: Stack) -> int:
    """wyoming-faster-whisper as ``bench.wyoming`` starts it (tiny.en int8 beam 1, 2 threads)."""
    port = redis_server.free_port()
    spawn_peer(stack, tiny_en_dir(), port)
    return port


Session = Callable[[], Awaitable[Trace]]


async def _sessions(system: str, count: int, session: Session) -> list[Trace]:
    """``count`` sessions at once; one that raises becomes a trace with its error."""
    results = await asyncio.gather(*(session() for _ in range(count)), return_exceptions=True)
    traces = []
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # Ctrl-C or a cancellation: stop the run, not just this session
        if isinstance(result, BaseException):
            trace = Trace(system)
            trace.errors.append(f"{type(result).__name__}: {result}")
            traces.append(trace)
        else:
            traces.append(result)
    return traces


async def _pyparrot_batch(
    url: str, redis_url: str, clip: Clip, config: LiveConfig, count: int, transport: str
) -> tuple[list[Trace], list[Job]]:
    tap = Tap(redis_url, streams.jobs("stt", "tiny.en"), streams.replies(GATEWAY_ID))
    await tap.start()
    name = PYPARROT

    def session() -> Awaitable[Trace]:
        if transport == WEBRTC:
            base = url.replace("ws://", "http://").removesuffix("/ws/converse")
            return live_webrtc.session(base, clip, config.timeout_s, name)
        return live_clients.pyparrot(url, clip, config.chunk_s, config.timeout_s, name)

    traces = await _sessions(name, count, session)
    return traces, await tap.stop()


def _batch(batch: Batch, result: LiveResult) -> Batch:
    """``batch`` scored, with a line of progress."""
    traces, count = batch.traces, batch.concurrency
    scores = [score(t, result.offline, result.clip.reference) for t in traces if t.timeline]
    done = sum(s.completed for s in scores)
    lags = sorted(s.end_to_final_s for s in scores if s.end_to_final_s is not None)
    shown = ", ".join(f"{lag:.2f}" for lag in lags) or "none"
    _progress(f"{batch.label} ×{count}: {done}/{count} completed; "
              f"end of audio → last final (s): {shown}")  # fmt: skip
    for trace, scored in zip(traces, scores, strict=False):
        if scored.wer > 0:
            _progress(f"  final text at WER {scored.wer:.3f}: {trace.final_text!r}")
    errors = {e for t in traces for e in t.errors}
    if errors:
        _progress(f"  errors: {sorted(errors)[:3]}")
    return replace(batch, scores=scores)


def _measure(stack: Stack, config: LiveConfig, result: LiveResult) -> None:
    """Every batch, PyParrot's interleaved with the peers' at each concurrency."""
    first = config.workers[0]
    set_stt_workers(stack, first, worker_shape(config, first))  # the gateway waits for one
    url = start_gateway(stack)
    peer_ports: dict[str, int] = {}
    if config.peers:
        peer_ports[WYOMING] = start_wyoming(stack)
        model = tiny_en_dir()
        child, peer_ports[WHISPERLIVE] = whisperlive.spawn(
            stack, config.cache, model, max(config.concurrency)
        )
        wait_until(lambda: asyncio.run(wyoming_ready(peer_ports[WYOMING])), stack.children, 180)
        whisperlive.wait_listening(child, peer_ports[WHISPERLIVE])
    for phase, workers in enumerate(config.workers):
        set_stt_workers(stack, workers, worker_shape(config, workers))
        for count in config.concurrency:
            for _round in range(config.rounds):
                for transport in (WEBSOCKET, WEBRTC) if config.webrtc else (WEBSOCKET,):
                    traces, jobs = asyncio.run(
                        _pyparrot_batch(url, stack.redis_url, result.clip, config, count, transport)
                    )
                    batch = Batch(PYPARROT, workers, count, traces, [], jobs, transport)
                    result.batches.append(_batch(batch, result))
                    time.sleep(SETTLE_S)
                if phase == 0:
                    _peer_batches(peer_ports, config, count, result)


def _peer_batches(
    ports: dict[str, int], config: LiveConfig, count: int, result: LiveResult
) -> None:
    clip, chunk_s = result.clip, config.chunk_s
    sessions: dict[str, Session] = {}
    if WYOMING in ports:
        port = ports[WYOMING]
        sessions[WYOMING] = lambda: live_clients.wyoming(port, clip, chunk_s, config.timeout_s)
    if WHISPERLIVE in ports:
        wl_port, model, wait_s = ports[WHISPERLIVE], tiny_en_dir(), config.whisperlive_wait_s
        sessions[WHISPERLIVE] = lambda: live_clients.whisperlive(
            wl_port, clip, chunk_s, wait_s, model
        )
    for system, session in sessions.items():
        traces = asyncio.run(_sessions(system, count, session))
        result.batches.append(_batch(Batch(system, 0, count, traces, []), result))
        time.sleep(SETTLE_S)


def run(config: LiveConfig) -> LiveResult:
    """Transcribe the clip offline (for word times and the WER baseline), then stream it."""
    path = config.clip
    if path.suffix == ".txt":
        path = spoken_clip(path, config.cache)
    clip = load_clip(path, config.repeat, config.gap_s)
    offline = transcribe_offline(clip)
    _progress(f"{clip.name}: {clip.duration_s:.1f} s, {len(offline.words)} words; offline "
              f"WER {offline.wer:.3f} in {offline.seconds:.2f} s")  # fmt: skip
    result = LiveResult(config, clip, offline, [])
    with Stack() as stack:
        _measure(stack, config, result)
    return result


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 session, 1 worker, no peers")
    parser.add_argument("--out", type=Path, help="markdown file (default: docs/BENCHMARKS.md; "
                        "none in quick mode)")  # fmt: skip
    parser.add_argument("--rounds", type=int, help="batches per system and concurrency")
    parser.add_argument("--repeat", type=int, help="copies of the lecture in the clip")
    parser.add_argument("--no-peers", action="store_true", help="PyParrot only")
    parser.add_argument("--no-webrtc", action="store_true", help="PyParrot over its socket only")
    parser.add_argument("--sessions", help="concurrent sessions to run, e.g. 1,4")
    parser.add_argument(
        "--clip",
        type=Path,
        help="a 16 kHz WAV with its .txt, or a .txt "
        "that the bundled Piper voice reads (bench/data/lecture_long.txt)",
    )
    parser.add_argument("--workers", help="PyParrot STT worker counts, e.g. 1,2")
    parser.add_argument(
        "--stt-threads", type=int, help=f"threads per STT model call (default {THREADS})"
    )
    parser.add_argument(
        "--stt-calls",
        type=int,
        help=f"STT model calls at once per worker (default: {CALLS} ÷ workers)",
    )
    return parser


def config_from(args: argparse.Namespace) -> LiveConfig:
    """The preset, with the command line's overrides."""
    config = QUICK if args.quick else FULL
    if args.rounds is not None:
        config = replace(config, rounds=args.rounds)
    if args.repeat is not None:
        config = replace(config, repeat=args.repeat)
    if args.no_peers:
        config = replace(config, peers=False)
    if args.no_webrtc:
        config = replace(config, webrtc=False)
    if args.clip:
        config = replace(config, clip=args.clip)
    if args.sessions:
        config = replace(config, concurrency=tuple(int(n) for n in args.sessions.split(",")))
    if args.workers:
        config = replace(config, workers=tuple(sorted(int(n) for n in args.workers.split(","))))
    if args.stt_threads:
        config = replace(config, stt_threads=args.stt_threads)
    if args.stt_calls:
        config = replace(config, stt_calls=args.stt_calls)
    return config


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    from bench import live_report  # the report imports this module

    config = config_from(args)
    out = args.out or (None if args.quick else DEFAULT_REPORT)
    mode = " (quick mode: for orientation only)" if args.quick else ""
    command = " ".join(["python -m bench.live", *argv])
    header = f"{machine.describe().markdown()}\nCommand: `{command}`{mode}."
    body = live_report.render(run(config), header)
    print(body, flush=True)
    if out is not None:
        write_section(out, "live", body)
        _progress(f"wrote section 'live' to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
