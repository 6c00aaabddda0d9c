"""A busy stage variant spread over several streams: the gateway puts each job on one part,
every worker of the variant reads all of them, and each job is answered once."""

from collections import Counter

import pytest
import redis.asyncio as aioredis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from services.gateway.bridge import pick_part
from shared import streams
from shared.messages import Transcript
from tests.shared.workers import GROUP, STREAM, answer_all, settings

SPLIT = {streams.tag(STREAM): 3}


def test_parts_spread_over_the_slot_space_and_keep_their_lanes_together() -> None:
    parts = streams.parts(STREAM, 3)
    assert len(set(parts)) == 3 and streams.parts(STREAM, 3) == parts  # stable names
    thirds = [key_slot(p.encode()) * 3 // REDIS_CLUSTER_HASH_SLOTS for p in parts]
    assert thirds == [0, 1, 2]
    for part in parts:
        lanes = (part, streams.background(part), streams.dead(part))
        assert len({key_slot(lane.encode()) for lane in lanes}) == 1
    assert streams.parts(STREAM, 1) == (STREAM,)


def test_a_job_goes_to_a_part_and_a_background_job_to_a_parts_lane() -> None:
    parts = streams.parts(STREAM, 3)
    chosen = Counter(pick_part(STREAM, SPLIT) for _ in range(300))
    assert set(chosen) == set(parts) and min(chosen.values()) > 50
    background = pick_part(streams.background(STREAM), SPLIT)
    assert background in {streams.background(p) for p in parts}
    assert pick_part(STREAM, {}) == STREAM  # not split


@pytest.mark.redis
async def test_every_job_on_every_part_is_answered_once(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    cfg = settings(clean_redis, concurrency=2, stream_parts=SPLIT)
    replies, _worker = await answer_all(aredis, cfg, 90, split=SPLIT)
    assert all(isinstance(r.payload, Transcript) for r in replies)
    assert [r.payload.text for r in replies] == [str(2 * n) for n in range(1, 91)]  # type: ignore[union-attr]
    for part in streams.parts(STREAM, 3):
        assert await aredis.xlen(part) == 0
        assert (await aredis.xpending(part, GROUP))["pending"] == 0
    assert not await aredis.exists(STREAM)  # nothing went to the unsplit name
