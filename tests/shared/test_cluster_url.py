"""Naming a Redis Cluster in REDIS_URL, and reading stream keys without asking a node."""

import pytest

from shared import bus


def test_a_cluster_url_names_its_seeds_and_credentials() -> None:
    seeds, options = bus.cluster_seeds("redis+cluster://user:p%40ss@10.0.0.1:7000,[::1]:7001")
    assert seeds == [("10.0.0.1", 7000), ("::1", 7001)]
    assert options == {"ssl": False, "username": "user", "password": "p@ss"}
    assert bus.cluster_seeds("rediss+cluster://h:1")[1] == {"ssl": True}
    assert bus.is_cluster_url("redis+cluster://h:1") and not bus.is_cluster_url("redis://h:1/0")


@pytest.mark.parametrize(
    "url", ["redis+cluster://h:1/2", "redis+cluster://h", "redis+cluster://h:x", "redis://h:1"]
)
def test_a_bad_cluster_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        bus.cluster_seeds(url)


async def test_stream_reads_name_their_keys_without_a_round_trip() -> None:
    parser = bus._StreamKeys()  # never initialized: no node to ask
    group = ("XREADGROUP", b"GROUP", "streams", "c", b"COUNT", "5", b"BLOCK", "100", b"STREAMS")
    assert await parser.get_keys(*group, "a", "a:bg", ">", ">") == ("a", "a:bg")
    assert await parser.get_keys("XREAD", b"COUNT", "1", b"STREAMS", "r", "0-0") == ("r",)
