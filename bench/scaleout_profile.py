"""Where a consumer's and a producer's CPU goes, sampled with py-spy during a busy window.

py-spy (``pip install py-spy``) samples a live process from outside without stopping it
(``--nonblocking``), so the profile shows the loop as it runs, not under a tracer. Each
sample's stack is put in one bucket by its innermost frame that belongs to a known layer
(the envelope, redis-py, metrics, the thread hop, asyncio, our own loop code).
"""

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.scaleout_procs import Children

# (bucket, substrings of a frame "function (file:line)"): the first match from the leaf up
# wins, and within one frame the first bucket listed, so socket I/O is named before asyncio.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "envelope: build / msgpack / validate (shared.messages, pydantic, uuid)",
        ("(shared/messages.py", "(pydantic", "(uuid.py", "(msgpack/"),
    ),
    (
        "socket send/recv (asyncio transports, the syscalls)",
        ("(asyncio/selector_events.py", "(asyncio/transports.py", "(asyncio/streams.py"),
    ),
    ("redis-py: encode commands, parse replies", ("(redis/", "(hiredis")),
    ("metrics (prometheus_client)", ("(prometheus_client/",)),
    (
        "handler thread hop (shared.threads, executor, threading)",
        ("(shared/threads.py", "(concurrent/futures/", "(threading.py", "(queue.py"),
    ),
    ("the stand-in handler itself", ("handle (bench/scaleout_worker.py", "(bench/standin.py")),
    (
        "worker loop / Bridge own code (shared.worker, gateway.bridge, shared.bus)",
        ("(shared/worker.py", "(services/gateway/bridge.py", "(shared/bus.py"),
    ),
    ("asyncio: tasks, timeouts, queues, the event loop", ("(asyncio/", "(selectors.py")),
    ("the benchmark's own requester", ("(bench/scaleout_producer.py",)),
)
# Leaf frames where a thread waits rather than works (py-spy cannot always tell, sampling
# without stopping the process): epoll with nothing ready, an idle executor thread, the
# stand-in handler's sleep.
IDLE_LEAVES = (
    "EpollSelector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "model_call (bench/scaleout_worker.py",
)
IDLE = "idle (waiting in epoll, for work, or in the stand-in's sleep)"
OTHER = "other"


@dataclass
class Spy:
    role: str
    process: subprocess.Popen[bytes]
    out: Path


def binary() -> str:
    """py-spy next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if not found:
        raise FileNotFoundError("py-spy is not installed: pip install py-spy")
    return found


def start(children: Children, seconds: float) -> list[Spy]:
    """Sample the first worker and the first producer for ``seconds`` (none without py-spy)."""
    try:
        spy = binary()
    except FileNotFoundError as exc:
        print(f"bench scaleout: no profile: {exc}", file=sys.stderr)
        return []
    spies = []
    folder = Path(tempfile.mkdtemp(prefix="pyparrot-spy-"))
    for role in ("worker", "producer"):
        child = children.of(role)[0]
        out = folder / f"{role}.txt"
        cmd = [spy, "record", "-p", str(child.pid), "-d", str(max(1, round(seconds)))]
        cmd += ["-f", "raw", "-o", str(out), "--nonblocking", "-r", "200"]
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        spies.append(Spy(role, process, out))
    return spies


def bucket(stack: str) -> str:
    """The layer a sampled stack (frames root first, ``;``-separated) is spent in."""
    frames = stack.split(";")
    if frames[-1].startswith(IDLE_LEAVES):
        return IDLE
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(needle in frame for needle in needles):
                return name
    return OTHER


def shares(collapsed: str) -> list[tuple[str, float]]:
    """Each bucket's share of the samples in py-spy's raw (collapsed) output, largest first."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[bucket(stack)] += int(count)
    counts.pop(IDLE, None)
    total = sum(counts.values())
    return [(name, n / total) for name, n in counts.most_common()] if total else []


def finish(spies: list[Spy]) -> dict[str, list[tuple[str, float]]]:
    """Wait for the samplers; each role's bucket shares (empty if py-spy failed)."""
    where = {}
    for spy in spies:
        _out, err = spy.process.communicate(timeout=60)
        if spy.process.returncode or not spy.out.is_file():
            print(
                f"bench scaleout: py-spy on the {spy.role} failed: {err.decode()[-300:]}",
                file=sys.stderr,
            )
            continue
        where[spy.role] = shares(spy.out.read_text())
    if spies:
        print(f"bench scaleout: py-spy stacks kept in {spies[0].out.parent}", file=sys.stderr)
    return where
