"""Per-endpoint, per-operation fixed-window rate limits (RunPod: per 10 s)."""

from __future__ import annotations

import math

from podium.clock import Clock
from podium.errors import RateLimited
from podium.jobs import RATE_LIMITS, RATE_WINDOW_S

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self,
        clock: Clock,
        limits: dict[str, int] | None = None,
        window_s: float = RATE_WINDOW_S,
        enabled: bool = True,
    ) -> None:
        self._clock = clock
        self._limits = RATE_LIMITS if limits is None else limits
        self._window = window_s
        self._enabled = enabled
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}  # -> (window no, count)

    def hit(self, endpoint_id: str, op: str) -> None:
        limit = self._limits.get(op)
        if not self._enabled or limit is None:
            return
        now = self._clock.now()
        window = int(now // self._window)
        key = (endpoint_id, op)
        seen_window, count = self._counts.get(key, (window, 0))
        if seen_window != window:
            count = 0
        if count >= limit:
            retry_after = max(1, math.ceil((window + 1) * self._window - now))
            raise RateLimited(
                f"Rate limit for {op} on endpoint {endpoint_id} is {limit} requests per "
                f"{self._window:g} s; retry in {retry_after} s.",
                retry_after=retry_after,
            )
        self._counts[key] = (window, count + 1)
