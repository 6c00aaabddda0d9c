"""SSE flood: request latency with hundreds of SSE listeners open on one gateway.

A private Redis, one MT worker (en-pt) and a real gateway (``python -m services.gateway``).
``/v1/translate`` ("Good morning." en -> pt) is timed one request at a time while idle, then
again with ``--listeners`` SSE listeners (one listener key) on one public session that gets a
caption every ``--event-interval-s``, every listener reading it. Redis' client counts show
what the listeners cost the bus. ``--route session`` times ``GET /v1/sessions/{id}`` instead
(no MT worker needed).

    python -m bench.sse_flood --listeners 500 --requests 100
"""

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis

from bench.stack import Stack, cpu_s, http_ok, wait_until
from bench.stats import Summary, ms, percentile, ratio
from pyparrot import redis_server
from services.gateway.live.engine.store import SessionStore
from shared import heartbeat
from shared.admin import keystore

TRANSLATE = {"text": "Good morning.", "source": "en", "target": "pt"}


@dataclass
class Keys:
    presenter: str
    listener: str


async def _setup(redis_url: str) -> tuple[Keys, str]:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        presenter, _ = await keystore.create(redis, "presenter", "bench-presenter")
        listener, _ = await keystore.create(redis, "listener", "bench-listener")
        store = SessionStore(redis, 3_600, 5_000)
        info = await store.create(owner="bench-presenter", listeners=["*"])
        return Keys(presenter, listener), info.id
    finally:
        await redis.aclose()


