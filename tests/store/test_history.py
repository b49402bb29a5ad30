"""The JobHistory role of the store contract, on every backend (the `store` fixture)."""

from __future__ import annotations

from podium import codec
from podium.history import HISTORY_ERROR_BYTES, HistoryQuery, cut_error
from podium.jobs import JobStatus, WorkerReport
from tests.store.test_contract import EP, LEASE, done, failed, submit


async def ids(store, **query) -> list[str]:
    return [j.id for j in (await store.history(EP, HistoryQuery(**query))).jobs]


async def all_pages(store, limit: int, **query) -> list[list[str]]:
    pages, after = [], None
    for _ in range(100):  # bounded
        page = await store.history(EP, HistoryQuery(limit=limit, after=after, **query))
        pages.append([j.id for j in page.jobs])
        if page.next is None:
            return pages
        after = page.next
    raise AssertionError("the cursor never ended")


async def test_lists_every_job_newest_first_with_its_status(store, clock):
    a = await submit(store, clock)
    clock.advance(1)
    b = await submit(store, clock)
    clock.advance(1)
    c = await submit(store, clock)
    await submit(store, clock, endpoint="other")
    assert await ids(store) == [c.id, b.id, a.id]
    clock.advance(2)
    await store.take(EP, "w1", 2, hold=0, lease_s=LEASE)  # a, b
    clock.advance(3)
    await store.finish(a.id, "w1", failed("boom"))
    page = await store.history(EP, HistoryQuery())
    by_id = {j.id: j for j in page.jobs}
    assert [j.status for j in page.jobs] == [
        JobStatus.IN_QUEUE,
        JobStatus.IN_PROGRESS,
        JobStatus.FAILED,
    ]
    assert by_id[a.id].error == "boom" and by_id[a.id].worker_id == "w1"
    assert by_id[a.id].started_at - by_id[a.id].created_at == 4
    assert by_id[a.id].finished_at - by_id[a.id].started_at == 3
    assert all(j.input_json is None and j.output_json is None for j in page.jobs)
    assert page.next is None
    assert await ids(store, status=JobStatus.FAILED) == [a.id]
    assert await ids(store, status=JobStatus.IN_PROGRESS) == [b.id]
    assert await ids(store, status=JobStatus.IN_QUEUE) == [c.id]
    assert await ids(store, status=JobStatus.COMPLETED) == []


async def test_pages_cover_every_job_once_while_new_ones_arrive(store, clock):
    jobs = []
    for _ in range(25):
        jobs.append(await submit(store, clock))
        clock.advance(0.5)
    first = await store.history(EP, HistoryQuery(limit=10))
    for _ in range(5):  # newer jobs do not shift the pages after the first
        await submit(store, clock)
    pages = [[j.id for j in first.jobs]]
    after = first.next
    while after is not None:
        page = await store.history(EP, HistoryQuery(limit=10, after=after))
        pages.append([j.id for j in page.jobs])
        after = page.next
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == [j.id for j in reversed(jobs)]


async def test_jobs_of_the_same_instant_are_ordered_by_id_across_pages(store, clock):
    jobs = [await submit(store, clock) for _ in range(7)]  # the clock does not move
    pages = await all_pages(store, limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == sorted((j.id for j in jobs), reverse=True)


async def test_time_window(store, clock):
    start = clock.now()
    jobs = []
    for _ in range(6):
        jobs.append(await submit(store, clock))
        clock.advance(10)
    window = await ids(store, since=start + 10, until=start + 40)
    assert window == [jobs[3].id, jobs[2].id, jobs[1].id]  # since inclusive, until not
    assert [
        i for p in await all_pages(store, limit=2, since=start + 10, until=start + 40) for i in p
    ] == window


async def test_record_outlives_retention_for_the_history_period(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    clock.advance(2)
    await store.finish(job.id, "w1", done({"secret": 1}))
    [before] = (await store.history(EP, HistoryQuery())).jobs
    clock.advance(61)  # retention (60 s) ran out
    report = await store.expire(clock.now(), history_ms=3_600_000)
    assert report.purged == 1
    assert await store.get(job.id) is None
    [after] = (await store.history(EP, HistoryQuery(status=JobStatus.COMPLETED))).jobs
    assert (after.id, after.status, after.created_at, after.started_at, after.finished_at) == (
        before.id,
        before.status,
        before.created_at,
        before.started_at,
        before.finished_at,
    )
    assert (after.worker_id, after.retries) == ("w1", 0)
    clock.advance(3_599)
    await store.expire(clock.now(), history_ms=3_600_000)
    assert await ids(store) == [job.id]
    clock.advance(2)
    await store.expire(clock.now(), history_ms=3_600_000)
    assert await ids(store) == []
    assert await ids(store, status=JobStatus.COMPLETED) == []


async def test_no_history_period_forgets_at_retention(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(job.id, "w1", done(1))
    clock.advance(61)
    await store.expire(clock.now(), history_ms=0)
    assert await ids(store) == []


async def test_errors_are_cut_alike_retained_or_not(store, clock):
    # A long error whose cut falls inside multi-byte characters.
    error = "é" * 10 + "€" * (HISTORY_ERROR_BYTES // 3 + 5) + " tail"
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(
        job.id, "w1", WorkerReport(kind="final", status=JobStatus.FAILED, error=error)
    )
    assert (await store.get(job.id)).error == error  # the status keeps all of it
    [live] = (await store.history(EP, HistoryQuery())).jobs
    assert live.error == cut_error(error)
    assert len(live.error.encode()) <= HISTORY_ERROR_BYTES and live.error.endswith("…")
    clock.advance(61)
    await store.expire(clock.now())
    [archived] = (await store.history(EP, HistoryQuery())).jobs
    assert archived.error == live.error


async def test_purged_queue_leaves_no_history_and_retry_moves_the_job(store, clock):
    queued = await submit(store, clock)
    assert await store.purge_queue(EP) == 1
    assert await ids(store) == []
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(job.id, "w1", failed("boom"))
    clock.advance(5)
    later = await submit(store, clock)
    clock.advance(5)
    await store.retry(job.id)  # same id, a new createdAt: the newest again
    assert await ids(store) == [job.id, later.id]
    assert await ids(store, status=JobStatus.IN_QUEUE) == [job.id, later.id]
    assert await ids(store, status=JobStatus.FAILED) == []
    assert queued.id not in await ids(store)


async def test_lost_lease_requeue_and_cancel_move_between_statuses(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    clock.advance(LEASE + 1)
    report = await store.expire(clock.now())
    assert [j.id for j in report.requeued] == [job.id]
    [entry] = (await store.history(EP, HistoryQuery(status=JobStatus.IN_QUEUE))).jobs
    assert entry.retries == 1
    await store.cancel(job.id)
    assert await ids(store, status=JobStatus.IN_QUEUE) == []
    assert await ids(store, status=JobStatus.CANCELLED) == [job.id]


async def test_stream_and_output_never_listed(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.append_stream(job.id, "w1", [codec.dumps_text({"c": 1})], 1 << 20)
    [entry] = (await store.history(EP, HistoryQuery())).jobs
    assert entry.output_json is None and entry.input_json is None
