"""schemathesis against the gateway's own OpenAPI document: no generated request may get a
server error. The gateway runs for real (``python -m services.gateway``, an admin key so
requests get past auth) with a stand-in STT worker; stages without a worker answer
503/504 by design (``no_worker``), every other 5xx fails the test.
Run with ``-s`` to see the cases tried per operation.
"""

from collections import Counter
from collections.abc import Callable

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.chaos.conftest import Stack
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(170)]
ADMIN_KEY = "schemathesis-admin-key-0123456789"
EXAMPLES = 25  # per operation; the whole run stays well under a minute
UNAVAILABLE = {503, 504}  # documented: no worker for that stage / no answer in time


@pytest.fixture
async def stack(start_stack: Callable[[dict[str, str]], Stack]) -> Stack:
    running = start_stack(
        {
            "GATEWAY_ADMIN_API_KEY": ADMIN_KEY,
            "GATEWAY_REQUEST_TIMEOUT_S": "3",
            "GATEWAY_RATE_LIMIT_PER_MIN": "0",
        }
    )
    async with httpx.AsyncClient(base_url=running.gateway_url) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout_s=60)
    return running


def fuzz_operation(operation: object, base_url: str, seen: Counter[str]) -> None:
    """Send ``EXAMPLES`` generated requests to one operation; fail on an unexpected 5xx."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())  # type: ignore[attr-defined]
    def one(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        seen["cases"] += 1
        seen[f"{response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            seen[f"5xx {response.status_code}"] += 1
            assert response.status_code in UNAVAILABLE, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
            )
            assert response.json()["detail"]  # a clear reason, not a bare 5xx

    one()


def test_no_generated_request_gets_a_server_error(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
    seen: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        fuzz_operation(operation, stack.gateway_url, seen)
    print(f"\nschemathesis: {len(operations)} operations, {dict(seen)}")
    assert seen["cases"] >= len(operations) * 5
