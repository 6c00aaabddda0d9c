"""``POST /v1/translate`` through the bus to the real MT handler (Bergamot) in-process."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.mt.__main__ import loops
from services.mt.model import MtModel, load_model
from services.mt.settings import MtSettings
from tests.apps import running_workers

pytestmark = pytest.mark.redis

TABLE = "I would like to book a table for two people."


@pytest.fixture(scope="module")
def bergamot() -> MtModel:
    return load_model(MtSettings())


@pytest.fixture
async def mt_worker(clean_redis: str, bergamot: MtModel) -> AsyncIterator[None]:
    """A real MT worker process's loops (one per pair) with the real model."""
    settings = MtSettings(redis_url=clean_redis, worker_name="mt-test", block_ms=50)
    async with running_workers(clean_redis, loops(bergamot, settings)):
        yield


def post(client: httpx.AsyncClient, **body: object) -> "asyncio.Future[httpx.Response]":
    return client.post("/v1/translate", json=body)  # type: ignore[return-value]


@pytest.mark.usefixtures("mt_worker")
async def test_translates_both_ways(client: httpx.AsyncClient) -> None:
    response = await post(client, text=TABLE, source="en", target="pt")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "en" and body["target"] == "pt"
    assert "mesa" in body["translation"] and "duas" in body["translation"], body
    back = await post(client, text=body["translation"], source="pt-BR", target="en")
    assert back.status_code == 200, back.text
    assert "table" in back.json()["translation"] and back.json()["source"] == "pt"


@pytest.mark.usefixtures("mt_worker")
async def test_each_pair_advertises_its_own_worker(client: httpx.AsyncClient) -> None:
    workers = [w for w in (await client.get("/v1/workers")).json() if w["component"] == "mt"]
    assert sorted(w["name"] for w in workers) == ["mt-test:en-pt", "mt-test:pt-en"]
    assert sorted(w["model"] for w in workers) == ["bergamot:en-pt", "bergamot:pt-en"]


@pytest.mark.usefixtures("mt_worker")
async def test_unserved_pair_gets_400_listing_served_pairs(client: httpx.AsyncClient) -> None:
    response = await post(client, text=TABLE, source="en", target="de")
    assert response.status_code == 400
    assert "served pairs: ['en-pt', 'pt-en']" in response.json()["detail"]


@pytest.mark.usefixtures("mt_worker")
@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"text": "", "source": "en", "target": "pt"}, "body.text"),
        ({"text": " \n\t", "source": "en", "target": "pt"}, "text is empty"),
        ({"text": "a" * 20_001, "source": "en", "target": "pt"}, "at most 20000 characters"),
        ({"text": TABLE, "source": "english", "target": "pt"}, "body.source"),
        ({"text": TABLE, "target": "pt"}, "body.source"),
    ],
)
async def test_bad_bodies_get_422_with_a_message(
    client: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    response = await client.post("/v1/translate", json=body)
    assert response.status_code == 422 and fragment in response.json()["detail"], response.text


@pytest.mark.usefixtures("stt_worker")
async def test_no_mt_worker_gives_503_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await post(client, text=TABLE, source="en", target="pt")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "no translation worker" in response.json()["detail"]


@pytest.mark.usefixtures("mt_worker")
async def test_control_characters_get_400(client: httpx.AsyncClient) -> None:
    response = await post(client, text="Good\x00 morning.", source="en", target="pt")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_text"
    assert "U+0000 at offset 4" in response.json()["detail"]
