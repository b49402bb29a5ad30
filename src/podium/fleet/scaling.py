"""The scaling policy: pure, no I/O, no clock of its own — `decide` is a function of the
endpoint's settings, its queue, its workers and `now`.

    target      QUEUE_DELAY: keep the current count; with normal-priority jobs queued and
                no worker, one at once; when the oldest such job waited longer than
                `scalerValue` seconds, one more (one step per tick).
                REQUEST_COUNT: ceil((normal queued + in progress) / scalerValue).
                Never more workers than there is work (queued + in progress), never fewer
                than `workersMin`, never more than `workersMax` (unhealthy workers count
                against it: a command that crash-loops is not started again and again).
    start       target - live workers (live: starting, ready, crashed-and-waiting, throttled)
    stop        when live > target: throttled and crashed-and-waiting ones first (they hold
                no process), then READY workers that hold no job and have been idle for
                `idleTimeout` (with flashboot: max(idleTimeout, the warm window)), longest
                idle first. Busy or starting workers are never stopped to reach the target;
                only when live > workersMax (the settings were lowered) are starting and
                busy ones drained too (a drain lets a running job finish).

lowPriority jobs never raise the target; they run on workers that exist anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from podium.board import Phase

__all__ = [
    "FLASHBOOT_WARM_S",
    "Decision",
    "QueueStats",
    "ScalingSettings",
    "WorkerSnapshot",
    "decide",
]

FLASHBOOT_WARM_S = 60.0  # flashboot keeps an idle, loaded worker at least this long


LIVE = frozenset({Phase.STARTING, Phase.READY, Phase.BACKOFF, Phase.THROTTLED})


@dataclass(frozen=True, slots=True)
class ScalingSettings:
    workers_min: int = 0
    workers_max: int = 3
    idle_timeout: float = 5.0
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: float = 4.0
    flashboot: bool = False
    flashboot_warm_s: float = FLASHBOOT_WARM_S

    @property
    def keep_idle_s(self) -> float:
        if self.flashboot:
            return max(self.idle_timeout, self.flashboot_warm_s)
        return self.idle_timeout


@dataclass(frozen=True, slots=True)
class QueueStats:
    queued: int = 0  # normal-priority jobs IN_QUEUE
    queued_low: int = 0  # lowPriority jobs IN_QUEUE (never cause scale-up)
    in_progress: int = 0
    oldest_wait_s: float = 0.0  # how long the oldest normal-priority queued job waited


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    id: str
    phase: Phase
    busy: bool = False  # holds a job (the store's worker record says so)
    idle_since: float | None = None  # READY and not busy: since when


@dataclass(frozen=True, slots=True)
class Decision:
    target: int
    start: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)


def _target(s: ScalingSettings, q: QueueStats, live: int, cap: int) -> int:
    work = q.queued + q.in_progress
    if s.scaler_type == "REQUEST_COUNT":
        target = math.ceil(work / max(s.scaler_value, 1.0))
    else:  # QUEUE_DELAY
        target = live
        if q.queued > 0 and live == 0:
            target = 1
        elif q.queued > 0 and q.oldest_wait_s > s.scaler_value:
            target = live + 1
    target = min(target, work)
    return max(min(target, cap), min(s.workers_min, cap))


def decide(
    settings: ScalingSettings,
    queue: QueueStats,
    workers: Sequence[WorkerSnapshot],
    now: float,
) -> Decision:
    live = [w for w in workers if w.phase in LIVE]
    unhealthy = sum(1 for w in workers if w.phase is Phase.UNHEALTHY)
    cap = max(0, settings.workers_max - unhealthy)
    target = _target(settings, queue, len(live), cap)
    if len(live) < target:
        return Decision(target, start=target - len(live))
    excess = len(live) - target
    stop: list[str] = []
    # 1. no process to stop: throttled, then crashed-and-waiting
    for phase in (Phase.THROTTLED, Phase.BACKOFF):
        for w in live:
            if len(stop) < excess and w.phase is phase:
                stop.append(w.id)
    # 2. idle workers past their idle time, longest idle first
    idle = sorted(
        (w for w in live if w.phase is Phase.READY and not w.busy and w.idle_since is not None),
        key=lambda w: (w.idle_since, w.id),
    )
    for w in idle:
        if len(stop) < excess and now - (w.idle_since or now) >= settings.keep_idle_s:
            stop.append(w.id)
    # 3. above workersMax (lowered settings): drain the rest, idle before starting before busy
    over = len(live) - len(stop) - cap
    if over > 0:
        rest = [w for w in live if w.id not in stop]
        rank = {Phase.READY: 0, Phase.STARTING: 1}
        rest.sort(key=lambda w: (w.busy, rank.get(w.phase, 0), w.id))
        stop += [w.id for w in rest[:over]]
    return Decision(target, stop=tuple(stop))
