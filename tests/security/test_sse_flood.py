"""Many SSE listeners cost one Redis reader per session, not a connection each; listeners are
capped per key and per gateway (429); a listener that falls behind is dropped without holding
up the others; and the gauges count listeners and live sessions."""

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from services.gateway.auth import Identity
from services.gateway.live.engine.fanout import Entry, Fanout, Notice
from services.gateway.live.engine.store import SessionStore
from services.gateway.settings import GatewaySettings
from shared import bus
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.live_helpers import listening
from tests.polling import eventually

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]
PER_KEY = 3
PER_GATEWAY = 5


@dataclass
class Gateway:
    http: httpx.AsyncClient
    address: str
    redis: aioredis.Redis
    session_id: str
    keys: dict[str, str]


@pytest.fixture
async def gateway(clean_redis: str, aredis: aioredis.Redis) -> AsyncIterator[Gateway]:
    keys = {
        name: (await keystore.create(aredis, role, f"{name}@example.com"))[0]
        for name, role in (("l1", "listener"), ("l2", "listener"), ("p", "presenter"))
    }
    info = await SessionStore(aredis, 600, 100).create(owner="p@example.com", listeners=["*"])
    settings = GatewaySettings(
        redis_url=clean_redis,
        auth_cache_s=0,
        rate_limit_burst=10_000,
        sse_max_listeners_per_key=PER_KEY,
        sse_max_listeners=PER_GATEWAY,
    )
    async with running_app(settings) as app, listening(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=20) as http:
            yield Gateway(http, address, aredis, info.id, keys)


async def gauge(gw: Gateway, name: str) -> float:
    text = (await gw.http.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match[1])


async def blocked_readers(gw: Gateway) -> int:
    if not bus.is_cluster(gw.redis):
        return int((await gw.redis.info("clients"))["blocked_clients"])
    per_node = await gw.redis.info("clients", target_nodes="primaries")  # type: ignore[call-arg]
    return sum(int(info["blocked_clients"]) for info in per_node.values())


@contextlib.asynccontextmanager
async def listener(gw: Gateway, key: str) -> AsyncIterator[httpx.Response]:
    url = f"/v1/sessions/{gw.session_id}/events"
    headers = {"Authorization": f"Bearer {gw.keys[key]}"}
    async with gw.http.stream("GET", url, headers=headers) as response:
        yield response


async def first_event(response: httpx.Response) -> dict[str, object]:
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            return json.loads(line.removeprefix("data:"))  # type: ignore[no-any-return]
    raise AssertionError("the stream ended without an event")


async def test_listeners_share_one_reader_and_are_capped(gateway: Gateway) -> None:
    gw = gateway
    baseline = await blocked_readers(gw)  # the gateway's reply reader
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(listener(gw, "l1")) for _ in range(PER_KEY)]
        assert all(r.status_code == 200 for r in opened)
        async with listener(gw, "l1") as refused:
            assert refused.status_code == 429
            assert "listeners" in json.loads(await refused.aread())["detail"]
        opened += [await stack.enter_async_context(listener(gw, "l2")) for _ in range(2)]
        assert all(r.status_code == 200 for r in opened)
        async with listener(gw, "l2") as full:  # l2 is under its own cap; the gateway is not
            assert full.status_code == 429

        assert await gauge(gw, "pyparrot_sse_listeners") == PER_GATEWAY
        await asyncio.sleep(0.2)  # let every listener reach its queue
        assert await blocked_readers(gw) == baseline + 1  # one XREAD for five listeners
        store = SessionStore(gw.redis, 600, 100)
        await store.publish(gw.session_id, {"type": "stt_final", "text": "to everyone"})
        events = await asyncio.wait_for(asyncio.gather(*map(first_event, opened)), 10)
        assert [e["text"] for e in events] == ["to everyone"] * PER_GATEWAY

    async def all_gone() -> bool:
        idle = await blocked_readers(gw) == baseline
        return idle and await gauge(gw, "pyparrot_sse_listeners") == 0

    await eventually(all_gone, 10)
    async with listener(gw, "l1") as again:  # the seats were given back
        assert again.status_code == 200


async def test_the_live_sessions_gauge_counts_sockets(gateway: Gateway) -> None:
    gw = gateway
    assert await gauge(gw, "pyparrot_live_sessions") == 0
    async with connect(f"ws://{gw.address}/ws/converse") as ws:
        await ws.send(json.dumps({"type": "auth", "api_key": gw.keys["p"]}))
        assert json.loads(await ws.recv())["type"] == "session_started"
        assert await gauge(gw, "pyparrot_live_sessions") == 1

    async def closed() -> bool:
        return await gauge(gw, "pyparrot_live_sessions") == 0

    await eventually(closed, 10)


async def test_a_listener_that_falls_behind_is_dropped_alone(
    clean_redis: str, aredis: aioredis.Redis
) -> None:
    settings = GatewaySettings(redis_url=clean_redis, sse_listener_queue=4)
    store = SessionStore(aredis, 600, 100)
    info = await store.create(owner="p@example.com", listeners=["*"])
    who = Identity("l@example.com", "listener", "k1")
    async with running_app(settings) as app:
        fanout: Fanout = app.state.fanout
        slow = fanout.events(who, info.id, "0-0", "0-0")
        fast = fanout.events(who, info.id, "0-0", "0-0")
        try:
            await falls_behind(store, info.id, slow, fast)
        finally:
            await slow.aclose()
            await fast.aclose()
        assert fanout.readers == {}  # the last listener gone, the reader stopped


async def falls_behind(
    store: SessionStore,
    session_id: str,
    slow: AsyncIterator[Entry | Notice],
    fast: AsyncIterator[Entry | Notice],
) -> None:
    first = [asyncio.create_task(anext(slow)), asyncio.create_task(anext(fast))]
    await asyncio.sleep(0.1)  # both registered with the one reader, waiting
    await store.publish(session_id, {"type": "stt_final", "text": "0"})
    got = [await asyncio.wait_for(t, 5) for t in first]
    assert all(isinstance(g, Entry) for g in got)
    texts = []
    for n in range(1, 11):  # the fast one reads each as it comes; the slow one none
        await store.publish(session_id, {"type": "stt_final", "text": str(n)})
        entry = await asyncio.wait_for(anext(fast), 5)
        assert isinstance(entry, Entry)
        texts.append(entry.event["text"])
    assert texts == [str(n) for n in range(1, 11)]  # the fast one got every event
    dropped = await asyncio.wait_for(anext(slow), 5)
    assert isinstance(dropped, Notice) and dropped.data["code"] == "too_slow"
