"""The scale-out benchmark's own machinery: the exactly-once bookkeeping, the profile
buckets, and one short real phase."""

from collections import Counter

import pytest
import redis

from bench import scaleout, scaleout_profile
from bench.scaleout_producer import ProducerResult, _tally
from bench.stack import Stack


def test_tally_tells_once_missing_duplicated_and_stray() -> None:
    out = ProducerResult()
    _tally(["a", "b", "c"], Counter({"a": 1, "b": 2, "x": 1}), out)
    assert (out.submitted, out.replies) == (3, 4)
    assert (out.once, out.missing, out.duplicated, out.stray) == (1, 1, 1, 1)


def test_profile_buckets_by_innermost_known_layer_and_drops_idle() -> None:
    root = "serve (bench/scaleout_worker.py:77);_run_once (asyncio/base_events.py:1922)"
    collapsed = "\n".join(
        [
            f"{root};Worker._process (shared/worker.py:246);unpack (shared/messages.py:266) 3",
            f"{root};_send (redis/asyncio/connection.py:1);write (asyncio/selector_events.py:1) 1",
            f"{root};EpollSelector.select (selectors.py:468) 50",
        ]
    )
    shares = dict(scaleout_profile.shares(collapsed))
    assert shares == {
        scaleout_profile.BUCKETS[0][0]: 0.75,  # the envelope
        scaleout_profile.BUCKETS[1][0]: 0.25,  # the socket write, not asyncio or redis-py
    }


@pytest.mark.timeout(60)
def test_a_short_phase_counts_every_reply() -> None:
    config = scaleout.ScaleConfig(sleep_ms=20, warmup_s=0.3, measure_s=1.0)
    layout = scaleout.sleeping_layout(scaleout.TASKS, 4, config)
    with Stack() as stack:
        result = scaleout.run_phase(stack, layout, config, "t")
        client = redis.Redis.from_url(stack.redis_url)
        leftover = list(client.scan_iter(match="pp:worker:*"))
        client.close()
    assert result.check.ok, result.check
    assert result.check.submitted == result.check.worker_done > 20
    # 4 workers × 20 ms: about 200 jobs/s at most (the rate is taken between completions,
    # so a little over), and more than one worker's 50 if the four really run at once
    assert 50 < result.throughput <= 220
    assert leftover == []  # every worker stopped cleanly and removed its heartbeat
