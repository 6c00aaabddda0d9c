"""Benchmark 4: scale-out simulation, ``python -m bench.scaleout [--quick] [--profile]``.

Stand-in workers (the real ``shared.worker`` loop under ``shared.multi``) whose handler
sleeps for a model-like time, 1 → 16 → 64 of them on one Redis, fed by producers that
submit through the gateway's own ``Bridge``. Throughput at each N, efficiency against N ×
the single worker, then the most jobs/s the bus carries with handlers that do nothing, and
where the CPU goes (the Python processes' and Redis's own). Every phase checks that every
job got exactly one reply: a throughput without that check would mean nothing.
"""

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field

import redis

from bench import machine, scaleout_profile
from bench.scaleout_procs import Children, Sample, sample
from bench.scaleout_producer import ProducerPlan, ProducerResult, Schedule, produce
from bench.scaleout_worker import WorkerPlan, serve
from bench.stack import Stack
from bench.standin import COMPONENT, GROUP
from bench.standin import stream as standin_stream
from shared import streams

PROCESSES, TASKS = "processes", "tasks"
ZERO = "zero-sleep"
TIMEOUT_S = 30.0
# Requests one producer keeps in flight. redis-py's asyncio pool holds at most 100
# connections and each in-flight submit takes one, so a Bridge with more requests than that
# submitting at once fails with MaxConnectionsError (reported by this benchmark).
MAX_REQUESTERS = 64


@dataclass(frozen=True)
class Layout:
    """How N workers are packed: ``loops`` worker loops per process, each ``concurrency``."""

    name: str
    workers: int  # N: jobs handled at once across all processes
    processes: int
    loops: int  # per process
    concurrency: int = 1  # per loop
    producers: int = 1
    requesters: int = 2  # per producer: requests kept in flight
    sleep_s: float = 0.0


@dataclass(frozen=True)
class ScaleConfig:
    sleep_ms: int = 300  # the shortest STT / MT model calls here (see the report)
    workers: tuple[int, ...] = (1, 16, 64)
    layouts: tuple[str, ...] = (PROCESSES, TASKS)
    loops_per_process: int = 16  # the TASKS layout
    warmup_s: float = 1.0
    measure_s: float = 8.0
    # the zero-sleep runs: (producer processes, consumer processes, consumer concurrency);
    # each producer keeps ZERO_REQUESTERS_PER_SLOT x concurrency requests in flight. At 32,
    # more jobs share each group commit (measured at 2 x 2, A/B twice: 5,255 / 5,126 jobs/s
    # vs 4,494 / 4,613 at 16).
    zero_grid: tuple[tuple[int, int, int], ...] = (
        (1, 1, 16), (1, 2, 16), (2, 2, 16), (2, 3, 16), (3, 3, 16), (2, 2, 32),
    )  # fmt: skip
    profile: bool = False


FULL = ScaleConfig(profile=True)
QUICK = ScaleConfig(layouts=(TASKS,), warmup_s=0.5, measure_s=2.5, zero_grid=((2, 2, 16),))
ZERO_REQUESTERS_PER_SLOT = 4  # per producer, per unit of consumer concurrency


@dataclass(frozen=True)
class Check:
    """Exactly-once bookkeeping of one phase, from the producers, the workers and Redis."""

    submitted: int
    answered: int
    once: int
    missing: int
    duplicated: int
    stray: int
    worker_done: int
    left_in_stream: int
    pending: int
    dead: int
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.submitted == self.once == self.answered == self.worker_done
            and self.missing == self.duplicated == self.stray == 0
            and self.left_in_stream == self.pending == self.dead == 0
            and not self.errors
        )


@dataclass(frozen=True)
class PhaseResult:
    layout: Layout
    window_s: float
    completions: int  # in the measured window
    throughput: float  # jobs/s
    latencies_s: list[float]
    used: Sample  # CPU and Redis command stats over the window
    check: Check
    where: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # py-spy shares


@dataclass(frozen=True)
class ScaleResult:
    config: ScaleConfig
    scaling: list[PhaseResult]
    zero: list[PhaseResult]
    profiled: list[PhaseResult] = field(default_factory=list)  # best zero-sleep runs, py-spied


def _progress(message: str) -> None:
    print(f"bench scaleout: {message}", file=sys.stderr, flush=True)


def sleeping_layout(kind: str, n: int, config: ScaleConfig) -> Layout:
    """N one-job-at-a-time workers: one per process, or ``loops_per_process`` per process."""
    loops = 1 if kind == PROCESSES else min(n, config.loops_per_process)
    # Two requests per worker (one being handled, one waiting) so no worker idles, spread
    # over producers: past ~100 at once, one Bridge's redis-py pool refuses more (below).
    producers = math.ceil(2 * n / MAX_REQUESTERS)
    sleep_s = config.sleep_ms / 1000
    requesters = math.ceil(2 * n / producers)
    return Layout(kind, n, math.ceil(n / loops), loops, 1, producers, requesters, sleep_s)


def zero_layout(producers: int, consumers: int, concurrency: int) -> Layout:
    """Handlers that return at once: consumer processes of one loop at high concurrency."""
    requesters = ZERO_REQUESTERS_PER_SLOT * concurrency
    return Layout(
        ZERO, consumers * concurrency, consumers, 1, concurrency, producers, requesters, 0.0
    )


def _rate(done_s: list[float]) -> float:
    """Completions per second over the window: intervals between the first and last
    completion, so a short window of slow jobs does not round to whole jobs."""
    done_s = sorted(done_s)
    return (len(done_s) - 1) / (done_s[-1] - done_s[0]) if len(done_s) > 1 else 0.0


