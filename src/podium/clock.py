"""The one injectable clock. Everything that reads time takes a Clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

from podium.errors import BadRequest

__all__ = ["Clock", "ManualClock", "SystemClock", "iso_time", "parse_time"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


# --- times on the wire ---------------------------------------------------------------
# RunPod's REST API writes times as ISO 8601 in UTC with milliseconds
# ("2024-07-12T19:14:40.144Z"); Podium does the same wherever it shows a time.


def iso_time(seconds: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g. 2024-07-12T19:14:40.144Z."""
    stamp = datetime.fromtimestamp(round(seconds, 3), tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_time(text: str, name: str) -> float:
    """Epoch seconds from ISO 8601 (UTC when no offset is given) or from a whole number
    of epoch milliseconds; BadRequest naming `name` otherwise."""
    raw = text.strip()
    if raw.isdigit() and len(raw) <= 15:
        return int(raw) / 1000.0
    try:
        stamp = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise BadRequest(
            f"`{name}` must be an ISO 8601 time (2024-07-12T19:14:40Z) or epoch "
            f"milliseconds, got {raw[:40]!r}."
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()
