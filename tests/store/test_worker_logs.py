"""The WorkerLogs role of the store contract (`store.logs`), on every backend."""

from __future__ import annotations

import json

import pytest

from podium.endpoints import Endpoint, EndpointSpec
from podium.logs.lines import LogBudget, LogLine, LogQuery, line_cost
from tests.conftest import REDIS_URL, drop_redis_prefix, make_store

EP = "ep-logs"
KEEP = LogBudget(lines_per_worker=1000)


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
        await store.logs.append(
            EP, "w1", lines(*(f"{i}-{k}" for k in range(5))), LogBudget(lines_per_worker=7)
        )
    await store.logs.append(EP, "w2", lines("other"), LogBudget(lines_per_worker=7))
    kept = await texts(store, worker="w1", tail=100)
    assert kept == ["2-3", "2-4", "3-0", "3-1", "3-2", "3-3", "3-4"]
    # a job's lines that were trimmed are gone from its lines too
    await store.logs.append(
        EP, "w3", lines("j-a", "j-b", jobs=("job-x",)), LogBudget(lines_per_worker=7)
    )
    await store.logs.append(
        EP, "w3", lines(*(f"n{k}" for k in range(6))), LogBudget(lines_per_worker=7)
    )
    assert await texts(store, job="job-x") == ["j-b"]
    assert await texts(store, job="job-x", since=0) == ["j-b"]
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


async def test_a_job_filter_finds_lines_deep_in_long_logs(store):
    for w in ("w1", "w2"):
        for at in range(0, 1200, 300):  # more than a chunk of the Redis scan (500)
            batch = [
                LogLine(float(i), f"{w}-{i}", ("deep",) if i in (7, 1100) else ("other",))
                for i in range(at, at + 300)
            ]
            await store.logs.append(EP, w, batch, LogBudget(lines_per_worker=2000))
    assert await texts(store, job="deep", tail=100) == ["w1-7", "w1-1100", "w2-7", "w2-1100"]
    assert await texts(store, job="deep", tail=1) == ["w2-1100"]
    assert await texts(store, job="deep", worker="w1") == ["w1-7", "w1-1100"]
    page = await store.logs.read(EP, LogQuery(job="deep", tail=2, since=0))
    assert [ln.text for ln in page.lines] == ["w1-7", "w1-1100"]
    rest = await store.logs.read(EP, LogQuery(job="deep", tail=2, since=page.cursor))
    assert [ln.text for ln in rest.lines] == ["w2-7", "w2-1100"]


@pytest.mark.redis
async def test_redis_keeps_no_index_entry_for_a_line_it_no_longer_holds(tmp_path, clock):
    """The job index follows the streams' trimming, expiry and endpoint deletion, so
    Redis holds nothing for lines that are gone."""
    import redis.asyncio as aioredis

    store = await make_store("redis", tmp_path, clock)
    raw = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = store.prefix

    async def log_keys() -> dict[str, int]:
        found = {}
        async for key in raw.scan_iter(match=f"{prefix}:log*", count=1000):
            kind = await raw.type(key)
            size = {"zset": raw.zcard, "set": raw.scard, "stream": raw.xlen}.get(kind)
            found[key.removeprefix(prefix + ":")] = await size(key) if size else 1
        return found

    try:
        for _ in range(4):  # 12 lines of job-a, the stream keeps 5
            await store.logs.append(
                EP, "w1", lines("x", "y", "z", jobs=("job-a",)), LogBudget(lines_per_worker=5)
            )
        await store.logs.append(
            EP, "w2", lines("w2", jobs=("job-a", "job-b")), LogBudget(lines_per_worker=5)
        )
        keys = await log_keys()
        assert keys[f"log:{EP}:w1"] == 5 and keys[f"logjob:{EP}:job-a"] == 6
        assert keys[f"logjw:{EP}:w1"] == 5 and keys[f"logjw:{EP}:w2"] == 2
        assert await texts(store, job="job-a") == ["y", "z", "x", "y", "z", "w2"]
        # a line with a new job pushes job-a's last w1 line out of w1's stream
        await store.logs.append(
            EP,
            "w1",
            lines(*(f"n{k}" for k in range(5)), jobs=("job-c",)),
            LogBudget(lines_per_worker=5),
        )
        keys = await log_keys()
        assert keys[f"logjob:{EP}:job-a"] == 1  # only w2's line is left
        assert await texts(store, job="job-a") == ["w2"]
        clock.advance(10)
        await store.logs.append(EP, "w2", lines("later"), LogBudget(lines_per_worker=5))
        assert await store.logs.expire(clock.now() - 5) == 1  # w1
        keys = await log_keys()
        assert f"log:{EP}:w1" not in keys and f"logjob:{EP}:job-c" not in keys
        assert await raw.smembers(f"{prefix}:logjobs:{EP}") == {"job-a", "job-b"}
        await store.logs.delete_endpoint(EP)
        assert set(await log_keys()) == {"logseq"}  # the counter stays
    finally:
        await raw.aclose()
        await store.close()
        drop_redis_prefix(store)


async def test_a_tail_across_many_workers_is_the_newest_lines_of_all(store):
    written = []
    for round_ in range(3):
        for w in range(20):  # more workers than a Redis read takes at once
            if (w + round_) % 3:  # some workers skip a round
                continue
            text = f"r{round_}-w{w}"
            await store.logs.append(EP, f"w{w}", lines(text), KEEP)
            written.append(text)
    for n in (1, 5, 8, 9, len(written), len(written) + 5):
        assert await texts(store, tail=n) == written[-n:], n
    since = (await store.logs.read(EP, LogQuery(tail=len(written)))).lines[9].seq
    assert await texts(store, since=since, tail=100) == written[10:]


