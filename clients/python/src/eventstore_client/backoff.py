"""Exponential backoff between reconnects and retries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Backoff is an exponential backoff policy with full jitter.

    The n-th wait (from 0) is drawn uniformly from
    ``[delay_n * (1 - jitter), delay_n]`` where
    ``delay_n = min(initial * multiplier**n, maximum)``. ``attempts`` bounds
    the number of waits; ``None`` (the default) never gives up.
    """

    #: initial is the first delay in seconds (default 0.1).
    initial: float = 0.1
    #: maximum caps every delay, in seconds (default 10).
    maximum: float = 10.0
    #: multiplier grows the delay after each attempt (default 2).
    multiplier: float = 2.0
    #: jitter is the share of each delay that is randomised (default 0.2).
    jitter: float = 0.2
    #: attempts is how many delays are given before giving up.
    attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")
        if self.attempts is not None and self.attempts < 0:
            raise ValueError("attempts must not be negative")

    def delays(self) -> Iterator[float]:
        """delays yields the waits in seconds, one per attempt."""
        delay = self.initial
        n = 0
        while self.attempts is None or n < self.attempts:
            yield delay * (1 - self.jitter * random.random())
            delay = min(delay * self.multiplier, self.maximum)
            n += 1


#: NO_RETRY is a policy that never retries.
NO_RETRY = Backoff(attempts=0)
