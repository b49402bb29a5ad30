"""The one injectable clock. Everything that reads time takes a Clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

from podium.codec import ascii_digits
from podium.errors import BadRequest

__all__ = [
    "SKEW_MAX_S",
    "TIME_MAX",
    "TIME_MIN",
    "Clock",
    "ManualClock",
    "SystemClock",
    "check_time",
    "iso_time",
    "parse_time",
]


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


# The times ISO 8601 writes with a four-digit year: 0001-01-01 to 9999-12-31 (UTC).
TIME_MIN = -62_135_596_800.0
TIME_MAX = 253_402_300_799.999
# How far ahead of this gateway's clock a time a worker reports may be (clock skew).
SKEW_MAX_S = 86_400.0


def iso_time(seconds: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g. 2024-07-12T19:14:40.144Z.
    Never raises: a time past either end of the four-digit years (a stored value that
    slipped past the checks at the door) shows as that end, NaN as the epoch."""
    if seconds != seconds:  # NaN
        seconds = 0.0
    stamp = datetime.fromtimestamp(round(min(max(seconds, TIME_MIN), TIME_MAX), 3), tz=UTC)
    return (
        f"{stamp.year:04d}-"
        + stamp.strftime("%m-%dT%H:%M:%S.")
        + f"{stamp.microsecond // 1000:03d}Z"
    )


def check_time(value: float, name: str, earliest: float, latest: float) -> float:
    """`value` (epoch seconds from outside, to be stored) if it lies in [earliest,
    latest], else BadRequest naming `name` and the window: a time a later read could not
    show (the year 300000), or one far from this gateway's clock, is refused at the door."""
    if not earliest <= value <= latest:  # NaN fails too
        raise BadRequest(
            f"`{name}` must be a time between {iso_time(earliest)} and {iso_time(latest)} "
            f"(check the worker's clock), got {value!r:.40} seconds after the epoch."
        )
    return value


def parse_time(text: str, name: str) -> float:
    """Epoch seconds from ISO 8601 (UTC when no offset is given) or from a whole number
    of epoch milliseconds; BadRequest naming `name` otherwise."""
    raw = text.strip()
    if ascii_digits(raw) and len(raw) <= 15:
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
