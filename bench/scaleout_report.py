"""The markdown section of the scale-out benchmark."""

import os

from bench.report import table
from bench.scaleout import MAX_REQUESTERS, ZERO_REQUESTERS_PER_SLOT, PhaseResult, ScaleResult
from bench.stats import Summary, ms

EFFICIENCY_GOAL = 0.9
BUS_GOAL_JOBS_S = 5_000
# Commands that run only inside EVALSHA (the bounded submit) or EXEC (the worker's MULTI):
# Redis counts their time in the outer command too, so the total leaves them out.
NESTED = ("xlen", "xadd", "xack", "xdel", "expire")


def _per_job_us(result: PhaseResult, role: str) -> float:
    return result.used.cpu_s[role] / max(result.completions, 1) * 1e6


def _cores(result: PhaseResult, role: str) -> float:
    return result.used.cpu_s[role] / result.window_s


def _checked(result: PhaseResult) -> str:
    c = result.check
    if c.ok:
        return f"✓ {c.submitted:,} jobs, {c.once:,} replies"
    return (
        f"**FAILED**: {c.submitted} sent, {c.once} once, {c.missing} missing, "
        f"{c.duplicated} duplicated, {c.stray} stray, {c.worker_done} done by workers, "
        f"{c.left_in_stream} left, {c.pending} pending, {c.dead} dead; {c.errors[:2]}"
    )


def _cpu_cells(result: PhaseResult) -> list[str]:
    return [
        f"{_per_job_us(result, 'worker'):.0f}",
        f"{_per_job_us(result, 'producer'):.0f}",
        f"{_per_job_us(result, 'redis'):.0f}",
        f"{_cores(result, 'redis'):.2f}",
        f"{sum(_cores(result, role) for role in ('worker', 'producer', 'redis')):.2f}",
        f"{_cores(result, 'machine'):.2f}",
    ]


CPU_HEADERS = [
    "workers CPU µs/job",
    "producers CPU µs/job",
    "redis CPU µs/job",
    "redis cores busy",
    "our processes: cores busy",
    "machine cores busy (all users)",
]


def _scaling(result: ScaleResult) -> str:
    single = result.scaling[0].throughput
    rows = []
    for phase in result.scaling:
        lay = phase.layout
        ideal = lay.workers * single
        s = Summary.of(phase.latencies_s) if phase.latencies_s else None
        rows.append(
            [
                lay.name if lay.workers > 1 else "single worker",
                str(lay.workers),
                f"{lay.processes} × {lay.loops}",
                f"{lay.producers} × {lay.requesters}",
                f"{phase.throughput:,.1f}",
                f"{ideal:,.1f}",
                f"**{phase.throughput / ideal:.3f}**",
                ms(s.p50_s) if s else "",
                ms(s.p99_s) if s else "",
                *_cpu_cells(phase),
                _checked(phase),
            ]
        )
    headers = ["layout", "N workers", "processes × loops", "producers × requesters"]
    headers += ["jobs/s", "N × single", "efficiency", "p50 (ms)", "p99 (ms)"]
    return table([*headers, *CPU_HEADERS, "every job one reply"], rows)


def _efficiency_verdict(result: ScaleResult) -> str:
    single = result.scaling[0].throughput
    parts = []
    for phase in result.scaling[1:]:
        eff = phase.throughput / (phase.layout.workers * single)
        mark = "met" if eff >= EFFICIENCY_GOAL else "**missed**"
        parts.append(f"{phase.layout.name} N={phase.layout.workers}: {eff:.3f} ({mark})")
    return f"Goal: efficiency ≥ {EFFICIENCY_GOAL}. This run: " + "; ".join(parts) + "."


