"""Backoff: the retry schedule of result posts."""

from __future__ import annotations

import pytest

from podium.worker.backoff import Backoff


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    b = Backoff(base_s=0.5, factor=2, cap_s=4, jitter=0)
    assert [b.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_scales_each_delay_down_by_at_most_its_fraction() -> None:
    b = Backoff(base_s=1, factor=2, cap_s=30, jitter=0.5)
    assert b.delay(2, rand=lambda: 0.0) == 4.0
    assert b.delay(2, rand=lambda: 1.0) == 2.0
    assert all(2.0 <= b.delay(2) <= 4.0 for _ in range(100))


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert Backoff(cap_s=30, jitter=0).delay(10_000) == 30


def test_the_default_schedule_reaches_a_ten_minute_deadline_in_few_posts() -> None:
    b = Backoff(jitter=0)
    total, attempts = 0.0, 0
    while total < 600:
        total += b.delay(attempts)
        attempts += 1
    assert 20 < attempts < 30  # 0.5, 1, 2, ..., then every 30 s


@pytest.mark.parametrize("kwargs", [{"base_s": 0}, {"cap_s": 0.1}, {"factor": 0.5}, {"jitter": 2}])
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
