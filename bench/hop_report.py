"""The markdown section of the bus-hop benchmark."""

from bench.hop import LOCAL, SUBPROCESS, HopResult, PayloadResult
from bench.paths import RAW, RAW_ENVELOPE, RAW_THREADS
from bench.report import table
from bench.stats import Summary, ms, ratio

HOP_GOAL_S = 0.001
LABELS = {
    "socket": "Redis PING, plain blocking socket (baseline)",
    "ping": "Redis PING, redis-py asyncio client (baseline)",
    "queue": "asyncio.Queue echo, in-process (baseline)",
    RAW: "bare Redis Streams echo: same commands, no envelope (baseline)",
    RAW_ENVELOPE: "bare loop + the envelope (pydantic + msgpack, both ends)",
    RAW_THREADS: "bare loop + envelope + the handler in a thread as `shared.worker` runs it",
    SUBPROCESS: "**PyParrot: Bridge → `run_worker` in another process**",
    LOCAL: "PyParrot: Bridge → `run_worker` in the same event loop",
}


def _size(payload: PayloadResult) -> str:
    return f"{payload.payload_bytes // 1024} KB ({payload.entry_bytes:,} B entry)"


def _sequential(result: HopResult) -> str:
    rows = []
    for payload in result.sequential:
        ping = Summary.of(payload.series["ping"].samples)
        raw = Summary.of(payload.series[RAW].samples)
        for name, series in payload.series.items():
            if name in LADDER[1:-1]:
                continue  # shown in the ladder
            s = Summary.of(series.samples)
            rows.append(
                [
                    _size(payload),
                    LABELS[name],
                    str(s.n),
                    ms(s.p50_s),
                    ms(s.p99_s),
                    ms(s.p50_s / 2),
                    ms(s.p99_s / 2),
                    ratio(s.p50_s, ping.p50_s),
                    ratio(s.p50_s, raw.p50_s),
                ]
            )
    headers = ["payload", "path", "n", "p50 round trip (ms)", "p99 round trip (ms)"]
    headers += ["p50 per hop (ms)", "p99 per hop (ms)", "p50 vs PING", "p50 vs bare streams"]
    return table(headers, rows)


LADDER = (RAW, RAW_ENVELOPE, RAW_THREADS, SUBPROCESS)
LADDER_STEPS = (
    "bare Redis Streams: XADD → XREADGROUP → MULTI(XADD, XACK, XDEL) → XREAD",
    "+ the envelope: build, msgpack and validate the job and the reply",
    "+ the handler run in a thread as `shared.worker` runs it (`shared.threads.iterate_in_thread`)",
    "+ the rest of the worker loop and the Bridge (tasks, timeouts, metrics, EXPIRE, routing)",
)


def _ladder(result: HopResult) -> str:
    headers = ["step (consumer in another process)"]
    for payload in result.sequential:
        size = f"{payload.payload_bytes // 1024} KB"
        headers += [f"{size}: p50 round trip (ms)", f"{size}: added (ms)"]
    headers.append("consumer CPU per job (µs)")
    rows = []
    for index, (name, step) in enumerate(zip(LADDER, LADDER_STEPS, strict=True)):
        row = [step]
        for payload in result.sequential:
            p50 = Summary.of(payload.series[name].samples).p50_s
            before = Summary.of(payload.series[LADDER[index - 1]].samples).p50_s if index else 0
            row += [ms(p50), ms(p50 - before) if index else ""]
        row.append(f"{result.consumer_cpu_s[name] * 1e6:.0f}")
        rows.append(row)
    return table(headers, rows)


def _pieces(result: HopResult) -> str:
    sizes = sorted(result.pieces)
    names = list(result.pieces[sizes[0]])
    headers = [
        "piece, timed alone in the bench process",
        *(f"{z // 1024} KB: p50 (µs)" for z in sizes),
    ]
    rows = [
        [name, *(f"{Summary.of(result.pieces[z][name]).p50_s * 1e6:.0f}" for z in sizes)]
        for name in names
    ]
    return table(headers, rows)


