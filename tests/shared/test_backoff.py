"""The reconnect backoff: doubling steps up to a cap, each delay jittered within its step."""

from shared.backoff import Backoff


def test_steps_double_up_to_the_cap_and_reset() -> None:
    most = Backoff(max_s=1.0, rng=lambda: 1.0)  # the top of each step's range
    assert [round(most.next_s(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    most.reset()
    assert most.next_s() == 0.1


def test_jitter_keeps_each_delay_between_half_and_all_of_its_step() -> None:
    least = Backoff(max_s=1.0, rng=lambda: 0.0)
    assert [round(least.next_s(), 3) for _ in range(5)] == [0.05, 0.1, 0.2, 0.4, 0.5]
    drawn = Backoff(max_s=5.0)
    for step_s in (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0):
        assert step_s / 2 <= drawn.next_s() <= step_s
