"""Redis killed (-9) and restarted under load, with real processes: the gateway
(``python -m services.gateway``) and a worker process (``tests.chaos.standin_worker``).

Every request either completes or gets a clean 503/504 within the request timeout; none
hangs. ``/ready`` turns 503 during the outage and 200 again after it, and the worker
(whose consumer group vanished with the non-persistent Redis) serves again.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.audio import DATA
from tests.chaos.conftest import Stack
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
REQUEST_TIMEOUT_S = 6.0
MARGIN_S = 6.0  # a request still open after timeout + margin is "hung"
CLIENTS = 12
OUTAGE_S = 2.0
WAV = (DATA / "en_short.wav").read_bytes()


@pytest.fixture
def stack(start_stack: Callable[[dict[str, str]], Stack]) -> Stack:
    return start_stack(
        {
            "GATEWAY_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "GATEWAY_SUBMIT_RETRY_S": "0",  # an outage meets requests at once, not after 5 s
            "GATEWAY_REGISTRY_CACHE_S": "0.2",
            "STANDIN_CONCURRENCY": "4",
            "STANDIN_BLOCK_MS": "100",
            "STANDIN_HEARTBEAT_INTERVAL_S": "0.5",
            "STANDIN_HEARTBEAT_TTL_S": "3",
        }
    )


async def status_of(http: httpx.AsyncClient, path: str) -> int:
    try:
        return (await http.get(path)).status_code
    except httpx.TransportError:
        return 0


async def client_loop(http: httpx.AsyncClient, stop: asyncio.Event, outcomes: Counter) -> None:
    """Send transcriptions one after another until ``stop``; classify each answer."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await http.post("/v1/audio/transcriptions", files={"file": ("a.wav", WAV)})
        except httpx.TimeoutException:
            outcomes["hung"] += 1
            continue
        except httpx.TransportError:
            outcomes["broken"] += 1
            continue
        if time.monotonic() - started > REQUEST_TIMEOUT_S + MARGIN_S:
            outcomes["hung"] += 1
        elif response.status_code == 200 and response.json()["text"].endswith("seconds"):
            outcomes["completed"] += 1
        elif response.status_code in (503, 504) and response.json()["detail"]:
            outcomes[f"clean_{response.status_code}"] += 1
        else:
            outcomes[f"other_{response.status_code}"] += 1


async def test_requests_complete_or_fail_cleanly_across_a_redis_restart(stack: Stack) -> None:
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S + MARGIN_S)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=timeout) as http:
        await eventually(lambda: _is(http, "/ready", 200), timeout_s=60)
        outcomes: Counter[str] = Counter()
        stop = asyncio.Event()
        clients = [asyncio.create_task(client_loop(http, stop, outcomes)) for _ in range(CLIENTS)]
        try:
            await restart_under_load(stack, http, outcomes)
        finally:
            stop.set()
            await asyncio.gather(*clients)
        metrics = (await http.get("/metrics")).text
    resubmitted = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("pyparrot_jobs_resubmitted_total ")
    )
    errors = outcomes["clean_503"] + outcomes["clean_504"]
    print(
        f"\nredis restart under load: {sum(outcomes.values())} requests, "
        f"completed={outcomes['completed']} clean_errors={errors} "
        f"(503={outcomes['clean_503']}, 504={outcomes['clean_504']}) "
        f"hung={outcomes['hung']} resubmitted={resubmitted:.0f} other={dict(outcomes)}"
    )
    assert outcomes["hung"] == 0
    assert set(outcomes) <= {"completed", "clean_503", "clean_504"}, outcomes
    # The outage did hit requests (else this test proved nothing): they failed cleanly, or
    # their jobs, lost with Redis, were submitted again.
    assert errors + resubmitted > 0


async def restart_under_load(stack: Stack, http: httpx.AsyncClient, outcomes: Counter) -> None:
    """Kill Redis mid-load, check the gateway reports it, restart it, wait for recovery."""
    await eventually(lambda: _at_least(outcomes, "completed", CLIENTS), timeout_s=30)
    before = outcomes["completed"]
    stack.kill_redis()
    await eventually(lambda: _is(http, "/ready", 503), timeout_s=10)
    assert await status_of(http, "/health") == 503
    await asyncio.sleep(OUTAGE_S)  # an outage of known length, under load
    stack.start_redis()
    await eventually(lambda: _is(http, "/ready", 200), timeout_s=30)
    # The worker recreated its group and serves again: new requests complete.
    await eventually(lambda: _at_least(outcomes, "completed", before + 2 * CLIENTS), 30)


async def _is(http: httpx.AsyncClient, path: str, status: int) -> bool:
    return await status_of(http, path) == status


async def _at_least(outcomes: Counter, key: str, count: int) -> bool:
    return outcomes[key] >= count