async def _timed(http: httpx.AsyncClient, route: str, session_id: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        if route == "translate":
            response = await http.post("/v1/translate", json=TRANSLATE)
        else:
            response = await http.get(f"/v1/sessions/{session_id}")
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return samples


async def _listen(http: httpx.AsyncClient, url: str, key: str, got: list[int], i: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with http.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        got[i] = 0
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                got[i] += 1


async def _publish(redis_url: str, session_id: str, interval_s: float) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    store = SessionStore(redis, 3_600, 5_000)
    try:
        for n in range(1_000_000):
            await store.publish(session_id, {"type": "stt_final", "text": f"caption {n}"})
            await asyncio.sleep(interval_s)
    finally:
        await redis.aclose()


async def _clients(redis_url: str) -> dict[str, int]:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        info = await redis.info("clients")
        return {k: int(info[k]) for k in ("connected_clients", "blocked_clients")}
    finally:
        await redis.aclose()


async def _fanout_cost(gateway_pid: int, got: list[int], window_s: float) -> float:
    """The gateway's CPU seconds per SSE event written, over ``window_s`` of listening only."""
    cpu, delivered = cpu_s(gateway_pid), sum(got)
    await asyncio.sleep(window_s)
    return (cpu_s(gateway_pid) - cpu) / max(sum(got) - delivered, 1)


@dataclass
class Flood:
    """What was measured with the listeners open."""

    samples: list[float]
    redis_clients: dict[str, int]
    delivered: int
    per_event_s: float
    metrics: str


async def _flood(
    args: argparse.Namespace, http: httpx.AsyncClient, keys: Keys, session_id: str, pid: int
) -> Flood:
    limits = httpx.Limits(max_connections=args.listeners + 10, max_keepalive_connections=0)
    redis_url = args.redis_url
    async with httpx.AsyncClient(base_url=http.base_url, timeout=None, limits=limits) as sse:
        got = [-1] * args.listeners
        url = f"/v1/sessions/{session_id}/events"
        tasks = [
            asyncio.create_task(_listen(sse, url, keys.listener, got, i))
            for i in range(args.listeners)
        ]
        publisher = asyncio.create_task(_publish(redis_url, session_id, args.event_interval_s))
        for _ in range(600):  # up to 2 min for every listener to be open and reading
            if min(got) >= 1 or any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.2)
        for task in tasks:
            if task.done():
                task.result()  # a refused listener: fail loudly
        per_event_s = await _fanout_cost(pid, got, args.cpu_window_s)
        samples = await _timed(http, args.route, session_id, args.requests)
        flood = Flood(
            samples, await _clients(redis_url), sum(got), per_event_s,
            (await http.get("/metrics")).text,
        )  # fmt: skip
        publisher.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(publisher, *tasks, return_exceptions=True)
    return flood


async def run(args: argparse.Namespace, base_url: str, gateway_pid: int) -> dict[str, object]:
    keys, session_id = await _setup(args.redis_url)
    auth = {"Authorization": f"Bearer {keys.presenter}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=60) as http:
        await _timed(http, args.route, session_id, 5)  # warm up (model load, connections)
        idle = await _timed(http, args.route, session_id, args.requests)
        idle_clients = await _clients(args.redis_url)
        flood = await _flood(args, http, keys, session_id, gateway_pid)
        await asyncio.sleep(1.0)  # the listeners' connections close
        again = await _timed(http, args.route, session_id, args.requests)
    gauge = next(
        (
            line.split()[1]
            for line in flood.metrics.splitlines()
            if line.startswith("pyparrot_sse_")
        ),
        "?",
    )
    return {
        "route": args.route,
        "listeners": args.listeners,
        "idle": Summary.of(idle),
        "loaded": Summary.of(flood.samples),
        "again": Summary.of(again),
        "idle_p95_s": _p95(idle),
        "loaded_p95_s": _p95(flood.samples),
        "again_p95_s": _p95(again),
        "redis_idle": idle_clients,
        "redis_loaded": flood.redis_clients,
        "events_delivered": flood.delivered,
        "sse_listeners_gauge": gauge,
        "gateway_cpu_per_sse_event_s": flood.per_event_s,
    }


def _p95(samples: list[float]) -> float:
    return percentile(samples, 95)


def _counts(clients: object) -> str:
    if not isinstance(clients, dict):
        return ""
    return f"{clients['connected_clients']} ({clients['blocked_clients']})"


def _report(result: dict[str, object]) -> None:
    print(f"route {result['route']}: {result['listeners']} SSE listeners")
    print("| state | n | p50 ms | p95 ms | p99 ms | Redis clients (blocked) |")
    print("|---|---|---|---|---|---|")
    for name, state, clients in (
        ("idle", "idle", result["redis_idle"]),
        ("listeners open", "loaded", result["redis_loaded"]),
        ("idle again", "again", None),
    ):
        s, p95 = result[state], float(result[f"{state}_p95_s"])  # type: ignore[arg-type]
        assert isinstance(s, Summary)
        counts = _counts(clients)
        print(f"| {name} | {s.n} | {ms(s.p50_s)} | {ms(p95)} | {ms(s.p99_s)} | {counts} |")
    loaded = float(result["loaded_p95_s"])  # type: ignore[arg-type]
    for state in ("idle", "again"):
        baseline = float(result[f"{state}_p95_s"])  # type: ignore[arg-type]
        print(f"p95 listeners open / {state}: {ratio(loaded, baseline)}")
    print(f"events delivered to listeners: {result['events_delivered']}")
    print(f"pyparrot_sse_listeners: {result['sse_listeners_gauge']}")
    per_event_s = float(result["gateway_cpu_per_sse_event_s"])  # type: ignore[arg-type]
    print(f"gateway CPU per SSE event written (listening only): {per_event_s * 1e6:.0f} µs")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_flood", description=__doc__)
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per state")
    parser.add_argument("--event-interval-s", type=float, default=0.5)
    parser.add_argument("--route", choices=("translate", "session"), default="translate")
    parser.add_argument(
        "--cpu-window-s", type=float, default=5.0, help="listening-only window for CPU/event"
    )
    args = parser.parse_args(argv)
    with Stack() as stack:
        port = redis_server.free_port()
        env = {
            "GATEWAY_PORT": str(port),
            "GATEWAY_RATE_LIMIT_PER_MIN": "0",
            "GATEWAY_SSE_MAX_LISTENERS_PER_KEY": str(args.listeners),
            "LOG_LEVEL": "WARNING",
        }
        gateway = stack.spawn("gateway", ["-m", "services.gateway"], env)
        children = [gateway]
        if args.route == "translate":
            mt_env = {"MT_PAIRS": '["en-pt"]', "MT_WORKER_NAME": "bench-mt"}
            children.append(stack.spawn("mt", ["-m", "services.mt"], mt_env))
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{base_url}/health"), children, 60)
        if args.route == "translate":
            wait_until(lambda: _mt_ready(stack.redis_url), children, 120)
        args.redis_url = stack.redis_url
        result = asyncio.run(run(args, base_url, gateway.popen.pid))
    _report(result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, Summary)}))
    return 0


def _mt_ready(redis_url: str) -> bool:
    async def ready() -> bool:
        redis = aioredis.Redis.from_url(redis_url)
        try:
            return any(w.component == "mt" for w in await heartbeat.live_workers(redis))
        finally:
            await redis.aclose()

    return asyncio.run(ready())


if __name__ == "__main__":
    sys.exit(main())
