"""The one reconnect backoff: exponential, capped, with jitter.

Every process that loses Redis retries through this, so a restart of Redis is not met by
every worker and gateway reconnecting in the same instant: each delay is drawn between half
and all of the current step ("equal jitter"), and the step doubles up to a cap.
"""

import random
from collections.abc import Callable

FIRST_S = 0.1


class Backoff:
    """Delays for consecutive failures; ``reset()`` after a success."""

    def __init__(
        self, max_s: float, first_s: float = FIRST_S, rng: Callable[[], float] = random.random
    ) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._rng = rng
        self._step_s = first_s

    def reset(self) -> None:
        """Start again from the first step (the operation succeeded)."""
        self._step_s = self.first_s

    def next_s(self) -> float:
        """The delay before the next attempt, and one step further for the one after."""
        step_s = min(self._step_s, self.max_s)
        self._step_s = min(self._step_s * 2, self.max_s)
        return step_s * (0.5 + 0.5 * self._rng())
