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

from bench.stack import Stack, http_ok, wait_until
from bench.stats import Summary, ms, percentile, ratio
from pyparrot import redis_server
from services.gateway import keystore
from services.gateway.live.store import SessionStore
from shared import heartbeat

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


async def run(args: argparse.Namespace, base_url: str, redis_url: str) -> dict[str, object]:
    keys, session_id = await _setup(redis_url)
    auth = {"Authorization": f"Bearer {keys.presenter}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=60) as http:
        await _timed(http, args.route, session_id, 5)  # warm up (model load, connections)
        idle = await _timed(http, args.route, session_id, args.requests)
        idle_clients = await _clients(redis_url)
        limits = httpx.Limits(max_connections=args.listeners + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits) as sse:
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
            loaded = await _timed(http, args.route, session_id, args.requests)
            loaded_clients = await _clients(redis_url)
            delivered = sum(got)
            metrics = (await http.get("/metrics")).text
            publisher.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(publisher, *tasks, return_exceptions=True)
    gauge = next(
        (line.split()[1] for line in metrics.splitlines() if line.startswith("pyparrot_sse_")),
        "?",
    )
    return {
        "route": args.route,
        "listeners": args.listeners,
        "idle": Summary.of(idle),
        "loaded": Summary.of(loaded),
        "idle_p95_s": _p95(idle),
        "loaded_p95_s": _p95(loaded),
        "redis_idle": idle_clients,
        "redis_loaded": loaded_clients,
        "events_delivered": delivered,
        "sse_listeners_gauge": gauge,
    }


def _p95(samples: list[float]) -> float:
    return percentile(samples, 95)


def _report(result: dict[str, object]) -> None:
    idle, loaded = result["idle"], result["loaded"]
    assert isinstance(idle, Summary) and isinstance(loaded, Summary)
    idle_p95, loaded_p95 = float(result["idle_p95_s"]), float(result["loaded_p95_s"])  # type: ignore[arg-type]
    print(f"route {result['route']}: {result['listeners']} SSE listeners")
    print("| state | n | p50 ms | p95 ms | p99 ms | Redis clients (blocked) |")
    print("|---|---|---|---|---|---|")
    for name, s, p95, clients in (
        ("idle", idle, idle_p95, result["redis_idle"]),
        ("listeners open", loaded, loaded_p95, result["redis_loaded"]),
    ):
        assert isinstance(clients, dict)
        counts = f"{clients['connected_clients']} ({clients['blocked_clients']})"
        print(f"| {name} | {s.n} | {ms(s.p50_s)} | {ms(p95)} | {ms(s.p99_s)} | {counts} |")
    print(f"p95 loaded/idle: {ratio(loaded_p95, idle_p95)}")
    print(f"events delivered to listeners: {result['events_delivered']}")
    print(f"pyparrot_sse_listeners: {result['sse_listeners_gauge']}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_flood", description=__doc__)
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per state")
    parser.add_argument("--event-interval-s", type=float, default=0.5)
    parser.add_argument("--route", choices=("translate", "session"), default="translate")
    args = parser.parse_args(argv)
    with Stack() as stack:
        port = redis_server.free_port()
        env = {
            "GATEWAY_PORT": str(port),
            "GATEWAY_RATE_LIMIT_PER_MIN": "0",
            "GATEWAY_SSE_MAX_LISTENERS_PER_KEY": str(args.listeners),
            "LOG_LEVEL": "WARNING",
        }
        children = [stack.spawn("gateway", ["-m", "services.gateway"], env)]
        if args.route == "translate":
            mt_env = {"MT_PAIRS": '["en-pt"]', "MT_WORKER_NAME": "bench-mt"}
            children.append(stack.spawn("mt", ["-m", "services.mt"], mt_env))
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{base_url}/health"), children, 60)
        if args.route == "translate":
            wait_until(lambda: _mt_ready(stack.redis_url), children, 120)
        result = asyncio.run(run(args, base_url, stack.redis_url))
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
