"""The supervisor's queue statistics on every store backend, and the worker env."""

from __future__ import annotations

from podium.endpoints.worker_env import worker_env
from podium.fleet.scaling import QueueStats
from podium.fleet.view import queue_stats
from podium.jobs import Job, Policy, Submission

EP = "ep1"


async def _submit(store, clock, low: bool = False, endpoint: str = EP) -> Job:
    sub = Submission(input_json='{"n":1}', policy=Policy(600_000, 86_400_000, low))
    job = Job.new(endpoint, sub, clock.now(), retention_ms=60_000, sync=False)
    await store.submit(job, retry_limit=2)
    return job


async def test_queue_stats_split_priorities_and_date_the_oldest(store, clock):
    assert await queue_stats(store, EP, clock.now()) == QueueStats()
    await _submit(store, clock, low=True)
    clock.advance(1)
    await _submit(store, clock)
    clock.advance(2)
    await _submit(store, clock)
    await _submit(store, clock, endpoint="other")
    clock.advance(3)
    assert await queue_stats(store, EP, clock.now()) == QueueStats(
        queued=2, queued_low=1, in_progress=0, oldest_wait_s=5.0
    )
    await store.take(EP, "w1", 1, hold=0, lease_s=30)
    assert await queue_stats(store, EP, clock.now()) == QueueStats(
        queued=1, queued_low=1, in_progress=1, oldest_wait_s=3.0
    )
    await store.take(EP, "w1", 1, hold=0, lease_s=30)
    # only lowPriority jobs wait: nothing that scales up
    assert await queue_stats(store, EP, clock.now()) == QueueStats(
        queued=0, queued_low=1, in_progress=2, oldest_wait_s=0.0
    )


def test_worker_env_has_every_protocol_variable():
    env = worker_env("http://127.0.0.1:8000/", "ep1", "w1", "NVIDIA A100", "pw_x", 2000)
    assert env == {
        "RUNPOD_WEBHOOK_GET_JOB": "http://127.0.0.1:8000/v2/ep1/job-take/$ID?gpu=NVIDIA+A100",
        "RUNPOD_WEBHOOK_POST_OUTPUT": "http://127.0.0.1:8000/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+A100",
        "RUNPOD_WEBHOOK_POST_STREAM": "http://127.0.0.1:8000/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+A100",
        "RUNPOD_WEBHOOK_PING": "http://127.0.0.1:8000/v2/ep1/ping/$RUNPOD_POD_ID?gpu=NVIDIA+A100",
        "RUNPOD_AI_API_KEY": "pw_x",
        "RUNPOD_POD_ID": "w1",
        "RUNPOD_ENDPOINT_ID": "ep1",
        "RUNPOD_PING_INTERVAL": "2000",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "PODIUM_WORKER_GPU": "NVIDIA A100",
    }
