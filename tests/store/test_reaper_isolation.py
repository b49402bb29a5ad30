"""No single record can stop expiry: a record a reaper pass cannot process ends FAILED
with a message, and the pass goes on for every other job. Each backend is given a record
it cannot process in its own way (a real failure of SQLite or of a Redis script)."""

from __future__ import annotations

from podium.jobs import JobStatus
from podium.store.base import REAPER_QUARANTINE_ERROR
from podium.store.sqlite import SQLiteStore
from tests.store.test_contract import EP, LEASE, submit


async def _break(store, job_id: str) -> None:
    """Make `job_id` a record the reaper's transitions fail on."""
    if isinstance(store, SQLiteStore):
        store._db.execute(
            f"""CREATE TRIGGER broken BEFORE UPDATE OF status ON jobs
                WHEN old.id = '{job_id}' AND new.status <> 'FAILED'
                BEGIN SELECT RAISE(ABORT, 'a damaged record'); END"""
        )
    else:  # a hash missing a field the scripts need
        await store._redis.hdel(store._k("job", job_id), "retention_ms")


async def test_a_record_the_reaper_cannot_process_is_failed_and_the_pass_goes_on(store, clock):
    bad = await submit(store, clock, ttl_ms=5_000)
    good = await submit(store, clock, ttl_ms=5_000)
    running = await submit(store, clock)
    await store.take(EP, "w1", 3, hold=0, lease_s=LEASE)  # all three run now
    await _break(store, bad.id)
    clock.advance(6)
    report = await store.expire(clock.now())
    assert report.quarantined == [bad.id]
    got = await store.get(bad.id)
    assert got.status is JobStatus.FAILED
    assert got.error.startswith(REAPER_QUARANTINE_ERROR.split("{cause}")[0])
    assert (await store.get(good.id)).status is JobStatus.TIMED_OUT  # the pass went on
    assert {j.id for j in report.finished} >= {good.id}
    # later passes are not stuck on it either: the running job's lease still expires
    clock.advance(LEASE + 1)
    report = await store.expire(clock.now())
    assert report.quarantined == []
    assert [j.id for j in report.requeued] == [running.id]
    # the worker that ran the bad job is told to stop
    assert bad.id in await store.jobs_to_stop(EP, "w1")