def _check(client: redis.Redis, stream: str, results: list[ProducerResult], done: int) -> Check:
    pending = client.xpending(stream, GROUP)["pending"]  # type: ignore[index]
    return Check(
        submitted=sum(r.submitted for r in results),
        answered=sum(r.answered for r in results),
        once=sum(r.once for r in results),
        missing=sum(r.missing for r in results),
        duplicated=sum(r.duplicated for r in results),
        stray=sum(r.stray for r in results),
        worker_done=done,
        left_in_stream=int(client.xlen(stream)),  # type: ignore[arg-type]
        pending=int(pending),
        dead=int(client.xlen(streams.dead(stream))),  # type: ignore[arg-type]
        errors=[e for r in results for e in r.errors],
    )


def _start_workers(children: Children, layout: Layout, url: str, stream: str, tag: str) -> None:
    remaining = layout.workers // layout.concurrency
    for index in range(layout.processes):
        loops = min(layout.loops, remaining)
        remaining -= loops
        plan = WorkerPlan(url, stream, f"{tag}-{index}", loops, layout.concurrency, layout.sleep_s)
        children.fork("worker", serve, plan)


def _ready(client: redis.Redis, tag: str, loops: int) -> bool:
    """True once every loop has written its heartbeat (it does so after joining the group)."""
    pattern = streams.heartbeat(COMPONENT, f"{tag}-*")
    return sum(1 for _ in client.scan_iter(match=pattern, count=1_000)) >= loops


def run_phase(
    stack: Stack, layout: Layout, config: ScaleConfig, tag: str, profile: bool = False
) -> PhaseResult:
    """Fork the workers and producers of one layout, measure a window, check every reply."""
    client = redis.Redis.from_url(stack.redis_url)
    stream = standin_stream(tag)
    with Children() as children:
        _start_workers(children, layout, stack.redis_url, stream, tag)
        loops = layout.workers // layout.concurrency
        children.wait(lambda: _ready(client, tag, loops), 60)
        for index in range(layout.producers):
            name = f"{tag}-p{index}"
            plan = ProducerPlan(stack.redis_url, stream, name, layout.requesters, TIMEOUT_S)
            children.fork("producer", produce, plan)
        for producer in children.of("producer"):
            producer.receive(30)  # "ready"
        start = time.time() + 0.2
        when = Schedule(start, start + config.warmup_s, start + config.warmup_s + config.measure_s)
        for producer in children.of("producer"):
            producer.pipe.send(when)
        time.sleep(max(0.0, when.window_from_s - time.time()))
        before = sample(children, stack.redis_pid, client)
        spies = scaleout_profile.start(children, config.measure_s) if profile else []
        time.sleep(max(0.0, when.window_to_s - time.time()))
        used = sample(children, stack.redis_pid, client).minus(before)
        results = [p.receive(TIMEOUT_S + 30) for p in children.of("producer")]
        children.terminate("worker")
        done = sum(w.receive(30) for w in children.of("worker"))
        check = _check(client, stream, results, done)
        where = scaleout_profile.finish(spies)
    client.close()
    done_s = [t for r in results for t in r.window_done_s]
    return PhaseResult(
        layout,
        config.measure_s,
        len(done_s),
        _rate(done_s),
        [x for r in results for x in r.window_latency_s],
        used,
        check,
        where,
    )


def _describe(layout: Layout) -> str:
    return (
        f"{layout.name}: N={layout.workers} ({layout.processes} process(es) × {layout.loops} "
        f"loop(s) × concurrency {layout.concurrency}), {layout.producers} producer(s)"
    )


def _run_one(
    stack: Stack, layout: Layout, config: ScaleConfig, tag: str, profile: bool = False
) -> PhaseResult:
    _progress(_describe(layout) + (" (under py-spy)" if profile else ""))
    result = run_phase(stack, layout, config, tag, profile)
    verdict = "exactly once ✓" if result.check.ok else f"CHECK FAILED {result.check}"
    _progress(f"  {result.throughput:,.1f} jobs/s over {result.completions} jobs; {verdict}")
    return result


def run(config: ScaleConfig) -> ScaleResult:
    """Every scaling phase (N=1 once, shared by both layouts), then the zero-sleep grid."""
    scaling, zero = [], []
    with Stack() as stack:
        for n in config.workers:
            for kind in config.layouts if n > 1 else config.layouts[:1]:
                layout = sleeping_layout(kind, n, config)
                scaling.append(_run_one(stack, layout, config, f"s{len(scaling)}"))
        for producers, consumers, concurrency in config.zero_grid:
            layout = zero_layout(producers, consumers, concurrency)
            zero.append(_run_one(stack, layout, config, f"z{len(zero)}"))
        profiled = []
        if config.profile:  # the best zero-sleep layout again, under py-spy
            best = max(zero, key=lambda r: r.throughput).layout
            profiled.append(_run_one(stack, best, config, "prof", True))
    return ScaleResult(config, scaling, zero, profiled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, one layout (< 40 s)")
    parser.add_argument(
        "--profile", action="store_true", help="quick mode too: py-spy the best zero-sleep runs"
    )
    args = parser.parse_args(argv)
    from bench import scaleout_report  # noqa: PLC0415  (it imports this module's results)

    config = QUICK if args.quick else FULL
    if args.profile:
        config = dataclasses.replace(config, profile=True)
    command = " ".join(["python -m bench.scaleout", *(argv if argv is not None else sys.argv[1:])])
    header = f"{machine.describe().markdown()}\nCommand: `{command}`."
    result = run(config)
    print(scaleout_report.render(result, header))
    failed = [r for r in [*result.scaling, *result.zero] if not r.check.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
