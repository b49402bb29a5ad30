"""read_stream(wait=): a reader waits for the next chunk (the SSE of the OpenAI routes),
on every backend."""

from __future__ import annotations

import asyncio

from tests.store.test_contract import EP, LEASE, append, done, submit


async def test_a_waiting_reader_wakes_on_a_chunk_then_on_the_end(store, clock):
    job = await submit(store, clock)
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    reader = asyncio.create_task(store.read_stream(job.id, wait=10))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await append(store, job.id, "w1", [{"t": 1}, {"t": 2}])
    got, chunks = await asyncio.wait_for(reader, 5)
    assert chunks == ['{"t":1}', '{"t":2}'] and not got.final
    reader = asyncio.create_task(store.read_stream(job.id, wait=10))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await store.finish(job.id, "w1", done([]))
    got, chunks = await asyncio.wait_for(reader, 5)
    assert got.final and chunks == []


async def test_no_wait_and_unknown_jobs_answer_at_once(store, clock):
    assert await asyncio.wait_for(store.read_stream("nope", wait=10), 2) == (None, [])
    job = await submit(store, clock)
    got, chunks = await asyncio.wait_for(store.read_stream(job.id), 2)
    assert got.id == job.id and chunks == []


async def test_a_waiting_reader_wakes_when_the_status_changes(store, clock):
    job = await submit(store, clock)
    reader = asyncio.create_task(store.read_stream(job.id, wait=10))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    got, chunks = await asyncio.wait_for(reader, 5)
    assert got.status.value == "IN_PROGRESS" and chunks == []


async def test_a_reader_that_knew_another_status_answers_at_once(store, clock):
    from podium.jobs import JobStatus

    job = await submit(store, clock)  # IN_QUEUE; the reader last saw it IN_PROGRESS
    got, chunks = await asyncio.wait_for(
        store.read_stream(job.id, wait=10, seen=JobStatus.IN_PROGRESS), 2
    )
    assert got.status is JobStatus.IN_QUEUE and chunks == []