def _zero(result: ScaleResult) -> str:
    rows = []
    for phase in result.zero:
        lay = phase.layout
        s = Summary.of(phase.latencies_s) if phase.latencies_s else None
        rows.append(
            [
                f"{lay.producers} × {lay.requesters}",
                f"{lay.processes} × concurrency {lay.concurrency}",
                f"**{phase.throughput:,.0f}**",
                ms(s.p50_s) if s else "",
                ms(s.p99_s) if s else "",
                f"{_jobs_per_exec(phase):.1f}",
                *_cpu_cells(phase),
                _checked(phase),
            ]
        )
    headers = ["producer processes × requesters", "consumer processes", "jobs/s"]
    headers += ["p50 (ms)", "p99 (ms)", "jobs per MULTI", *CPU_HEADERS, "every job one reply"]
    return table(headers, rows)


def best_zero(result: ScaleResult) -> PhaseResult:
    """The zero-sleep run with the highest throughput."""
    return max(result.zero, key=lambda r: r.throughput)


def _jobs_per_exec(phase: PhaseResult) -> float:
    """Jobs finished per EXEC over the window: the worker's group-commit batch size."""
    calls = phase.used.commands.get("exec", (0, 0.0))[0]
    return phase.completions / calls if calls else 0.0


def _bus_verdict(result: ScaleResult, cores: int) -> str:
    best = best_zero(result)
    python_us = _per_job_us(best, "worker") + _per_job_us(best, "producer")
    redis_us = _per_job_us(best, "redis")
    mark = "met" if best.throughput >= BUS_GOAL_JOBS_S else "**missed** on this machine"
    return (
        f"Goal: ≥ {BUS_GOAL_JOBS_S:,} jobs/s through the bus. Best this run: "
        f"{best.throughput:,.0f} jobs/s with {best.layout.producers} producer and "
        f"{best.layout.processes} consumer processes ({mark}). Per job the Python side "
        f"(producer + worker) used {python_us:.0f} µs of CPU and Redis {redis_us:.0f} µs, "
        f"on {cores} cores: the Python processes alone would fill them at "
        f"~{cores / python_us * 1e6:,.0f} jobs/s. {BUS_GOAL_JOBS_S:,} jobs/s needs "
        f"~{BUS_GOAL_JOBS_S * python_us / 1e6:.1f} cores of producers and consumers (they "
        f"share nothing but Redis, so they scale out across machines), and Redis's single "
        f"thread would saturate at ~{1e6 / redis_us:,.0f} jobs/s (1 ÷ its CPU per job): "
        f"{BUS_GOAL_JOBS_S * redis_us / 1e6:.2f} of a core at {BUS_GOAL_JOBS_S:,} jobs/s."
    )


def _commands(phase: PhaseResult) -> str:
    jobs = max(phase.completions, 1)
    rows = []
    for name, (calls, usec) in sorted(
        phase.used.commands.items(), key=lambda kv: kv[1][1], reverse=True
    ):
        if calls / jobs < 0.01:
            continue
        label = f"{name} (inside EVALSHA/EXEC)" if name in NESTED else name
        rows.append([label, f"{calls / jobs:.2f}", f"{usec / calls:.1f}", f"{usec / jobs:.1f}"])
    outer = (u for name, (_c, u) in phase.used.commands.items() if name not in NESTED)
    rows.append(["**all commands** (outer ones only)", "", "", f"**{sum(outer) / jobs:.1f}**"])
    return table(["command", "calls/job", "µs/call", "µs/job"], rows)


def _profile(phase: PhaseResult) -> str:
    parts = []
    for role, shares in phase.where.items():
        rows = [[name, f"{share * 100:.0f} %"] for name, share in shares]
        parts.append(table([f"{role}: where its CPU goes (py-spy)", "share"], rows))
    return "\n\n".join(parts)


CLUSTER = """\
### Past one Redis

One stream lives on one Redis thread, so one stage variant's ceiling is the figure above.
PyParrot runs on a Redis Cluster (`REDIS_URL=redis+cluster://…`, issue #20) with the
streams' hash tags chosen so every multi-key command stays in one slot, and a hot variant
can be split over several streams (`STREAM_PARTS`). What a hop costs there, and how the
commands spread over the shards, is in the `cluster` section (`python -m bench --only
cluster`).
"""