# --- the endpoint's budget (logs.lines.LogBudget): one endpoint's token never spends the
# store others need, whatever worker ids it invents ---------------------------------------


async def test_past_its_workers_an_endpoint_forgets_the_least_recently_written_logs(store):
    budget = LogBudget(lines_per_worker=10, workers_per_endpoint=3)
    await store.logs.append("ep-2", "theirs", lines("other endpoint"), budget)
    for w in ("w1", "w2", "w3"):
        await store.logs.append(EP, w, lines(f"{w}-a", jobs=(f"job-{w}",)), budget)
    await store.logs.append(EP, "w1", lines("w1-b"), budget)  # w1 wrote last: w2 is oldest
    await store.logs.append(EP, "w4", lines("w4-a"), budget)
    assert await texts(store) == ["w1-a", "w3-a", "w1-b", "w4-a"]
    assert await texts(store, job="job-w2") == []  # its job index went with it
    assert await texts(store, job="job-w1") == ["w1-a"]
    for i in range(5, 12):  # invented ids, one line each
        await store.logs.append(EP, f"w{i}", lines(f"w{i}-a"), budget)
    assert await texts(store) == ["w9-a", "w10-a", "w11-a"]
    assert await texts(store, endpoint="ep-2") == ["other endpoint"]


async def test_past_its_bytes_an_endpoint_drops_its_oldest_lines_down_to_the_low_water(store):
    c = line_cost("x" * 100, json.dumps(()))  # what each of these lines costs
    budget = LogBudget(lines_per_worker=100, workers_per_endpoint=10, bytes_per_endpoint=c * 5)

    def line(name: str) -> LogLine:
        return LogLine(1.0, name + "x" * (100 - len(name)))

    async def kept() -> list[str]:
        return [t.rstrip("x") for t in await texts(store)]

    await store.logs.append(EP, "w1", [line("0"), line("1"), line("2")], budget)
    await store.logs.append(EP, "w2", [line("a")], budget)
    assert await kept() == ["0", "1", "2", "a"]
    # 6 lines cost more than 5: the oldest go until at most 4.5 lines' worth is left
    await store.logs.append(EP, "w2", [line("b"), line("c")], budget)
    assert await kept() == ["2", "a", "b", "c"]
    # the writer's own old lines go too when they are the oldest; w1 has none left
    await store.logs.append(EP, "w2", [line(x) for x in "defg"], budget)
    assert await kept() == ["d", "e", "f", "g"]
    assert await texts(store, worker="w1") == []
    # the costs were counted down as lines went: a fifth line fits, a sixth trims again
    await store.logs.append(EP, "w3", [line("h")], budget)
    assert await kept() == ["d", "e", "f", "g", "h"]
    await store.logs.append(EP, "w3", [line("i")], budget)
    assert await kept() == ["f", "g", "h", "i"]


async def test_the_worker_cap_and_expiry_keep_the_costs_right(store, clock):
    """A log that expires or is trimmed takes its cost along: a new one fits again."""
    cost = line_cost("line", json.dumps(()))
    budget = LogBudget(lines_per_worker=2, workers_per_endpoint=5, bytes_per_endpoint=cost * 4)
    await store.logs.append(EP, "w1", lines("line", "line", "line"), budget)  # keeps 2
    clock.advance(100)
    await store.logs.append(EP, "w2", lines("line", "line"), budget)
    assert len(await texts(store)) == 4
    assert await store.logs.expire(clock.now() - 50) == 1  # w1
    await store.logs.append(EP, "w3", lines("line", "line"), budget)  # 4 lines: fits
    assert [ln.worker_id for ln in (await store.logs.read(EP, LogQuery())).lines] == [
        "w2",
        "w2",
        "w3",
        "w3",
    ]


@pytest.mark.redis
@pytest.mark.parametrize("seed", range(3))
async def test_both_stores_keep_the_same_lines_under_a_tight_budget(tmp_path, clock, seed):
    """Random appends (fixed seeds) by invented workers against a budget that trims on
    most appends: SQLite and Redis keep the same lines, job index included."""
    import random

    rng = random.Random(seed)
    budget = LogBudget(lines_per_worker=6, workers_per_endpoint=4, bytes_per_endpoint=2500)
    stores = [
        await make_store("sqlite", tmp_path, clock),
        await make_store("redis", tmp_path, clock),
    ]
    try:
        for step in range(120):
            worker = f"w{rng.randrange(7)}"
            batch = [
                LogLine(float(step), "é" * rng.randrange(0, 60), (f"j{rng.randrange(5)}",))
                for _ in range(rng.randrange(1, 5))
            ]
            for s in stores:
                await s.logs.append(EP, worker, batch, budget)
            if step % 10 == 0:
                clock.advance(1)
            reads = [
                [
                    (ln.seq, ln.worker_id, ln.text, ln.jobs)
                    for ln in (await s.logs.read(EP, q)).lines
                ]
                for s in stores
                for q in (LogQuery(tail=1000), LogQuery(job="j1", tail=1000))
            ]
            assert reads[0] == reads[2] and reads[1] == reads[3], step
            kept = sum(line_cost(t, json.dumps(list(j))) for _, _, t, j in reads[0])
            assert kept <= budget.bytes_per_endpoint
            assert len({w for _, w, _, _ in reads[0]}) <= budget.workers_per_endpoint
    finally:
        for s in stores:
            await s.close()
            drop_redis_prefix(s)
