"""The WorkerLogs role of the store contract (`store.logs`), on every backend."""

from __future__ import annotations

from podium.endpoints import Endpoint, EndpointSpec
from podium.logs.lines import LogLine, LogQuery

EP = "ep-logs"
KEEP = 1000


def lines(*texts: str, jobs: tuple[str, ...] = (), at: float = 1.0) -> list[LogLine]:
    return [LogLine(at + i, t, jobs) for i, t in enumerate(texts)]


async def texts(store, endpoint: str = EP, **query) -> list[str]:
    page = await store.logs.read(endpoint, LogQuery(**query))
    return [ln.text for ln in page.lines]


async def test_lines_come_back_in_order_with_worker_time_and_jobs(store):
    top = await store.logs.append(EP, "w1", lines("a", "b", jobs=("j1",), at=5.0), KEEP)
    await store.logs.append(EP, "w2", lines("c"), KEEP)
    await store.logs.append(EP, "w1", lines("d", jobs=("j1", "j2")), KEEP)
    page = await store.logs.read(EP, LogQuery())
    assert [(ln.worker_id, ln.text, ln.jobs) for ln in page.lines] == [
        ("w1", "a", ("j1",)),
        ("w1", "b", ("j1",)),
        ("w2", "c", ()),
        ("w1", "d", ("j1", "j2")),
    ]
    seqs = [ln.seq for ln in page.lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4 and seqs[1] == top
    assert page.lines[0].at == 5.0 and page.lines[1].at == 6.0
    assert page.cursor == seqs[-1]
    assert await texts(store, endpoint="other") == []


async def test_tail_worker_and_job_filters(store):
    await store.logs.append(EP, "w1", lines("1", "2", "3"), KEEP)
    await store.logs.append(EP, "w2", lines("x", jobs=("job-a",)), KEEP)
    await store.logs.append(EP, "w1", lines("4", jobs=("job-a", "job-b")), KEEP)
    await store.logs.append(EP, "w1", lines("5", jobs=("job-b",)), KEEP)
    await store.logs.append("other", "w1", lines("not mine", jobs=("job-a",)), KEEP)
    assert await texts(store, tail=2) == ["4", "5"]
    assert await texts(store, worker="w1", tail=3) == ["3", "4", "5"]
    assert await texts(store, worker="w2") == ["x"]
    assert await texts(store, job="job-a") == ["x", "4"]
    assert await texts(store, job="job-b", tail=1) == ["5"]
    assert await texts(store, job="job-a", worker="w1") == ["4"]
    assert await texts(store, job="job") == []  # exact ids, not prefixes
    assert await texts(store, tail=0) == []


async def test_since_pages_on_and_the_cursor_covers_everything_once(store):
    for i in range(7):
        await store.logs.append(EP, f"w{i % 2}", lines(f"l{i}"), KEEP)
    empty = await store.logs.read(EP, LogQuery(tail=0))
    assert empty.lines == []
    seen: list[str] = []
    cursor = 0
    for _ in range(10):  # bounded
        page = await store.logs.read(EP, LogQuery(tail=3, since=cursor))
        seen += [ln.text for ln in page.lines]
        if not page.lines:
            break
        assert page.cursor > cursor
        cursor = page.cursor
    assert seen == [f"l{i}" for i in range(7)]
    assert cursor == empty.cursor
    await store.logs.append(EP, "w9", lines("later"), KEEP)
    assert await texts(store, since=cursor) == ["later"]


async def test_a_filtered_read_moves_the_cursor_past_lines_it_skipped(store):
    await store.logs.append(EP, "w1", lines("a", "b", "c"), KEEP)
    page = await store.logs.read(EP, LogQuery(job="nope", since=0))
    assert page.lines == []
    top = await store.logs.append(EP, "w1", [], KEEP)
    assert page.cursor == top


async def test_each_worker_keeps_its_last_lines(store):
    for i in range(4):
        await store.logs.append(EP, "w1", lines(*(f"{i}-{k}" for k in range(5))), 7)
    await store.logs.append(EP, "w2", lines("other"), 7)
    kept = await texts(store, worker="w1", tail=100)
    assert kept == ["2-3", "2-4", "3-0", "3-1", "3-2", "3-3", "3-4"]
    assert await texts(store, worker="w2") == ["other"]


async def test_silent_workers_expire_and_an_endpoint_takes_its_logs_along(store, clock):
    await store.logs.append(EP, "old", lines("old line"), KEEP)
    clock.advance(100)
    await store.logs.append(EP, "new", lines("new line"), KEEP)
    await store.logs.append("ep-2", "w", lines("kept"), KEEP)
    assert await store.logs.expire(clock.now() - 50) == 1
    assert await texts(store) == ["new line"]
    assert await store.logs.expire(clock.now() - 50) == 0

    endpoint, _ = Endpoint.create(EndpointSpec(name="x"), clock.now())
    await store.put_endpoint(endpoint)
    await store.logs.append(endpoint.id, "w", lines("goes"), KEEP)
    assert await store.delete_endpoint(endpoint.id)
    assert await texts(store, endpoint=endpoint.id) == []
    assert await texts(store, endpoint="ep-2") == ["kept"]
    # a worker that ships again after its endpoint's logs went starts a new log
    await store.logs.append(endpoint.id, "w", lines("again"), KEEP)
    assert await texts(store, endpoint=endpoint.id) == ["again"]


async def test_texts_and_job_ids_round_trip_unchanged(store):
    odd = ['{"requestId": "x", "message": "Started."}', "tab\tand ünïcode ✓", "", "\ufffd"]
    await store.logs.append(EP, "w1", lines(*odd, jobs=('id "quoted"', "a/b")), KEEP)
    page = await store.logs.read(EP, LogQuery())
    assert [ln.text for ln in page.lines] == odd
    assert page.lines[0].jobs == ('id "quoted"', "a/b")
    assert await texts(store, job='id "quoted"') == odd