def _legs(result: HopResult) -> str:
    rows = []
    for payload in result.sequential:
        for name in (SUBPROCESS, LOCAL):
            series = payload.series[name]
            job, reply = Summary.of(series.job_leg), Summary.of(series.reply_leg)
            rows.append(
                [_size(payload), LABELS[name], ms(job.p50_s), ms(reply.p50_s), ms(job.p99_s)]
            )
    headers = ["payload", "path", "job leg p50 (ms)", "reply leg p50 (ms)", "job leg p99 (ms)"]
    return table(headers, rows)


def _throughput(result: HopResult) -> str:
    config = result.config
    rows, cpu_rows = [], []
    for payload, burst in zip(result.sequential, result.throughput, strict=True):
        s = Summary.of(burst.latencies)
        count = len(burst.latencies)
        rate = count / burst.wall_s
        one_in_flight = 1 / Summary.of(payload.series[SUBPROCESS].samples).mean_s
        rows.append(
            [
                _size(payload),
                str(count),
                f"{rate:,.0f}",
                ms(s.p50_s),
                ms(s.p99_s),
                f"{rate / one_in_flight:.2f}×",
            ]
        )
        cpu = [f"{used / count * 1e6:.0f}" for used in burst.cpu_s.values()]
        busy = sum(burst.cpu_s.values()) / burst.wall_s
        cpu_rows.append([_size(payload), *cpu, f"{busy:.2f}"])
    headers = ["payload", "requests", "requests/s", "p50 (ms)", "p99 (ms)", "vs one in flight"]
    processes = list(result.throughput[0].cpu_s)
    cpu_headers = ["payload", *(f"{name}: CPU µs/request" for name in processes), "cores busy"]
    return "\n\n".join(
        [
            f"{config.requesters} requester tasks share one Bridge (one gateway); one stand-in "
            f"worker process with `concurrency={config.worker_concurrency}`.",
            table(headers, rows),
            "CPU per request during the measured burst (from /proc; `cores busy` is the three "
            "processes' CPU time over the wall time, out of the machine's cores):",
            table(cpu_headers, cpu_rows),
        ]
    )


def _verdict(result: HopResult) -> str:
    parts = []
    for payload in result.sequential:
        hop_s = Summary.of(payload.series[SUBPROCESS].samples).p50_s / 2
        verdict = "met" if hop_s <= HOP_GOAL_S else "**missed**"
        parts.append(f"{payload.payload_bytes // 1024} KB: {ms(hop_s)} ms ({verdict})")
    return (
        "Goal: ≤ 1 ms p50 per hop (half the round trip, worker in another process). "
        "This run: " + "; ".join(parts) + "."
    )


def render(result: HopResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config = result.config
    return "\n\n".join(
        [
            "## The bus hop with a stand-in handler",
            header,
            "One round trip: `Bridge.request` submits a job (XADD) → the real consumer-group "
            "loop (`shared.worker.run_worker`) reads it (XREADGROUP), runs a handler that "
            "yields a small `Transcript`, then publishes the reply + XACK + XDEL in one MULTI → "
            "the Bridge's reader (XREAD) routes it to the waiting request. That is two stream "
            "hops, so a hop is half a round trip. One request in flight; "
            f"{config.requests} round trips per path after {config.warmup} warm-up, in "
            f"interleaved blocks of {config.block}. Redis on loopback; the bench process is "
            "the requester (the gateway's side).",
            _sequential(result),
            _verdict(result),
            "Where it goes, one layer at a time: bare consumers in their own processes, each "
            "adding one layer of what `shared.worker` does, measured in the same interleaved "
            "blocks (p50s of different series, so the steps are estimates, not exact sums). "
            "The last column is the consumer process's CPU time over the jobs it served "
            "(both payloads, from /proc; ±10 ms clock ticks over all its jobs):",
            _ladder(result),
            "The same pieces timed alone, one at a time, in the bench process (no Redis, no "
            "other process): what each costs when nothing else competes for the CPU.",
            _pieces(result),
            "Where a PyParrot round trip goes: the job leg runs from the job envelope's "
            "creation to the reply envelope's (submit, delivery, decode, handler thread); the "
            "reply leg from there until the waiting request resumes (publish MULTI, XREAD, "
            "decode, routing).",
            _legs(result),
            "### Throughput",
            _throughput(result),
        ]
    )
