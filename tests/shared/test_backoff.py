"""The one reconnection backoff (Redis connect, the worker loop, the gateway's reply reader):
doubling, capped, jittered, and reset by a success."""

from shared.bus import Backoff


def test_pauses_double_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(cap_s=2.0, base_s=0.1)
    pauses = [backoff.next_s() for _ in range(12)]
    for failures, pause_s in enumerate(pauses):
        ceiling = min(2.0, 0.1 * 2**failures)
        assert ceiling / 2 <= pause_s <= ceiling
    assert max(pauses) <= 2.0 and pauses[-1] >= 1.0


def test_processes_that_fail_together_retry_apart() -> None:
    """Equal jitter: a hundred gateways and workers that lost Redis at once spread out."""
    firsts = set()
    for _ in range(100):
        backoff = Backoff(cap_s=5.0)
        for _ in range(5):
            pause_s = backoff.next_s()
        firsts.add(round(pause_s, 3))
    assert len(firsts) > 50


def test_a_success_starts_the_backoff_afresh() -> None:
    backoff = Backoff(cap_s=5.0, base_s=0.1)
    for _ in range(10):
        backoff.next_s()
    backoff.reset()
    assert backoff.next_s() <= 0.1
