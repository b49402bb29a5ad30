"""The JobStore contract: one suite, every backend (the `store` fixture is parametrized)."""

from __future__ import annotations

import asyncio

import pytest

from podium import codec
from podium.endpoints import Endpoint, EndpointSpec
from podium.endpoints.templates import Template
from podium.errors import Conflict, NotFound
from podium.history import HistoryQuery
from podium.jobs import (
    WORKER_RECORDS_PER_ENDPOINT,
    Job,
    JobStatus,
    Policy,
    Submission,
    WorkerReport,
)
from podium.keys import ApiKey, Scope, hash_secret
from podium.store.records import LbLoad, LbLoads, TemplateCatalog

EP = "ep1"

LEASE = 30.0
STREAM_LIMIT = 1024 * 1024


def new_job(clock, endpoint=EP, *, low=False, ttl_ms=86_400_000, exec_ms=600_000, sync=False):
    sub = Submission(input_json='{"n":1}', policy=Policy(exec_ms, ttl_ms, low))
    return Job.new(endpoint, sub, clock.now(), retention_ms=60_000, sync=sync)


def done(output):
    text = None if output is None else codec.dumps_text(output)
    return WorkerReport(kind="final", status=JobStatus.COMPLETED, output_json=text)


async def append(store, job_id, worker, chunks, limit=STREAM_LIMIT):
    return await store.append_stream(job_id, worker, [codec.dumps_text(c) for c in chunks], limit)


async def read(store, job_id):
    job, chunks = await store.read_stream(job_id)
    return job, [codec.loads_trusted(c) for c in chunks]


def failed(msg):
    return WorkerReport(kind="final", status=JobStatus.FAILED, error=msg)


async def submit(store, clock, **kw):
    job = new_job(clock, **kw)
    await store.submit(job, retry_limit=2)
    return job


async def test_submit_get_roundtrip(store, clock):
    job = await submit(store, clock)
    got = await store.get(job.id)
    assert got is not None
    assert got.status is JobStatus.IN_QUEUE
    assert got.input == {"n": 1}
    assert got.created_at == clock.now()
    assert await store.get("nope") is None


async def test_a_taken_job_id_is_a_conflict(store, clock):
    job = await submit(store, clock)
    with pytest.raises(Conflict, match=job.id):
        await store.submit(job, retry_limit=2)
    # in one event-loop turn too (both stores send such submissions together), the other
    # submissions of that turn unharmed
    twin, other = new_job(clock), new_job(clock)
    results = await asyncio.gather(
        store.submit(twin, retry_limit=2),
        store.submit(twin, retry_limit=2),
        store.submit(other, retry_limit=2),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], Conflict) and results[2] is None
    assert (await store.get(other.id)).status is JobStatus.IN_QUEUE
    assert (await store.counts(job.endpoint_id)).in_queue == 3


async def test_submissions_of_one_turn_keep_their_order(store, clock):
    jobs = [new_job(clock) for _ in range(5)]
    await asyncio.gather(*(store.submit(j, retry_limit=2) for j in jobs))
    taken = await store.take(jobs[0].endpoint_id, "w1", 5, hold=0, lease_s=30)
    assert [j.id for j in taken] == [j.id for j in jobs]


async def test_take_is_fifo_within_priority(store, clock):
    low = await submit(store, clock, low=True)
    clock.advance(1)
    a = await submit(store, clock)
    clock.advance(1)
    b = await submit(store, clock)
    taken = await store.take(EP, "w1", 2, hold=0, lease_s=LEASE)
    assert [j.id for j in taken] == [a.id, b.id]
    assert all(j.status is JobStatus.IN_PROGRESS and j.worker_id == "w1" for j in taken)
    rest = await store.take(EP, "w1", 5, hold=0, lease_s=LEASE)
    assert [j.id for j in rest] == [low.id]
    assert await store.take(EP, "w1", 5, hold=0, lease_s=LEASE) == []


