"""One client's long text must not hold translation for everyone: the gateway sends it as
bounded jobs, a few at a time, so another client's short text is served in between. A real
Bergamot worker loop on a real Redis, behind the real gateway."""

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from services.gateway.settings import GatewaySettings
from services.mt.__main__ import loops
from services.mt.handler import translate_text
from services.mt.model import MtModel, load_model
from services.mt.settings import MtSettings
from shared import streams
from tests.apps import running_app, running_workers
from tests.polling import eventually

pytestmark = [pytest.mark.redis, pytest.mark.model]

STREAM = streams.jobs("mt", "en-pt")
# Distinct sentences (numbered), so the worker's sentence cache cannot make it quick.
LONG = "\n\n".join(
    f"In lecture {i} we talked about clocks and the ordering of events. Replica {i} keeps "
    f"a copy of the data, and keeping {i} copies consistent is much harder than it first "
    f"appears. Question {i}: why does the network lose messages?"
    for i in range(1, 61)
)


@pytest.fixture(scope="module")
def mt_settings() -> MtSettings:
    return MtSettings(pairs=["en-pt"])


@pytest.fixture(scope="module")
def bergamot(mt_settings: MtSettings) -> MtModel:
    return load_model(mt_settings)


@pytest.fixture
async def client(
    clean_redis: str, bergamot: MtModel, mt_settings: MtSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, and one MT worker (one job at a time) serving en-pt."""
    settings = mt_settings.model_copy(
        update={"redis_url": clean_redis, "worker_name": "mt", "block_ms": 50}
    )
    gateway = GatewaySettings(redis_url=clean_redis, request_timeout_s=60, registry_cache_s=0)
    async with (
        running_workers(clean_redis, loops(bergamot, settings)),
        running_app(gateway) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        yield http


async def test_a_short_text_is_served_while_a_long_one_is_translated(
    client: httpx.AsyncClient,
    aredis: aioredis.Redis,
    bergamot: MtModel,
    mt_settings: MtSettings,
) -> None:
    assert len(LONG) > 10_000
    long = asyncio.create_task(
        client.post("/v1/translate", json={"text": LONG, "source": "en", "target": "pt"})
    )

    async def worker_busy_with_it() -> bool:
        return bool((await aredis.xpending(STREAM, streams.group("mt")))["pending"])

    await eventually(worker_busy_with_it, timeout_s=20)
    short = await client.post(
        "/v1/translate", json={"text": "Good morning.", "source": "en", "target": "pt"}
    )
    assert short.status_code == 200 and short.json()["translation"] == "Bom dia."
    assert not long.done(), "the short text waited for the whole of the long one"

    response = await long
    assert response.status_code == 200, response.text
    translation = response.json()["translation"]
    # Complete and in order: what the worker gives for the whole text in one job.
    assert translation == translate_text(bergamot, mt_settings, LONG, "en-pt")
    paragraphs = translation.split("\n\n")
    assert [re.findall(r"\d+", p)[0] for p in paragraphs] == [str(i) for i in range(1, 61)]


async def test_ten_thousand_dots_are_answered_and_kept(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/translate", json={"text": "." * 10_000, "source": "en", "target": "pt"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["translation"].replace(" ", "") == "." * 10_000
