"""The bucket math of podium.series: the sketch against a sorted-list oracle, merging,
the bounds, and the series the route answers."""

from __future__ import annotations

import math
import random

import pytest

from podium import series
from podium.series import (
    BINS,
    BUCKET_FIELDS,
    INTERVALS,
    MAX_S,
    MIN_S,
    RELATIVE_ERROR,
    Delta,
    Recorder,
    bin_of,
    bin_value,
    merge,
    quantile,
)


def oracle(values: list[float], q: float) -> float:
    """The true q-quantile by nearest rank: the ⌈q·n⌉-th shortest value."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def sketch(values: list[float]) -> dict[int, int]:
    bins: dict[int, int] = {}
    for v in values:
        bins[bin_of(v)] = bins.get(bin_of(v), 0) + 1
    return bins


def within(estimate: float | None, true: float) -> bool:
    assert estimate is not None
    clamped = min(max(true, MIN_S), MAX_S)
    return abs(estimate - clamped) <= RELATIVE_ERROR * clamped * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_percentiles_are_within_the_stated_error_of_a_sorted_list(seed: int) -> None:
    rng = random.Random(seed)  # fixed seeds: the same cases every run
    shape = seed % 4
    n = rng.randint(1, 3000)
    if shape == 0:  # log-uniform over the sketch's whole range
        values = [MIN_S * (MAX_S / MIN_S) ** rng.random() for _ in range(n)]
    elif shape == 1:  # a realistic latency: lognormal around 800 ms
        values = [rng.lognormvariate(math.log(0.8), 0.6) for _ in range(n)]
    elif shape == 2:  # two modes: fast cache hits and slow cold paths
        values = [rng.choice((0.004, 12.0)) * rng.uniform(0.9, 1.1) for _ in range(n)]
    else:  # few distinct values, ties everywhere
        values = [rng.choice((0.05, 0.05, 0.5, 5.0)) for _ in range(n)]
    bins = sketch(values)
    for q in (0.0, 0.5, 0.70, 0.90, 0.98, 1.0):
        assert within(quantile(bins, q), oracle(values, q)), (seed, q)


@pytest.mark.parametrize("seed", range(5))
def test_the_series_percentiles_are_the_quantile_of_each_bin_set(seed: int) -> None:
    rng = random.Random(seed)
    bins = {rng.randint(0, BINS - 1): rng.randint(0, 9) for _ in range(rng.randint(0, 40))}
    got = series._percentiles(bins)
    for name, q in (("p70", 0.7), ("p90", 0.9), ("p98", 0.98)):
        want = quantile(bins, q)
        assert got[name] == (None if want is None else round(want * 1000, 1))


def test_a_merge_of_sketches_is_the_sketch_of_all_the_times() -> None:
    rng = random.Random(7)
    parts = [[rng.expovariate(1 / 0.3) for _ in range(rng.randint(0, 400))] for _ in range(9)]
    merged = merge({f"e:{i}": n for i, n in sketch(p).items()} for p in parts)
    bins = {int(k[2:]): n for k, n in merged.items()}
    assert bins == sketch([v for p in parts for v in p])
    everything = [v for p in parts for v in p]
    for q in (0.7, 0.9, 0.98):
        assert within(quantile(bins, q), oracle(everything, q))


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, MIN_S),  # instant jobs count as 1 ms
        (-5.0, MIN_S),
        (float("nan"), MIN_S),
        (MIN_S, MIN_S),
        (MAX_S, MAX_S),
        (1e400, MAX_S),  # inf: the top bin, never an index past it
        (10 * 365 * 86400.0, MAX_S),  # a timestamp years away
    ],
)
def test_times_outside_the_range_land_in_the_end_bins(seconds: float, expected: float) -> None:
    i = bin_of(seconds)
    assert 0 <= i < BINS
    assert bin_value(i) == expected


def test_the_empty_sketch_has_no_percentile() -> None:
    assert quantile({}, 0.9) is None
    assert quantile({3: 0}, 0.9) is None


def test_counts_add_and_samples_keep_their_peak() -> None:
    a = {"n": 3, "s:COMPLETED": 2, "w": 1, "w:running": 4, "w:idle": 0}
    b = {"n": 1, "s:FAILED": 1, "w": 1, "w:running": 2, "w:idle": 3}
    assert merge([a, b]) == {
        "n": 4,
        "s:COMPLETED": 2,
        "s:FAILED": 1,
        "w": 1,
        "w:running": 4,
        "w:idle": 3,
    }


def test_a_bucket_holds_at_most_its_stated_fields_whatever_the_times() -> None:
    """A hostile key holder controls its jobs' times; every bin of every sketch, every
    status and every sample is still a bounded set of fields."""
    rec = Recorder()
    at = 1_700_000_000.0
    for i in range(BINS + 50):
        t = MIN_S * 1.01**i * 37
        for h in ("d", "e"):
            rec.observe("ep", at, h, t)
        rec.cold_start("ep", at, t, restored=bool(i % 2))
    for status in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT", "IN_QUEUE", "BOGUS"):
        rec.ended("ep", at, status)
    rec.submitted("ep", at)
    rec.retried("ep", at)
    for outcome in ("delivered", "failed", "refused", "other"):
        rec.webhook("ep", at, outcome)
    rec.workers("ep", at, {"running": 1, "idle": 2, "bogus": 9})
    [delta] = rec.drain()
    names = set(delta.add) | set(delta.peak)
    assert len(names) <= BUCKET_FIELDS
    for name in ("IN_QUEUE", "BOGUS", "bogus", "other"):
        assert not any(name in k for k in names)


def test_the_recorder_holds_a_bounded_number_of_minutes() -> None:
    rec = Recorder(max_minutes=3)
    for m in range(5):
        rec.submitted("ep", 60.0 * m)
    kept = sorted(d.minute for d in rec.drain())
    assert kept == [120, 180, 240]
    assert rec.dropped == 2


def test_put_back_merges_a_failed_write_into_the_next_drain() -> None:
    rec = Recorder()
    rec.submitted("ep", 61.0)
    failed = rec.drain()
    rec.submitted("ep", 62.0)
    rec.workers("ep", 63.0, {"idle": 2})
    rec.put_back(failed)
    [delta] = rec.drain()
    assert delta == Delta("ep", 60, {"n": 2}, delta.peak)
    assert delta.peak["w:idle"] == 2


@pytest.mark.parametrize("name", list(INTERVALS))
def test_every_interval_reads_a_few_hundred_points_at_most(name: str) -> None:
    iv = INTERVALS[name]
    assert iv.step_s % iv.width_s == 0
    assert 50 <= iv.points <= 400
    tier = next(t for t in series.TIERS if t.width_s == iv.width_s)
    assert tier.keep_s >= iv.span_s  # the tier still holds the interval's first bucket


def test_an_unknown_interval_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="1h, 6h, 1d, 1w"):
        series.interval("1y")


def test_the_series_puts_each_bucket_at_its_step() -> None:
    iv = INTERVALS["6h"]  # 5-minute steps from minute buckets
    now = 1_700_000_000.0
    start, end = iv.window(now)
    assert end - start == iv.span_s and start <= now < end
    last = end - iv.step_s
    buckets = {
        last: {"n": 2, "s:COMPLETED": 1, "e:100": 1, "w": 1, "w:idle": 1},
        last + 60: {"n": 1, "s:FAILED": 1, "e:120": 1, "w": 1, "w:idle": 3},
        start: {"cs": 1, "cr": 1, "c:90": 1, "ws": 2, "wo": 1, "wf": 1},
        start - 60: {"n": 99},  # before the window: left out
    }
    out = series.series("ep", iv, now, buckets)
    assert len(out["time"]) == iv.points == len(out["requests"]["total"])
    assert out["time"][0] == start and out["time"][-1] == last
    assert out["requests"]["total"][-1] == 3
    assert out["requests"]["completed"][-1] == 1 and out["requests"]["failed"][-1] == 1
    assert out["workers"]["idle"][-1] == 3  # the peak of the step's samples
    assert out["workers"]["idle"][0] is None  # no sample: no value (not zero)
    # two times: P70 and P98 are the longer one (⌈0.7·2⌉ = 2nd)
    assert out["executionMs"]["p70"][-1] == pytest.approx(bin_value(120) * 1000, abs=0.1)
    assert out["executionMs"]["p98"][-1] == pytest.approx(bin_value(120) * 1000, abs=0.1)
    assert out["executionMs"]["p70"][0] is None
    assert out["coldStarts"]["total"][0] == 1 and out["coldStarts"]["restored"][0] == 1
    assert out["webhooks"] == {
        "sent": [2] + [0] * (iv.points - 1),
        "succeeded": [1] + [0] * (iv.points - 1),
        "failed": [1] + [0] * (iv.points - 1),
    }
    assert out["totals"]["requests"]["total"] == 3
    assert out["totals"]["coldStartMs"]["p90"] == pytest.approx(bin_value(90) * 1000, abs=0.1)