async def test_take_records_start_for_delay_time(store, clock):
    job = await submit(store, clock)
    clock.advance(2.5)
    [taken] = await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    assert taken.started_at - job.created_at == pytest.approx(2.5)


async def test_take_only_own_endpoint(store, clock):
    await submit(store, clock, endpoint="other")
    assert await store.take(EP, "w1", 1, hold=0, lease_s=LEASE) == []


async def test_concurrent_takes_never_share_a_job(store, clock):
    jobs = [await submit(store, clock) for _ in range(20)]
    results = await asyncio.gather(
        *(store.take(EP, f"w{i}", 3, hold=0, lease_s=LEASE) for i in range(10))
    )
    ids = [j.id for r in results for j in r]
    assert sorted(ids) == sorted(j.id for j in jobs)


async def test_long_poll_take_wakes_on_submit(store, clock):
    waiter = asyncio.create_task(store.take(EP, "w1", 1, hold=5, lease_s=LEASE))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    job = await submit(store, clock)
    taken = await asyncio.wait_for(waiter, 2)
    assert [j.id for j in taken] == [job.id]


async def test_finish_completes_and_is_idempotent(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    clock.advance(3)
    res = await store.finish(job.id, "w1", done({"ok": True}))
    assert res.applied
    assert res.job.status is JobStatus.COMPLETED
    assert res.job.output == {"ok": True}
    assert res.job.finished_at == clock.now()
    again = await store.finish(job.id, "w1", done({"other": 1}))
    assert not again.applied
    assert (await store.get(job.id)).output == {"ok": True}


async def test_finish_by_foreign_worker_conflicts(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    with pytest.raises(Conflict):
        await store.finish(job.id, "w2", done(1))
    with pytest.raises(NotFound):
        await store.finish("missing", "w1", done(1))
    assert (await store.get(job.id)).status is JobStatus.IN_PROGRESS


async def test_finish_failed_keeps_error(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    res = await store.finish(job.id, "w1", failed("boom"))
    assert res.job.status is JobStatus.FAILED
    assert res.job.error == "boom"


async def test_progress_shows_as_output_while_running(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    got = await store.progress(job.id, "w1", codec.dumps_text({"step": 3, "steps": 10}))
    assert got.status is JobStatus.IN_PROGRESS
    assert (await store.get(job.id)).output == {"step": 3, "steps": 10}


async def test_stream_chunks_delivered_once_in_order(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await append(store, job.id, "w1", [1, 2])
    await append(store, job.id, "w1", [{"c": 3}])
    _, first = await read(store, job.id)
    assert first == [1, 2, {"c": 3}]
    _, second = await read(store, job.id)
    assert second == []
    await append(store, job.id, "w1", [4])
    _, third = await read(store, job.id)
    assert third == [4]


async def test_generator_final_empty_output_takes_stream(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await append(store, job.id, "w1", ["a", "b"])
    res = await store.finish(job.id, "w1", done([]))
    assert res.job.output == ["a", "b"]


async def test_cancel_queued_and_running(store, clock):
    queued = await submit(store, clock)
    running = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)  # takes `queued` (FIFO)
    # `queued` is now running, `running` is queued: cancel both
    c1 = await store.cancel(running.id)
    assert c1.status is JobStatus.CANCELLED
    c2 = await store.cancel(queued.id)
    assert c2.status is JobStatus.CANCELLED
    assert await store.jobs_to_stop(EP, "w1") == [queued.id]
    assert await store.jobs_to_stop(EP, "w1") == []
    # the worker's late result is accepted without changing anything
    late = await store.finish(queued.id, "w1", done(1))
    assert not late.applied and late.job.status is JobStatus.CANCELLED
    # a final job stays as it is
    assert (await store.cancel(queued.id)).status is JobStatus.CANCELLED
    with pytest.raises(NotFound):
        await store.cancel("missing")


async def test_retry_only_failed_or_timed_out(store, clock):
    job = await submit(store, clock)
    with pytest.raises(Conflict):
        await store.retry(job.id)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(job.id, "w1", failed("x"))
    again = await store.retry(job.id)
    assert again.status is JobStatus.IN_QUEUE
    assert again.error is None and again.output is None
    [taken] = await store.take(EP, "w2", 1, hold=0, lease_s=LEASE)
    assert taken.id == job.id and taken.input == {"n": 1}


async def test_purge_queue_removes_only_queued(store, clock):
    a = await submit(store, clock)
    b = await submit(store, clock)
    c = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    assert await store.purge_queue(EP) == 2
    assert await store.get(b.id) is None and await store.get(c.id) is None
    assert (await store.get(a.id)).status is JobStatus.IN_PROGRESS


async def test_counts(store, clock):
    for _ in range(3):
        await submit(store, clock)
    j = (await store.take(EP, "w1", 2, hold=0, lease_s=LEASE))[0]
    await store.finish(j.id, "w1", done(1))
    c = await store.counts(EP)
    assert (c.in_queue, c.in_progress, c.completed, c.failed) == (1, 1, 1, 0)


async def test_ttl_expiry_times_out_queued_job(store, clock):
    job = await submit(store, clock, ttl_ms=10_000)
    clock.advance(9)
    assert (await store.expire(clock.now())).finished == []
    clock.advance(2)
    report = await store.expire(clock.now())
    assert [j.id for j in report.finished] == [job.id]
    assert (await store.get(job.id)).status is JobStatus.TIMED_OUT


async def test_execution_timeout_lands_on_stop_channel(store, clock):
    job = await submit(store, clock, exec_ms=5_000)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    clock.advance(6)
    report = await store.expire(clock.now())
    assert [j.id for j in report.finished] == [job.id]
    got = await store.get(job.id)
    assert got.status is JobStatus.TIMED_OUT
    assert "executionTimeout" in got.error
    assert await store.jobs_to_stop(EP, "w1") == [job.id]


async def test_lost_lease_requeues_then_fails(store, clock):
    job = await submit(store, clock)
    for attempt in range(3):
        [taken] = await store.take(EP, f"w{attempt}", 1, hold=0, lease_s=LEASE)
        assert taken.id == job.id
        clock.advance(LEASE + 1)
        await store.expire(clock.now())
    got = await store.get(job.id)
    assert got.status is JobStatus.FAILED
    assert got.retries == 2
    assert "worker was lost" in got.error


async def test_heartbeat_renews_lease(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    for _ in range(3):
        clock.advance(LEASE - 1)
        await store.heartbeat(EP, "w1", [job.id], LEASE)
        await store.expire(clock.now())
    got = await store.get(job.id)
    assert got.status is JobStatus.IN_PROGRESS and got.retries == 0
    # a heartbeat from another worker does not renew it
    clock.advance(LEASE - 1)
    await store.heartbeat(EP, "w2", [job.id], LEASE)
    clock.advance(2)
    report = await store.expire(clock.now())
    assert [j.id for j in report.requeued] == [job.id]


async def test_retention_purges_final_jobs(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(job.id, "w1", done({"secret": 1}))
    clock.advance(59)
    await store.expire(clock.now())
    assert await store.get(job.id) is not None
    clock.advance(2)
    report = await store.expire(clock.now())
    assert report.purged == 1
    assert await store.get(job.id) is None


async def test_set_retention_shortens(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(job.id, "w1", done(1))
    await store.set_retention(job.id, 5_000)
    clock.advance(6)
    await store.expire(clock.now())
    assert await store.get(job.id) is None


async def test_set_retention_lengthens(store, clock):
    job = await submit(store, clock)  # retention 60 s
    await store.set_retention(job.id, 600_000)  # before it finishes: applies when it does
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.finish(job.id, "w1", done(1))
    clock.advance(120)
    await store.expire(clock.now())
    assert (await store.get(job.id)).output == 1
    await store.set_retention(job.id, 3_600_000)  # after: from its finish
    clock.advance(600)
    await store.expire(clock.now())
    assert (await store.get(job.id)).output == 1
    clock.advance(3_000)
    await store.expire(clock.now())
    assert await store.get(job.id) is None


async def test_s3_config_is_kept_with_the_job_and_deleted_with_it(store, clock):
    sub = Submission(
        input_json='{"n":1}',
        policy=Policy(600_000, 86_400_000),
        s3_config_json='{"accessId":"a","accessSecret":"s","bucketName":"b","endpointUrl":"u"}',
    )
    job = Job.new(EP, sub, clock.now(), retention_ms=60_000)
    await store.submit(job, retry_limit=2)
    [taken] = await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    assert codec.loads_trusted(codec.dumps(taken.work_item()))["s3Config"] == {
        "accessId": "a",
        "accessSecret": "s",
        "bucketName": "b",
        "endpointUrl": "u",
    }
    await store.finish(job.id, "w1", done(1))
    clock.advance(61)
    await store.expire(clock.now())
    assert await store.get(job.id) is None
    [record] = (await store.history(EP, HistoryQuery())).jobs
    assert record.s3_config_json is None and record.input_json is None


async def test_wait_for_change_wakes_on_finish(store, clock):
    job = await submit(store, clock)
    seen = await store.get(job.id)
    waiter = asyncio.create_task(store.wait_for_change(job.id, seen, 5, final_only=True))
    await asyncio.sleep(0.05)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await asyncio.sleep(0.05)
    assert not waiter.done()  # IN_PROGRESS is not final
    await store.finish(job.id, "w1", done(7))
    got = await asyncio.wait_for(waiter, 2)
    assert got.status is JobStatus.COMPLETED and got.output == 7


async def test_wait_for_change_times_out_with_current(store, clock):
    job = await submit(store, clock)
    seen = await store.get(job.id)
    got = await store.wait_for_change(job.id, seen, 0.1)
    assert got.status is JobStatus.IN_QUEUE


async def test_workers_seen_and_job_counts(store, clock):
    job = await submit(store, clock)
    other = await submit(store, clock)
    await store.take(EP, "w1", 2, hold=0, lease_s=LEASE)
    await store.heartbeat(EP, "w2", [], LEASE)
    ws = {w.worker_id: w for w in await store.workers(EP, alive_since=clock.now() - 10)}
    assert ws["w1"].jobs == 2 and ws["w2"].jobs == 0
    assert ws["w1"].job_ids == tuple(sorted([job.id, other.id])) and ws["w2"].job_ids == ()
    await store.finish(other.id, "w1", done(2))
    ws = {w.worker_id: w for w in await store.workers(EP, alive_since=clock.now() - 10)}
    assert ws["w1"].job_ids == (job.id,)  # a finished job is no longer held
    await store.finish(job.id, "w1", done(1))
    clock.advance(100)
    assert await store.workers(EP, alive_since=clock.now() - 10) == []


async def test_endpoints_and_keys(store, clock):
    ep = Endpoint(
        id="abc",
        spec=EndpointSpec(name="x"),
        worker_token_hash=hash_secret("t"),
        webhook_secret="s",
    )
    await store.put_endpoint(ep)
    assert (await store.get_endpoint("abc")).spec.name == "x"
    assert (await store.endpoint_by_token_hash(hash_secret("t"))).id == "abc"
    assert [e.id for e in await store.list_endpoints()] == ["abc"]
    key = ApiKey(id="k1", name="n", hash=hash_secret("pk"), scopes=[Scope.READ])
    await store.put_key(key)
    assert (await store.key_by_hash(hash_secret("pk"))).scopes == [Scope.READ]
    key.revoked = True
    await store.put_key(key)
    assert (await store.key_by_hash(hash_secret("pk"))).revoked
    assert len(await store.list_keys()) == 1
    assert await store.delete_endpoint("abc")
    assert await store.get_endpoint("abc") is None
    assert await store.set_setting_if_absent("admin", "1")
    assert not await store.set_setting_if_absent("admin", "2")
    assert await store.get_setting("admin") == "1"


async def test_heartbeat_rearms_stop_for_a_job_the_worker_still_runs(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.cancel(job.id)
    assert await store.jobs_to_stop(EP, "w1") == [job.id]
    # the worker's next ping still lists it: the stop is sent again
    await store.heartbeat(EP, "w1", [job.id], LEASE)
    assert await store.jobs_to_stop(EP, "w1") == [job.id]
    # once the worker stops listing it, nothing more
    await store.heartbeat(EP, "w1", [], LEASE)
    assert await store.jobs_to_stop(EP, "w1") == []


async def test_a_held_stop_channel_returns_the_stop_when_it_is_posted(store, clock):
    """job-stop long-polls on the store (no polling by the route): a waiting read gets a
    cancel posted meanwhile, and only its own worker's."""
    mine = await submit(store, clock)
    theirs = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.take(EP, "w2", 1, hold=0, lease_s=LEASE)
    waiting = asyncio.ensure_future(store.jobs_to_stop(EP, "w1", hold=30))
    await asyncio.sleep(0)  # it is waiting
    assert not waiting.done()
    await store.cancel(mine.id)
    assert await waiting == [mine.id]
    assert await store.jobs_to_stop(EP, "w2") == []
    assert (await store.get(theirs.id)).status is JobStatus.IN_PROGRESS


async def test_lock_is_held_by_one_owner_and_lapses(store, clock):
    assert await store.hold_lock("reaper", "gw-a", 5)
    assert not await store.hold_lock("reaper", "gw-b", 5)
    clock.advance(4)
    assert await store.hold_lock("reaper", "gw-a", 5)  # renewed
    clock.advance(4)
    assert not await store.hold_lock("reaper", "gw-b", 5)
    clock.advance(2)  # gw-a stopped renewing: the lease ran out
    assert await store.hold_lock("reaper", "gw-b", 5)
    assert not await store.hold_lock("reaper", "gw-a", 5)
    assert await store.hold_lock("other", "gw-a", 5)  # locks are independent


async def test_counts_split_priority_and_date_the_oldest(store, clock):
    await submit(store, clock, low=True)
    clock.advance(1)
    first = await submit(store, clock)
    clock.advance(1)
    await submit(store, clock)
    c = await store.counts(EP)
    assert (c.in_queue, c.in_queue_low) == (3, 1)
    assert c.oldest_queued_at == pytest.approx(first.created_at)
    await store.take(EP, "w1", 2, hold=0, lease_s=LEASE)
    c = await store.counts(EP)
    assert (c.in_queue, c.in_queue_low, c.oldest_queued_at) == (1, 1, None)


async def test_an_endpoint_keeps_a_bounded_number_of_worker_records(store, clock):
    """Worker ids are the worker's to choose: a new id past WORKER_RECORDS_PER_ENDPOINT
    pushes out the record seen least recently, so a token cannot grow the store."""
    cap = WORKER_RECORDS_PER_ENDPOINT
    await store.heartbeat("ep-other", "theirs", [], LEASE)
    for i in range(cap + 5):
        await store.heartbeat(EP, f"w{i:05d}", [], LEASE)
        clock.advance(0.001)
    await store.heartbeat(EP, "w00010", [], LEASE)  # a known id: nothing goes
    seen = {w.worker_id for w in await store.workers(EP, 0)}
    assert len(seen) == cap
    assert seen == {f"w{i:05d}" for i in range(5, cap + 5)}
    assert [w.worker_id for w in await store.workers("ep-other", 0)] == ["theirs"]


@pytest.mark.parametrize("kind", ["templates", "volumes", "registries"])
async def test_named_records_keep_their_order_and_unique_names(store, kind):
    assert await store.put_record(kind, "id-a", "first", '{"a": 1}')
    assert await store.put_record(kind, "id-b", "second", '{"b": 2}')
    assert await store.get_record(kind, "id-a") == '{"a": 1}'
    assert await store.list_records(kind) == ['{"a": 1}', '{"b": 2}']
    assert not await store.put_record(kind, "id-c", "first", "{}")  # the name is taken
    assert await store.get_record(kind, "id-c") is None
    assert await store.put_record(kind, "id-a", "renamed", '{"a": 3}')  # replaced in place
    assert await store.list_records(kind) == ['{"a": 3}', '{"b": 2}']
    assert await store.put_record(kind, "id-c", "first", "{}")  # its old name is free
    assert await store.delete_record(kind, "id-a") and not await store.delete_record(kind, "id-a")
    assert await store.list_records(kind) == ['{"b": 2}', "{}"]
    other = next(k for k in ("templates", "volumes") if k != kind)
    assert await store.list_records(other) == []  # kinds never mix


async def test_template_records_through_the_catalog(store, clock):
    catalog = TemplateCatalog(store)
    a = Template("tpl_aaaaaaaaaa", "first", "python a.py", {"X": "1"}, created_at=clock.now())
    assert await catalog.add(a) == a and await catalog.require(a.id) == a
    with pytest.raises(Conflict, match="named 'first' exists"):
        await catalog.add(Template("tpl_cccccccccc", "first", "python c.py"))
    await catalog.delete(a.id)
    with pytest.raises(NotFound):
        await catalog.require(a.id)


async def test_templates_kept_in_the_settings_by_an_older_version_become_records(store, clock):
    old = Template("tpl_oldoldoldo", "legacy", "python old.py", created_at=clock.now())
    gone = Template("tpl_gonegonego", "deleted", "python gone.py")
    for n, t in enumerate((old, gone)):
        await store.set_setting_if_absent(f"template:{t.id}", t.to_doc())
        await store.set_setting_if_absent(f"templates:{n}", t.id)
    await store.set_setting_if_absent(f"template:{gone.id}:deleted", "1")
    catalog = TemplateCatalog(store)
    assert await catalog.migrate_legacy() == 1
    assert await catalog.migrate_legacy() == 0
    assert [t.id for t in await catalog.created()] == [old.id]
    assert (await catalog.require(old.id)).command == "python old.py"


async def test_load_balancing_loads_sum_over_gateways_and_go_stale(store, clock):
    """Each gateway's `lbload` record (store/records.py LbLoads): summed over gateways,
    one gateway's own left out, stale ones ignored, long-gone ones swept."""
    loads = LbLoads(store)
    now = clock.now()
    await loads.publish("ep1", "gw-a", LbLoad(1, {"w1": 2, "w2": 0}), now)
    await loads.publish("ep1", "gw-b", LbLoad(2, {"w1": 1, "w3": 4}), now)
    await loads.publish("ep2", "gw-a", LbLoad(0, {"w9": 1}), now)
    both = (await loads.read(now))["ep1"]
    assert both.waiting == 3 and both.in_flight == {"w1": 3, "w3": 4}
    assert (await loads.read(now, "ep1", but="gw-a"))["ep1"] == LbLoad(2, {"w1": 1, "w3": 4})
    assert set(await loads.read(now, "ep2")) == {"ep2"}
    await loads.publish("ep1", "gw-b", LbLoad(0, {}), now + 5)  # its requests ended
    assert (await loads.read(now + 5, "ep1"))["ep1"].in_flight == {"w1": 2}
    assert await loads.read(now + 20) == {}  # nobody published for 10 s: stale
    assert await loads.sweep(now + 100) == 0
    assert await loads.sweep(now + 4000) == 3
    assert await store.list_records("lbload") == []
