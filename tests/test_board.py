"""board.py: how the fleet's view and the store's worker records merge into one
list of workers (GET /v1/endpoints/{id}/workers) and /health's counts. Pure."""

from __future__ import annotations

from podium.board import Phase, WorkerInfo, WorkerStatus, health_counts, summary, worker_entries

NOW = 1_700_000_000.0
EP = "ep1"


def sup(worker_id: str, phase: Phase, **kw) -> WorkerStatus:
    return WorkerStatus(worker_id, EP, phase, **kw)


def seen(worker_id: str, *jobs: str, state: str = "idle", last_seen: float = NOW, **kw):
    return WorkerInfo(
        EP, worker_id, last_seen, jobs=len(jobs), state=state, job_ids=tuple(jobs), **kw
    )


def test_phases_and_store_records_map_to_runpod_statuses():
    supervised = [
        sup("starting", Phase.STARTING),
        sup("backoff", Phase.BACKOFF, restarts=2, reason="exited with code 1"),
        sup("throttled", Phase.THROTTLED, reason="no free GPU"),
        sup("unhealthy", Phase.UNHEALTHY, reason="crashed at start 3 times"),
        sup("busy", Phase.READY, gpus=(0,), started_at=NOW - 30, ready_at=NOW - 20, node="n1"),
        sup("idle", Phase.READY, gpus=(1,)),
        sup("draining", Phase.DRAINING),
        sup("unseen", Phase.READY),
    ]
    records = [
        seen("busy", "j2", "j1"),
        seen("idle"),
        seen("draining", "j3"),
        # started elsewhere (by hand): their own reports
        seen("hand-busy", "j4", state="running"),
        seen("hand-idle"),
        seen("hand-sick", state="unhealthy", info={"check": "cuda", "reason": "no CUDA"}),
        seen("hand-init", state="initializing"),
    ]
    entries = worker_entries(supervised, records)
    status = {e.id: e.status for e in entries}
    assert status == {
        "starting": "initializing",
        "backoff": "initializing",
        "throttled": "throttled",
        "unhealthy": "unhealthy",
        "busy": "running",
        "idle": "idle",
        "draining": "running",  # a drain finishes its job
        "unseen": "idle",
        "hand-busy": "running",
        "hand-idle": "idle",
        "hand-sick": "unhealthy",
        "hand-init": "initializing",
    }
    # The fleet's workers in its order, then the others by id.
    assert [e.id for e in entries][:8] == [s.id for s in supervised]
    assert [e.id for e in entries][8:] == ["hand-busy", "hand-idle", "hand-init", "hand-sick"]
    assert summary(entries) == {
        "running": 3,
        "idle": 3,
        "initializing": 3,
        "throttled": 1,
        "unhealthy": 2,
        "total": 12,
    }


def test_entry_fields():
    busy = sup(
        "busy",
        Phase.READY,
        gpus=(2, 3),
        pid=41,
        restarts=1,
        started_at=NOW - 30.5,
        ready_at=NOW - 20,
        node="gpu-box-2",
    )
    startup = {"execAt": NOW - 39.99, "bootedAt": NOW - 39, "loadedAt": NOW - 31}
    [entry, hand] = worker_entries(
        [busy],
        [
            seen("busy", "j1", "j2", info=startup),
            seen("hand", state="unhealthy", info={"reason": "x"}),
        ],
    )
    assert entry.public(NOW) == {
        "id": "busy",
        "status": "running",
        "node": "gpu-box-2",
        "gpus": [2, 3],
        "gpuCount": 2,
        "jobs": ["j1", "j2"],
        "jobCount": 2,
        "startedAt": "2023-11-14T22:12:49.500Z",
        "readyAt": "2023-11-14T22:13:00.000Z",
        "uptimeSeconds": 30,
        "restarts": 1,
        "reason": None,
        "managed": True,
        "lastSeen": "2023-11-14T22:13:20.000Z",
        "startup": {
            "execAt": "2023-11-14T22:12:40.010Z",
            "bootedAt": "2023-11-14T22:12:41.000Z",
            "loadedAt": "2023-11-14T22:12:49.000Z",
        },
        "phase": "ready",
        "pid": 41,
        "exitCode": None,
    }
    assert entry.public(NOW, show_jobs=False)["jobs"] is None
    assert entry.public(NOW, show_jobs=False)["jobCount"] == 2
    shown = hand.public(NOW)
    assert shown["managed"] is False and shown["node"] is None and shown["phase"] is None
    assert shown["reason"] == "x"  # the worker's own report of why it is unhealthy
    assert shown["startedAt"] is None and shown["uptimeSeconds"] is None
    assert shown["startup"] is None  # it did not say (a runpod SDK worker does not)


def test_a_worker_the_fleet_saw_exit_is_left_out_until_it_pings_again():
    records = [seen("gone", last_seen=NOW - 5), seen("back", last_seen=NOW)]
    stopped = {"gone": NOW - 2, "back": NOW - 2}
    assert [e.id for e in worker_entries([], records, stopped)] == ["back"]


def test_health_counts_are_the_entries_counted_plus_ready():
    supervised = [sup("a", Phase.READY), sup("b", Phase.STARTING), sup("c", Phase.THROTTLED)]
    records = [seen("a", "j1"), seen("x"), seen("y", state="unhealthy")]
    assert health_counts(worker_entries(supervised, records)) == {
        "idle": 1,
        "initializing": 1,
        "ready": 2,
        "running": 1,
        "throttled": 1,
        "unhealthy": 1,
    }


def test_a_worker_drained_before_it_was_ever_ready_is_not_ready():
    """On Ray with 2 GPUs, a throttled slot drained before it was placed read `idle`, so
    /health said 3 ready workers on 2 GPUs. Ready counts workers that can serve."""
    supervised = [
        sup("a", Phase.READY, gpus=(0,), pid=1, ready_at=NOW - 5),
        sup("b", Phase.READY, gpus=(1,), pid=2, ready_at=NOW - 5),
        sup("never-placed", Phase.DRAINING, reason="not needed (idle)"),
        sup("started", Phase.DRAINING, pid=3, reason="replaced"),
        sup("was-ready", Phase.DRAINING, pid=4, ready_at=NOW - 9),
        sup("adopted-busy", Phase.DRAINING, pid=5),
    ]
    records = [seen("a"), seen("b"), seen("was-ready"), seen("adopted-busy", "j1")]
    entries = worker_entries(supervised, records)
    assert {e.id: e.status for e in entries} == {
        "a": "idle",
        "b": "idle",
        "never-placed": "throttled",
        "started": "initializing",
        "was-ready": "idle",  # it finishes its drain; it could still take nothing new
        "adopted-busy": "running",
    }
    assert health_counts(entries)["ready"] == 4
