"""A Redis Cluster primary killed (-9) under load, with real processes: a local cluster of 3
primaries + 3 replicas, the gateway (``python -m services.gateway``) and two stand-in worker
processes (``tests.chaos.standin_worker``).

The shard holding the STT job stream dies while ≥ 500 transcriptions are under way. Every
request completes with its own result or gets a clean 503/504 within the request timeout;
none hangs and none gets another request's result. Once the replica has taken over, the same
processes serve new requests without a restart.
"""

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pyparrot import procs, redis_cluster, redis_server
from shared import bus, streams
from tests.audio import DATA
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
REQUEST_TIMEOUT_S = 20.0
MARGIN_S = 10.0  # a request still open after timeout + margin is "hung"
CLIENTS = 16
TOTAL = 600  # requests in the load the kill lands in
AFTER = 60  # requests sent once the cluster has failed over
WAV = (DATA / "en_short.wav").read_bytes()
STREAM = streams.jobs("stt", "tiny.en")
ERRORS: Counter[str] = Counter()  # the clean errors' messages, for the report


@dataclass
class ClusterStack:
    cluster: redis_cluster.LocalCluster
    gateway_url: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ClusterStack]:
    logs = tmp_path / "logs"
    cluster = redis_cluster.start(3, logs, tmp_path / "data", replicas=1)
    port = redis_server.free_port()
    env = {
        "REDIS_URL": cluster.url,
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "INFO",
        "GATEWAY_PORT": str(port),
        "GATEWAY_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        "GATEWAY_REGISTRY_CACHE_S": "0.5",
        "STANDIN_CONCURRENCY": "4",
        "STANDIN_HANDLE_MS": "20",
        "STANDIN_BLOCK_MS": "200",
        # A job whose acknowledgement died with the shard comes back after this.
        "STANDIN_CLAIM_IDLE_MS": "3000",
    }
    started = [procs.spawn("gateway", [sys.executable, "-m", "services.gateway"], env, logs)]
    for name in ("worker-1", "worker-2"):
        worker = [sys.executable, "-m", "tests.chaos.standin_worker"]
        started.append(procs.spawn(name, worker, {**env, "STANDIN_WORKER_NAME": name}, logs))
    try:
        yield ClusterStack(cluster, f"http://127.0.0.1:{port}")
    finally:
        procs.stop(started, timeout_s=15)
        redis_cluster.stop(cluster)
        for name in ("gateway", "worker-1", "worker-2"):
            print(f"--- {name} log (tail) ---\n{procs.tail(str(logs / f'{name}.log'), 15)}")


def primary_of(url: str, key: str) -> tuple[str, int]:
    """The address of the primary holding ``key``'s slot, as the cluster says now."""
    client = bus.sync_client(url)
    try:
        node = client.get_node_from_key(key)  # type: ignore[attr-defined]
        return node.host, node.port
    finally:
        client.close()


def pid_of(host: str, port: int) -> int:
    with redis_server.redis.Redis(host, port, socket_connect_timeout=2) as node:
        return int(node.info("server")["process_id"])


async def transcribe(http: httpx.AsyncClient, number: int, outcomes: Counter[str]) -> None:
    """One request carrying its number as the prompt; the stand-in echoes it back."""
    started = time.monotonic()
    try:
        response = await http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", WAV)},
            data={"prompt": f"request-{number}"},
        )
    except httpx.TimeoutException:
        outcomes["hung"] += 1
        return
    except httpx.TransportError:
        outcomes["broken"] += 1
        return
    if time.monotonic() - started > REQUEST_TIMEOUT_S + MARGIN_S:
        outcomes["hung"] += 1
    elif response.status_code == 200:
        own = response.json()["text"].startswith(f"request-{number} ")
        outcomes["completed" if own else "someone_elses_result"] += 1
    elif response.status_code in (503, 504) and response.json()["detail"]:
        outcomes[f"clean_{response.status_code}"] += 1
        ERRORS[response.json()["detail"][:80]] += 1
    else:
        outcomes[f"other_{response.status_code}"] += 1


async def load(http: httpx.AsyncClient, first: int, count: int, outcomes: Counter[str]) -> None:
    """``count`` requests numbered from ``first``, ``CLIENTS`` at a time."""
    numbers = iter(range(first, first + count))

    async def client() -> None:
        for number in numbers:
            await transcribe(http, number, outcomes)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


async def test_a_primary_killed_under_load_loses_no_job(stack: ClusterStack) -> None:
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S + MARGIN_S)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=timeout) as http:
        await eventually(lambda: _ready(http), timeout_s=60)
        outcomes: Counter[str] = Counter()
        running = asyncio.create_task(load(http, 0, TOTAL, outcomes))
        await eventually(lambda: _answered(outcomes, TOTAL // 4), timeout_s=60)
        victim = primary_of(stack.cluster.url, STREAM)
        at_kill = sum(outcomes.values())
        os.kill(pid_of(*victim), signal.SIGKILL)
        await running
        successor = primary_of(stack.cluster.url, STREAM)
        after: Counter[str] = Counter()
        await load(http, TOTAL, AFTER, after)
        metrics = (await http.get("/metrics")).text
    errors = outcomes["clean_503"] + outcomes["clean_504"]
    print(
        f"\ncluster failover under load: killed {victim} after {at_kill} answers; "
        f"{sum(outcomes.values())} requests: completed={outcomes['completed']} "
        f"clean_errors={errors} all={dict(outcomes)}; successor {successor}; "
        f"after failover {dict(after)}; "
        f"resubmitted={_counter(metrics, 'pyparrot_jobs_resubmitted_total')} "
        f"duplicates_dropped={_counter(metrics, 'pyparrot_duplicate_results_total')}; "
        f"errors {dict(ERRORS)}"
    )
    assert sum(outcomes.values()) == TOTAL  # every request got an answer: none lost
    assert set(outcomes) <= {"completed", "clean_503", "clean_504"}, outcomes
    assert at_kill < TOTAL  # the kill landed inside the load
    assert successor != victim  # a replica took over the shard
    assert after == Counter(completed=AFTER)  # the same processes serve again


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        workers = (await http.get("/v1/workers")).json()
    except (httpx.TransportError, ValueError):
        return False
    return isinstance(workers, list) and len(workers) == 2


async def _answered(outcomes: Counter[str], count: int) -> bool:
    return sum(outcomes.values()) >= count


def _counter(metrics: str, name: str) -> float:
    return sum(
        float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " ")
    )
