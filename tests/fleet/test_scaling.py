"""The scaling policy, table-tested: no processes, no clock, no store."""

from __future__ import annotations

import pytest

from podium.board import Phase
from podium.fleet.scaling import Decision, QueueStats, ScalingSettings, WorkerSnapshot, decide

NOW = 1000.0
QD = ScalingSettings(workers_min=0, workers_max=3, idle_timeout=5, scaler_value=4)
RC = ScalingSettings(
    workers_min=0, workers_max=3, idle_timeout=5, scaler_type="REQUEST_COUNT", scaler_value=2
)


def ready(wid: str, busy: bool = False, idle_for: float | None = None) -> WorkerSnapshot:
    idle_since = None if busy else NOW - (idle_for or 0.0)
    return WorkerSnapshot(wid, Phase.READY, busy=busy, idle_since=idle_since)


def w(wid: str, phase: Phase) -> WorkerSnapshot:
    return WorkerSnapshot(wid, phase)


CASES = [
    # (name, settings, queue, workers, expected decision)
    ("nothing to do", QD, QueueStats(), [], Decision(0)),
    (
        "queue delay: first job starts one at once",
        QD,
        QueueStats(queued=1),
        [],
        Decision(1, start=1),
    ),
    (
        "queue delay: a burst starts one, not ten",
        QD,
        QueueStats(queued=10),
        [],
        Decision(1, start=1),
    ),
    (
        "queue delay: waiting under scalerValue holds",
        QD,
        QueueStats(queued=5, in_progress=1, oldest_wait_s=3.9),
        [ready("a", busy=True)],
        Decision(1),
    ),
    (
        "queue delay: waiting past scalerValue adds one",
        QD,
        QueueStats(queued=5, in_progress=1, oldest_wait_s=4.1),
        [ready("a", busy=True)],
        Decision(2, start=1),
    ),
    (
        "queue delay: counts starting workers",
        QD,
        QueueStats(queued=5, in_progress=1, oldest_wait_s=9),
        [ready("a", busy=True), w("b", Phase.STARTING)],
        Decision(3, start=1),
    ),
    (
        "queue delay: never above workersMax",
        QD,
        QueueStats(queued=50, in_progress=3, oldest_wait_s=60),
        [ready("a", True), ready("b", True), ready("c", True)],
        Decision(3),
    ),
    (
        "queue delay: never more workers than work",
        QD,
        QueueStats(queued=1, in_progress=1, oldest_wait_s=60),
        [ready("a", True), w("b", Phase.STARTING)],
        Decision(2),
    ),
    (
        "request count: ceil((queued + running) / value)",
        RC,
        QueueStats(queued=5),
        [],
        Decision(3, start=3),
    ),
    (
        "request count: 3 jobs at 2 per worker -> 2",
        RC,
        QueueStats(queued=2, in_progress=1),
        [ready("a", True)],
        Decision(2, start=1),
    ),
    ("request count: capped by workersMax", RC, QueueStats(queued=40), [], Decision(3, start=3)),
    (
        "lowPriority jobs never scale up (queue delay)",
        QD,
        QueueStats(queued_low=20, oldest_wait_s=0),
        [],
        Decision(0),
    ),
    (
        "lowPriority jobs never scale up (request count)",
        RC,
        QueueStats(queued_low=20),
        [],
        Decision(0),
    ),
    (
        "lowPriority jobs do not add to a running worker",
        RC,
        QueueStats(queued_low=20, in_progress=1),
        [ready("a", True)],
        Decision(1),
    ),
    (
        "workersMin kept warm with no work",
        ScalingSettings(workers_min=2, workers_max=3, idle_timeout=1),
        QueueStats(),
        [],
        Decision(2, start=2),
    ),
    (
        "workersMin: idle ones past timeout stay",
        ScalingSettings(workers_min=1, workers_max=3, idle_timeout=1),
        QueueStats(),
        [ready("a", idle_for=60)],
        Decision(1),
    ),
    (
        "idle worker under idleTimeout stays",
        QD,
        QueueStats(),
        [ready("a", idle_for=4.9)],
        Decision(0),
    ),
    (
        "idle worker past idleTimeout goes",
        QD,
        QueueStats(),
        [ready("a", idle_for=5)],
        Decision(0, stop=("a",)),
    ),
    (
        "flashboot keeps an idle worker for the warm window",
        ScalingSettings(idle_timeout=5, flashboot=True),
        QueueStats(),
        [ready("a", idle_for=30)],
        Decision(0),
    ),
    (
        "flashboot: after the warm window it goes",
        ScalingSettings(idle_timeout=5, flashboot=True),
        QueueStats(),
        [ready("a", idle_for=61)],
        Decision(0, stop=("a",)),
    ),
    (
        "a busy worker is never stopped",
        QD,
        QueueStats(in_progress=1),
        [ready("a", busy=True), ready("b", idle_for=100)],
        Decision(1, stop=("b",)),
    ),
    (
        "busy workers stay even with nothing queued",
        QD,
        QueueStats(in_progress=2),
        [ready("a", True), ready("b", True)],
        Decision(2),
    ),
    (
        "longest idle goes first",
        QD,
        QueueStats(in_progress=1),
        [ready("a", True), ready("b", idle_for=10), ready("c", idle_for=20)],
        Decision(1, stop=("c", "b")),
    ),
    (
        "starting workers are not stopped to reach the target",
        QD,
        QueueStats(),
        [w("a", Phase.STARTING)],
        Decision(0),
    ),
    (
        "throttled and backoff go first, without waiting",
        QD,
        QueueStats(),
        [w("t", Phase.THROTTLED), w("b", Phase.BACKOFF), ready("r", idle_for=1)],
        Decision(0, stop=("t", "b")),
    ),
    (
        "a crashed worker is kept while its job waits for the lease",
        QD,
        QueueStats(in_progress=1),
        [w("b", Phase.BACKOFF)],
        Decision(1),
    ),
    (
        "draining workers do not count",
        QD,
        QueueStats(queued=1),
        [w("d", Phase.DRAINING)],
        Decision(1, start=1),
    ),
    (
        "unhealthy workers count against workersMax",
        ScalingSettings(workers_min=1, workers_max=1),
        QueueStats(queued=3),
        [w("u", Phase.UNHEALTHY)],
        Decision(0),
    ),
    (
        "unhealthy: the rest of workersMax may run",
        ScalingSettings(workers_min=1, workers_max=2),
        QueueStats(),
        [w("u", Phase.UNHEALTHY)],
        Decision(1, start=1),
    ),
    (
        "workersMax lowered: idle then starting then busy are drained at once",
        ScalingSettings(workers_max=1),
        QueueStats(queued=9, in_progress=2, oldest_wait_s=1),
        [ready("a", True), ready("b", True), w("c", Phase.STARTING), ready("d", idle_for=0)],
        Decision(1, stop=("d", "c", "a")),
    ),
    (
        "workersMax 0 stops everything idle",
        ScalingSettings(workers_max=0),
        QueueStats(),
        [ready("a", idle_for=0)],
        Decision(0, stop=("a",)),
    ),
]


@pytest.mark.parametrize(
    ("settings", "queue", "workers", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(settings, queue, workers, expected):
    assert decide(settings, queue, workers, NOW) == expected


def test_a_burst_ramps_one_step_per_tick_to_max_and_never_above():
    """Simulate ticks: queue delay adds one worker per tick while jobs wait too long."""
    workers: list[WorkerSnapshot] = []
    sizes = []
    for tick in range(10):
        queue = QueueStats(queued=20, oldest_wait_s=tick * 2.0)
        d = decide(QD, queue, workers, NOW)
        workers += [w(f"w{tick}-{i}", Phase.STARTING) for i in range(d.start)]
        sizes.append(len(workers))
    assert sizes == [1, 1, 1, 2, 3, 3, 3, 3, 3, 3]
