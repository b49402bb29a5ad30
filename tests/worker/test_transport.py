"""Transport: retries of posts, the take and stop answers (an in-process fake gateway)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from podium.worker.backoff import Backoff
from podium.worker.config import WorkerConfig
from podium.worker.transport import Delivery, GatewayRefused, Throttled, Transport

FAST = Backoff(base_s=0.001, cap_s=0.004)
Handler = Callable[[httpx.Request], httpx.Response]


def config(**changes: object) -> WorkerConfig:
    return WorkerConfig.from_env(
        env={}, gateway="http://gw", endpoint_id="ep", worker_id="w1", token="tok", **changes
    )


def transport(handler: Handler, **changes: object) -> Transport:
    return Transport(config(**changes), httpx.MockTransport(handler), FAST)


def answers(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A fake that answers in order (the last answer repeats) and records requests."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def never() -> bool:
    return False


async def test_result_is_retried_through_errors_until_acknowledged() -> None:
    handle, seen = answers(
        httpx.ConnectError("refused"),
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json={"applied": True}),
    )
    t = transport(handle)
    posted = await t.post_result("j1", b'{"output": 1}', False, never)
    assert posted.delivery is Delivery.ACKED
    assert posted.jobs == []
    assert len(seen) == 4
    last = seen[-1]
    assert last.url.path == "/v2/ep/job-done/w1/j1"
    assert last.url.params["isStream"] == "false"
    assert last.content == b'{"output": 1}'
    assert last.headers["X-Request-ID"] == "j1"
    assert last.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert last.headers["Authorization"] == "tok"
    assert "podium_next" not in last.url.params


async def test_a_result_post_can_bring_the_next_jobs() -> None:
    job = {"id": "j2", "input": {}}
    handle, seen = answers(
        httpx.Response(200, json={"id": "j1", "status": "COMPLETED", "next": [job]}),
        httpx.Response(200, json={"id": "j1", "status": "COMPLETED"}),  # a server without it
    )
    t = transport(handle)
    posted = await t.post_result("j1", b"{}", False, never, take_next=2)
    assert (posted.delivery, posted.jobs) == (Delivery.ACKED, [job])
    assert seen[0].url.params["podium_next"] == "2"
    posted = await t.post_result("j1", b"{}", False, never, take_next=1)
    assert (posted.delivery, posted.jobs) == (Delivery.ACKED, [])


@pytest.mark.parametrize("status", [400, 404, 409])
async def test_a_4xx_is_final(status: int) -> None:
    handle, seen = answers(httpx.Response(status, json={"error": "no"}))
    t = transport(handle)
    assert (await t.post_result("j1", b"{}", False, never)).delivery is Delivery.REJECTED
    assert len(seen) == 1


async def test_retries_stop_at_the_deadline() -> None:
    """The deadline is read off the transport's clock, which only the waits move here."""
    handle, seen = answers(httpx.Response(502))
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    t = Transport(
        config(result_deadline_s=10.0),
        httpx.MockTransport(handle),
        Backoff(base_s=1.0, cap_s=1.0),
        monotonic=lambda: now[0],
        sleep=sleep,
    )
    assert (await t.post_result("j1", b"{}", True, never)).delivery is Delivery.GAVE_UP
    # waits of at most 1 s each: at least 10 attempts, and no wait past the deadline
    assert len(seen) >= 10 and now[0] <= 10.0


async def test_retries_stop_when_the_job_was_stopped() -> None:
    handle, seen = answers(httpx.Response(500))
    stopped = iter([False, False, True])
    t = transport(handle)
    assert await t.post_chunk("j1", b"{}", lambda: next(stopped)) is Delivery.ABANDONED
    assert len(seen) == 3
    assert seen[0].url.path == "/v2/ep/job-stream/w1/j1"


async def test_take_single_batch_and_empty() -> None:
    job = {"id": "j1", "input": {}}
    handle, seen = answers(
        httpx.Response(200, json=job),
        httpx.Response(200, json=[job, job]),
        httpx.Response(204),
        httpx.Response(400, json={"error": "no"}),
    )
    t = transport(handle)
    assert await t.take(1, False, None) == [job]
    assert await t.take(2, True, 1.0) == [job, job]
    assert await t.take(1, False, None) == []
    assert await t.take(1, False, None) == []
    assert seen[1].url.path == "/v2/ep/job-take-batch/w1"
    assert seen[1].url.params["batch_size"] == "2"
    assert seen[1].url.params["hold"] == "1.000"


async def test_take_refused_and_throttled() -> None:
    handle, _ = answers(
        httpx.Response(401, json={"error": "Unknown worker token."}),
        httpx.Response(429, headers={"Retry-After": "3"}),
    )
    t = transport(handle)
    with pytest.raises(GatewayRefused, match="Unknown worker token"):
        await t.take(1, False, None)
    with pytest.raises(Throttled) as info:
        await t.take(1, False, None)
    assert info.value.retry_after_s == 3


async def test_poll_stop() -> None:
    handle, seen = answers(
        httpx.Response(200, json={"jobsToStop": ["a", 3, "b"]}), httpx.Response(204)
    )
    t = transport(handle)
    url = t.config.stop_request_url()
    assert url is not None
    assert await t.poll_stop(url) == ["a", "b"]
    assert await t.poll_stop(url) == []
    assert seen[0].url.path == "/v2/ep/job-stop/w1"
