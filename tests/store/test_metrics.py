"""The EndpointMetrics role of the store contract (`store.metrics`, podium.series), on
every backend: buckets in every tier, counts that add and samples that keep their peak,
retention, bounds, deletion with the endpoint, and two writers merging."""

from __future__ import annotations

import pytest

from podium.clock import ManualClock
from podium.endpoints import Endpoint, EndpointSpec
from podium.series import BUCKET_FIELDS, MAX_BUCKETS, TIERS, Delta, Recorder, bin_of
from podium.store import JobStore
from tests.conftest import REDIS_URL, drop_redis_prefix, make_store

EP = "ep-metrics"
T0 = 1_700_000_040  # a minute's start (and, below, ten minutes' and an hour's inside it)


async def test_a_delta_lands_in_the_bucket_of_every_tier(store: JobStore) -> None:
    store.clock.advance(T0 + 30 - store.clock.now())  # type: ignore[attr-defined]
    await store.metrics.record([Delta(EP, T0, {"n": 2, "s:COMPLETED": 1}, {"w": 1, "w:idle": 3})])
    for tier in TIERS:
        start = T0 // tier.width_s * tier.width_s
        got = await store.metrics.read(EP, tier.width_s, start, start + tier.width_s)
        assert got == {start: {"n": 2, "s:COMPLETED": 1, "w": 1, "w:idle": 3}}
    assert await store.metrics.read("other", 60, T0, T0 + 60) == {}


async def test_counts_add_up_and_samples_keep_the_peak(store: JobStore) -> None:
    store.clock.advance(T0 + 30 - store.clock.now())  # type: ignore[attr-defined]
    await store.metrics.record([Delta(EP, T0, {"n": 1}, {"w": 1, "w:running": 4, "w:idle": 0})])
    await store.metrics.record([Delta(EP, T0, {"n": 2}, {"w": 1, "w:running": 1, "w:idle": 2})])
    await store.metrics.record([Delta(EP, T0 + 60, {"n": 5}, {})])
    minute = await store.metrics.read(EP, 60, T0, T0 + 120)
    assert minute == {
        T0: {"n": 3, "w": 1, "w:running": 4, "w:idle": 2},
        T0 + 60: {"n": 5},
    }
    hour = T0 // 3600 * 3600
    assert (await store.metrics.read(EP, 3600, hour, hour + 3600))[hour]["n"] == 8


async def test_a_read_covers_only_its_window(store: JobStore) -> None:
    store.clock.advance(T0 + 600 - store.clock.now())  # type: ignore[attr-defined]
    await store.metrics.record([Delta(EP, T0 + 60 * i, {"n": i + 1}, {}) for i in range(10)])
    got = await store.metrics.read(EP, 60, T0 + 120, T0 + 300)
    assert got == {T0 + 120: {"n": 3}, T0 + 180: {"n": 4}, T0 + 240: {"n": 5}}


async def test_buckets_go_once_their_tier_no_longer_keeps_them(store: JobStore) -> None:
    clock = store.clock
    assert isinstance(clock, ManualClock)
    clock.advance(T0 + 30 - clock.now())
    await store.metrics.record([Delta(EP, T0, {"n": 1}, {})])
    minute, _ten, hour = TIERS
    clock.advance(minute.keep_s + minute.width_s + 1)
    await store.metrics.expire(clock.now())
    assert await store.metrics.read(EP, 60, T0 - 60, T0 + 60) == {}
    # Redis drops keys on their TTL, by Redis's own clock; SQLite on expire(). What the
    # coarser tiers hold stays.
    start = T0 // 600 * 600
    assert (await store.metrics.read(EP, 600, start, start + 600))[start] == {"n": 1}
    clock.advance(hour.keep_s)
    await store.metrics.expire(clock.now())
    assert await store.metrics.read(EP, 600, start, start + 600) == {}
    assert await store.metrics.read(EP, 3600, T0 - 3600, T0 + 3600) == {}


async def test_a_delta_older_than_every_tier_keeps_is_not_stored(store: JobStore) -> None:
    clock = store.clock
    assert isinstance(clock, ManualClock)
    clock.advance(T0 + TIERS[-1].keep_s + 7200 - clock.now())
    await store.metrics.record([Delta(EP, T0, {"n": 1}, {})])
    for tier in TIERS:
        assert await store.metrics.read(EP, tier.width_s, T0 - 3600, T0 + 3600) == {}


