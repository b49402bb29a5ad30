"""clock.py: times on the wire. A time shown must never raise, whatever was stored."""

from __future__ import annotations

import pytest

from podium.clock import TIME_MAX, check_time, iso_time, parse_time
from podium.errors import BadRequest


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (1_720_811_680.144, "2024-07-12T19:14:40.144Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (1e15, "9999-12-31T23:59:59.998Z"),  # past the year 9999: its last moment
        (TIME_MAX + 1, "9999-12-31T23:59:59.998Z"),
        (-1e20, "0001-01-01T00:00:00.000Z"),
        (float("inf"), "9999-12-31T23:59:59.998Z"),
        (float("nan"), "1970-01-01T00:00:00.000Z"),
    ],
)
def test_iso_time_shows_every_float(seconds, shown):
    assert iso_time(seconds) == shown


def test_check_time_refuses_what_lies_outside_the_window():
    assert check_time(5.0, "t", 0.0, 10.0) == 5.0
    for bad in (-1.0, 11.0, float("nan"), 1e15):
        with pytest.raises(BadRequest, match="`t` must be a time between 1970-01-01"):
            check_time(bad, "t", 0.0, 10.0)


@pytest.mark.parametrize("text", ["²", "١٢", "1_000"])
def test_parse_time_takes_only_ascii_digits_as_milliseconds(text):
    with pytest.raises(BadRequest, match="`since` must be an ISO 8601 time"):
        parse_time(text, "since")
