"""Delays between connection attempts: exponential backoff with "equal jitter".

The n-th consecutive failure waits a random time in [d/2, d] with
d = min(maximum, initial * 2**(n-1)). The delay doubles up to a cap so that a router
that is down is not hammered; the random half spreads the shippers of many containers
that lost the same router so that they do not all come back in the same instant, and
the fixed half keeps a floor under the delay.
"""

from __future__ import annotations

import random
from typing import Callable


class Backoff:
    def __init__(self, initial: float, maximum: float,
                 rng: Callable[[], float] = random.random):
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._rng = rng

    def ceiling(self, failures: int) -> float:
        """d for the ``failures``-th consecutive failure (the most it waits)."""
        # the exponent is capped so that a router down for days cannot overflow it
        return min(self.maximum, self.initial * 2 ** min(failures - 1, 60))

    def next(self) -> float:
        """Counts a failure and returns how long to wait before the next attempt."""
        self.failures += 1
        d = self.ceiling(self.failures)
        return d / 2 + self._rng() * d / 2

    def reset(self) -> None:
        self.failures = 0
