"""Retry delays: exponential, capped, with jitter. Pure: no I/O, no clock.

Attempt n (0-based) waits `min(cap, base * factor**n)`, scaled by a random factor in
`[1 - jitter, 1]` so that many workers retrying against one recovering gateway spread out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.5  # fraction of the delay that is random

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.factor < 1:
            raise ValueError(
                f"Backoff needs 0 < base_s <= cap_s and factor >= 1, got base_s={self.base_s}, "
                f"cap_s={self.cap_s}, factor={self.factor}."
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff jitter must be between 0 and 1, got {self.jitter}.")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        # Past ~64 doublings the cap has long been reached; avoid float overflow.
        ceiling = min(self.cap_s, self.base_s * self.factor ** min(attempt, 64))
        return ceiling * (1.0 - self.jitter * rand())