async def test_hostile_times_stay_within_the_bounds(store: JobStore) -> None:
    """Every bin of every sketch in one minute, in every tier: the bucket holds at most
    BUCKET_FIELDS fields."""
    store.clock.advance(T0 + 30 - store.clock.now())  # type: ignore[attr-defined]
    rec = Recorder()
    for i in range(400):
        t = 1e-4 * 1.06**i
        rec.observe(EP, T0, "d", t)
        rec.observe(EP, T0, "e", t)
        rec.cold_start(EP, T0, t, restored=False)
    rec.observe(EP, T0, "e", float("inf"))
    await store.metrics.record(rec.drain())
    for tier in TIERS:
        start = T0 // tier.width_s * tier.width_s
        [bucket] = (await store.metrics.read(EP, tier.width_s, start, start + 1)).values()
        assert len(bucket) <= BUCKET_FIELDS
        assert bucket[f"e:{bin_of(float('inf'))}"] >= 1
    assert MAX_BUCKETS <= 684  # per endpoint, whatever happens (docs/api.md)


async def test_deleting_the_endpoint_deletes_its_metrics(store: JobStore) -> None:
    store.clock.advance(T0 + 30 - store.clock.now())  # type: ignore[attr-defined]
    endpoint, _ = Endpoint.create(EndpointSpec(name="m"), store.clock.now())
    await store.put_endpoint(endpoint)
    await store.metrics.record(
        [Delta(endpoint.id, T0, {"n": 1}, {}), Delta("keep", T0, {"n": 1}, {})]
    )
    assert await store.delete_endpoint(endpoint.id)
    for tier in TIERS:
        assert await store.metrics.read(endpoint.id, tier.width_s, T0 - 3600, T0 + 3600) == {}
    assert await store.metrics.read("keep", 60, T0, T0 + 60) == {T0: {"n": 1}}


@pytest.mark.redis
async def test_two_gateways_on_one_redis_merge_their_buckets(tmp_path) -> None:
    """Two stores on one prefix (two gateways): each records the events it applied; the
    buckets hold their sum (counts) and peak (samples), and either reads the same."""
    clock = ManualClock(T0 + 30)
    a = await make_store("redis", tmp_path, clock)
    prefix = a.prefix  # type: ignore[attr-defined]
    b = await make_store("redis", tmp_path, clock)
    await b.close()
    from podium.store import open_store

    b = open_store(f"{REDIS_URL}?prefix={prefix}", clock)
    try:
        ra, rb = Recorder(), Recorder()
        for i in range(30):
            (ra if i % 3 else rb).submitted(EP, T0 + i)
            (ra if i % 2 else rb).ended(EP, T0 + i, "COMPLETED")
            (ra if i % 2 else rb).observe(EP, T0 + i, "e", 0.1 * (i + 1))
        ra.workers(EP, T0, {"running": 2, "idle": 1})
        rb.workers(EP, T0 + 5, {"running": 1, "idle": 4})
        await a.metrics.record(ra.drain())
        await b.metrics.record(rb.drain())
        seen_a = await a.metrics.read(EP, 60, T0, T0 + 60)
        seen_b = await b.metrics.read(EP, 60, T0, T0 + 60)
        assert seen_a == seen_b
        bucket = seen_a[T0]
        assert bucket["n"] == 30 and bucket["s:COMPLETED"] == 30
        assert sum(v for k, v in bucket.items() if k.startswith("e:")) == 30
        assert (bucket["w:running"], bucket["w:idle"]) == (2, 4)
    finally:
        await a.close()
        await b.close()
        drop_redis_prefix(f"{REDIS_URL}?prefix={prefix}")


async def test_a_minute_far_ahead_of_the_clock_is_not_stored(store: JobStore) -> None:
    """A clock gone wrong (the year 300000) must not pin a bucket for ever."""
    store.clock.advance(T0 + 30 - store.clock.now())  # type: ignore[attr-defined]
    far = 300_000 * 365 * 86400 // 60 * 60
    await store.metrics.record([Delta(EP, far, {"n": 1}, {}), Delta(EP, T0 + 60, {"n": 1}, {})])
    assert await store.metrics.read(EP, 60, T0, far + 60) == {T0 + 60: {"n": 1}}
