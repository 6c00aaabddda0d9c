"""A request that stops waiting takes its job back off the stream, so no worker runs it."""

import asyncio

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Bridge, JobTimeout
from services.gateway.metrics import gateway_metrics
from shared import bus
from shared.messages import TranslateRequest
from tests.polling import eventually

pytestmark = pytest.mark.redis

STREAM = "pp:jobs:test:withdraw"


def _job(bridge: Bridge) -> object:
    return bridge.job(TranslateRequest(text="hello", source="en", target="pt"), 30)


async def test_a_cancelled_request_withdraws_its_queued_job(aredis: aioredis.Redis) -> None:
    metrics = gateway_metrics(CollectorRegistry())
    bridge = Bridge(aredis, "wd", metrics)
    await bridge.start()
    other = asyncio.create_task(bridge.request(STREAM, _job(bridge), "mt", 30))
    try:
        waiting = asyncio.create_task(bridge.request(STREAM, _job(bridge), "mt", 30))
        await eventually(lambda: _length_is(aredis, 2), 5.0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

        async def counted() -> bool:  # the XDEL's reply comes back before it is counted
            return bool(metrics.jobs_withdrawn._value.get() == 1)

        await eventually(counted, 5.0)
        assert await aredis.xlen(STREAM) == 1  # the other job stays queued
    finally:
        other.cancel()
        await asyncio.wait([other])
        await bridge.stop()


async def test_a_timed_out_request_withdraws_its_job(aredis: aioredis.Redis) -> None:
    bridge = Bridge(aredis, "wd2", gateway_metrics(CollectorRegistry()))
    await bridge.start()
    try:
        with pytest.raises(JobTimeout):
            await bridge.request(STREAM, _job(bridge), "mt", 0.2)
        await eventually(lambda: _length_is(aredis, 0), 5.0)
    finally:
        await bridge.stop()


async def test_a_job_a_worker_already_read_is_left_to_finish(aredis: aioredis.Redis) -> None:
    bridge = Bridge(aredis, "wd3", gateway_metrics(CollectorRegistry()))
    await bridge.start()
    await bus.ensure_group(aredis, STREAM, "mt")
    try:
        waiting = asyncio.create_task(bridge.request(STREAM, _job(bridge), "mt", 30))
        await eventually(lambda: _length_is(aredis, 1), 5.0)
        read = await aredis.xreadgroup("mt", "worker-a", {STREAM: ">"}, count=1)
        assert read and read[0][1], read  # a worker holds it now
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await eventually(lambda: _length_is(aredis, 0), 5.0)
        # The worker has the job in hand: it runs it and acknowledges it as usual.
        assert await aredis.xack(STREAM, "mt", read[0][1][0][0]) == 1
    finally:
        await bridge.stop()


async def _length_is(redis: aioredis.Redis, length: int) -> bool:
    return await redis.xlen(STREAM) == length


async def test_a_request_cancelled_while_its_submit_is_in_flight_withdraws_it(
    aredis: aioredis.Redis,
) -> None:
    metrics = gateway_metrics(CollectorRegistry())
    bridge = Bridge(aredis, "wd4", metrics)
    await bridge.start()
    try:
        waiting = asyncio.create_task(bridge.request(STREAM, _job(bridge), "mt", 30, 100))
        await asyncio.sleep(0)  # the request has queued its submit and waits for it
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

        async def withdrawn() -> bool:
            return bool(metrics.jobs_withdrawn._value.get() == 1)

        await eventually(withdrawn, 5.0)  # added after the request was gone, then taken back
        assert await aredis.xlen(STREAM) == 0
    finally:
        await bridge.stop()