def render(result: ScaleResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config = result.config
    cores = os.cpu_count() or 1
    top = max(config.workers)
    parts = [
        f"## Scale-out simulation: {' → '.join(map(str, config.workers))} workers on one Redis",
        header,
        f"Stand-in workers run the real loop (`shared.multi.serve_process` → `run_many` → "
        f"`run_worker`); the handler sleeps {config.sleep_ms} ms in its thread (holding it, "
        "GIL released, as a model call does): about the shortest call of our STT and MT "
        "stages (Whisper tiny.en ≥ 0.32 s per call whatever the chunk, a sentence of MT "
        "0.26–0.53 s). Shorter would not be more faithful, and every simulated job costs "
        "real CPU in the loop, the Bridge and Redis (the columns below), all on this one "
        f"{cores}-core machine: {top} workers at {config.sleep_ms} ms ask "
        f"~{top * 1000 / config.sleep_ms:.0f} jobs/s of it. "
        "Each worker loop has `concurrency=1` (one model call at a time); "
        "`processes` puts each in its own process, `tasks` packs up to "
        f"{config.loops_per_process} loops per process (`run_many`, as a multi-variant "
        "worker does). Producers are forked processes, each a gateway's `Bridge` "
        "(`Bridge.request` with the gateway's backlog bound), keeping 2 × N requests in "
        f"flight, at most {MAX_REQUESTERS} per producer (a Bridge with 128 submitting at "
        "once failed with `Too many connections` under redis-py's default pool of 100, "
        "found here; `shared.bus.client` now uses a blocking pool of 256). "
        "Every process opens the Redis connections it will hold before the run starts, as "
        "a long-running gateway or worker already has them (a new redis-py connection "
        "costs a connect, a handshake and ~1 ms reading redis-py's own package metadata; "
        "left to the measured window, 64 workers' start-up swamped it). "
        f"Warm-up {config.warmup_s:g} s, then a {config.measure_s:g} s window; jobs/s "
        "from the completions in the window. CPU from /proc over the window, per job "
        "completed in it. Every run checks that every job got exactly one reply: counted by "
        "job id on each producer's reply stream, against the jobs the workers report done, "
        "an empty job stream, nothing pending and nothing dead-lettered.",
        _scaling(result),
        "Latency is from submit to reply, so about twice the sleep: each worker has one job "
        "in hand and one waiting.",
        _efficiency_verdict(result),
        "### The bus with handlers that do nothing",
        "Same loop and Bridge, handler returning at once; consumer processes with one loop "
        "at the concurrency shown, each producer process keeping "
        f"{ZERO_REQUESTERS_PER_SLOT} × that many requests in flight.",
        _zero(result),
        _bus_verdict(result, cores),
        "Jobs per MULTI: the worker's group commit (`shared.coalesce`): jobs that finish "
        "while the previous publish + XACK + XDEL transaction is in flight share the next "
        "one, and the Bridge pipelines the bounded submits made meanwhile the same way. An "
        "idle loop still writes each job at once, alone.",
        "Redis's own time per job in the best zero-sleep run (`INFO commandstats`, over the "
        "window; heartbeats and claims included):",
        _commands(best_zero(result)),
    ]
    for profiled in result.profiled:
        parts += [
            f"### Where the Python time goes (py-spy, {profiled.throughput:,.0f} jobs/s, "
            "the best zero-sleep layout)",
            "py-spy samples the first consumer and the first producer process at 200 Hz "
            "over the window without stopping them; each sample goes to the innermost "
            "layer it is in (waiting in epoll or an idle executor thread left out):",
            _profile(profiled),
        ]
    parts.append(CLUSTER)
    return "\n\n".join(parts)
