"""The supervisor: the one controller loop that runs the workers of managed endpoints,
through a backend (fleet/backend.py: local processes, or Ray actors across a cluster).

Every tick (`FleetSettings.tick_s`):
    0. with a shared backend (Ray), only the holder of the store's `fleet` lock acts (like
       the reaper); a new holder first adopts the workers that already run;
    1. the backend refreshes what it knows of its workers (and the cluster's GPUs);
and for each endpoint with a template
    2. notices exits: a drained worker is gone; any other exit is a crash, restarted after
       a backoff of 1, 2, 4 ... 60 s; `startup_crash_limit` crashes in a row before the
       gateway ever saw the worker make it `unhealthy`, and it is not started again
       (until the endpoint's settings change); exit 78 (cannot start) makes it
       `unhealthy` at once, with the worker's own reason;
    3. marks started workers ready once the gateway has seen them (a ping or a poll since
       the process started), and which ready ones hold jobs (the store's worker records);
    4. restarts crashed workers whose backoff ended, retries throttled ones;
    5. asks the scaling policy (scaling.decide, pure) how many to start and which idle
       ones to stop; stopping is a drain: SIGTERM, the worker runtime finishes the job it
       may hold and exits; SIGKILL only after executionTimeout + `drain_extra_s`;
    6. publishes its view (FleetView.publish) for /health and the admin API.

A pass starts at most `starts_per_tick` workers in all (starts and restarts; the rest wait
for the next passes, and while passes run out of starts the endpoints take turns in going
first), so that a burst of jobs or a large workersMin never forks a crowd of processes at
once on the event loop. Finding a new worker's slot number is one pass over its endpoint's
workers, however many start. One endpoint whose pass fails (a broken setting stored before
a check existed, a backend error) is logged once with its reason and skipped: the others
are still scaled.

A worker the backend cannot place (no free GPU; Ray has no node for it yet) is
`throttled` with the backend's reason. Each worker has a slot number (0 .. workersMax-1
within its endpoint) that names it in the backend.

`clock` and the backend are injectable: tests drive `tick()` with fake processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial

import httpx

from podium.board import (
    CANNOT_START,
    EXIT_CANNOT_START,
    FleetReport,
    Phase,
    SnapshotSummary,
    WorkerInfo,
    WorkerStatus,
)
from podium.clock import Clock
from podium.endpoints import EndpointSpec
from podium.endpoints.loadbalancer import (
    ANNOUNCE_COLD_START,
    ANNOUNCE_URL,
    Health,
    health_of,
    health_path,
    lb_env,
    wants_health_port,
)
from podium.endpoints.volumes import VOLUME_PATH_VAR, volume_dir
from podium.errors import StoreUnavailable
from podium.fleet.backend import Adopted, Backend, Placement, Slot
from podium.fleet.containers import EXIT_NOT_STARTED
from podium.fleet.scaling import QueueStats, ScalingSettings, WorkerSnapshot, decide
from podium.fleet.settings import FleetSettings
from podium.fleet.view import FleetEndpoint, FleetView
from podium.store.records import LbLoad

__all__ = ["FLEET_LOCK", "Supervisor"]

log = logging.getLogger("podium.fleet")

STOPPED_MEMORY_S = 3600.0  # how long /health remembers that a worker exited
HEALTH_TIMEOUT_S = 2.0  # a load-balancing worker's health check answers within this
HEALTH_MISSES = 3  # checks in a row a ready one fails before it is replaced
ROLL_FRACTION = 4  # a rolling update drains a quarter of an endpoint's workers at a time
SNAPSHOT_READ_PASSES = 4  # the backend's snapshots are read every this many passes
FLEET_LOCK = "fleet"  # the store lock whose holder drives a shared (Ray) fleet


@dataclass(eq=False)
class _Worker:
    id: str
    endpoint_id: str
    launch_key: str
    slot_index: int = 0
    phase: Phase = Phase.STARTING
    slot: Slot | None = None
    started_at: float | None = None
    ready_at: float | None = None
    idle_since: float | None = None
    busy: bool = False
    crashes: int = 0  # in a row (backoff)
    startup_failures: int = 0  # in a row, before the gateway saw it
    restarts: int = 0
    restart_at: float | None = None
    kill_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    gave_up: bool = False  # killed for not being ready within init_timeout_s
    # a load-balancing worker: its ports, health, requests in flight, what was announced
    port: int | None = None
    health_port: int | None = None
    health: Health | None = None
    initializing_at: float | None = None  # its first 204
    cold_start_s: float | None = None
    misses: int = 0  # failed health checks in a row, once ready
    in_flight: int = 0
    announced: str | None = None  # the health last written to the registry
    announced_at: float = 0.0
    version: int | None = None  # the endpointVersion it was started for
    stale: bool = False  # runs an older release: drained a batch at a time (_roll)
    adopted: bool = False  # found running (a new controller): its start was not seen here

    def snapshot(self) -> WorkerSnapshot:
        return WorkerSnapshot(self.id, self.phase, self.busy, self.idle_since)

    def mark_busy(self, busy: bool, now: float) -> None:
        """A ready (or draining) worker holds work now, or is idle since when it last held
        some."""
        self.busy = busy
        if busy:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now

    def stable(self, now: float, stable_s: float) -> None:
        """Up `stable_s` since it became ready: its crash count starts again from zero."""
        if self.crashes and self.ready_at is not None and now - self.ready_at >= stable_s:
            self.crashes = 0

    def status(self) -> WorkerStatus:
        slot = self.slot
        return WorkerStatus(
            id=self.id,
            endpoint_id=self.endpoint_id,
            phase=self.phase,
            gpus=slot.gpus if slot is not None else (),
            pid=slot.pid if slot is not None else None,
            restarts=self.restarts,
            started_at=self.started_at,
            ready_at=self.ready_at,
            exit_code=self.exit_code,
            reason=self.reason,
            node=slot.node if slot is not None else "",
            health=self._shown_health(),
            in_flight=self.in_flight,
            cold_start_s=self.cold_start_s,
            version=self.version,
            restore_s=slot.restore_s if slot is not None else None,
            adopted=self.adopted,
        )

    def _shown_health(self) -> str | None:
        """A load-balancing worker's health for the workers list (None: not one, or it
        runs no process now)."""
        if self.port is None or self.slot is None:
            return None
        return (self.health or Health.INITIALIZING).value

    @property
    def url(self) -> str | None:
        if self.slot is None or self.port is None:
            return None
        return f"http://{self.slot.address}:{self.port}"


@dataclass(eq=False)
class _Pool:
    endpoint_id: str
    spec: EndpointSpec | None = None
    launch_key: str | None = None
    workers: dict[str, _Worker] = field(default_factory=dict)
    roll_size: int = 0  # the workers a rolling update began with


def _scaling(spec: EndpointSpec, snapshots: bool = False) -> ScalingSettings:
    """`snapshots`: its workers come back restored (docs/snapshots.md), so flashboot does
    not keep idle ones warm: they stop at the endpoint's idleTimeout as configured."""
    return ScalingSettings(
        workers_min=spec.workers_min,
        workers_max=spec.workers_max,
        idle_timeout=spec.idle_timeout,
        scaler_type=spec.scaler_type,
        scaler_value=spec.scaler_value,
        flashboot=spec.flashboot and not snapshots,
    )


class Supervisor:
    def __init__(
        self, view: FleetView, settings: FleetSettings, clock: Clock, backend: Backend
    ) -> None:
        self.view = view
        self.settings = settings
        self.clock = clock
        self.backend = backend
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # A shared backend acts only while this gateway holds the fleet lock.
        self.active = not backend.shared
        self.lock_lease_s = max(settings.lock_lease_s, 3 * settings.tick_s)
        self._pools: dict[str, _Pool] = {}
        self._leaving: list[_Worker] = []  # workers of deleted endpoints, until they exit
        self._stopped: dict[str, dict[str, float]] = {}  # endpoint -> worker -> exited at
        self._task: asyncio.Task[None] | None = None
        self._turn = 0  # which endpoint goes first (they take turns while starts run out)
        self._refreshed = False  # the backend learnt its GPUs (and engine) once
        self._failing: dict[str, str] = {}  # endpoint -> the error its last pass raised
        self._starts_left = settings.starts_per_tick  # in this pass
        self._http: httpx.AsyncClient | None = None  # load-balancing health checks
        self._loads: dict[str, LbLoad] = {}  # this pass's load-balancing requests
        # the backend's snapshots by endpoint (None: it takes none), read every few passes
        self._snapshots: Mapping[str, SnapshotSummary] | None = None
        self._passes = 0

    # --- lifecycle ----------------------------------------------------------------------

    def run_in_background(self) -> None:
        """Run the loop as a task of the current event loop (until `stop`)."""
        self._task = asyncio.create_task(self.run(), name="supervisor")

    async def run(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not end the supervisor
                log.exception("supervisor tick failed; trying again")
            await sleep(self.settings.tick_s)

    def begin_stop(self) -> None:
        """The gateway is shutting down: stop the loop and SIGTERM every worker now, so
        that their long-polls end and the server's graceful shutdown does not wait for
        them. `stop()` then waits for them. Call it on the event loop. Workers of a
        shared backend stay: they belong to the cluster, and the next controller adopts
        them."""
        if self._task is not None:
            self._task.cancel()
        if self.backend.shared:
            return
        for w in self._all_workers():
            if w.slot is not None and w.phase is not Phase.DRAINING:
                w.phase, w.reason = Phase.DRAINING, "the gateway is shutting down"
                w.slot.terminate()

    async def stop(self) -> None:
        """Stop the loop, then every worker: SIGTERM, `shutdown_grace_s`, SIGKILL (not the
        workers of a shared backend: see begin_stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.backend.shared:
            await self._stop_workers()
        self._pools.clear()
        self._leaving.clear()
        if self._http is not None:
            await self._http.aclose()
        await self.backend.close()

    async def _stop_workers(self) -> None:
        running = [w.slot for w in self._all_workers() if w.slot is not None]
        for slot in running:
            slot.terminate()
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while time.monotonic() < deadline and any(s.poll() is None for s in running):
            await asyncio.sleep(0.05)
        for slot in running:
            if slot.poll() is None:
                log.warning("worker pid %s did not stop in time; killing it", slot.pid)
                slot.kill()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(s.poll() is None for s in running):
            await asyncio.sleep(0.02)

    # --- one pass -----------------------------------------------------------------------

    async def tick(self) -> None:
        if not await self._hold():
            await self.backend.refresh([])  # a standby still shows the cluster's GPUs
            self._publish()
            return
        now = self.clock.now()
        endpoints = await self.view.endpoints()
        wanted = {e.id: e for e in endpoints}
        for ep_id in [p for p in self._pools if p not in wanted]:
            self._retire(self._pools.pop(ep_id), now)
        if endpoints or self._leaving or not self._refreshed:  # the first pass: GPUs, engine
            await self.backend.refresh([w.slot for w in self._all_workers() if w.slot])
            self._refreshed = True
            now = self.clock.now()
        self._starts_left = self.settings.starts_per_tick
        await self._read_snapshots(set(wanted))
        balanced = any(e.spec.load_balancer for e in endpoints)
        self._loads = await self.view.lb_loads() if balanced else {}
        turn = self._turn % len(endpoints) if endpoints else 0
        for e in endpoints[turn:] + endpoints[:turn]:
            pool = self._pools.setdefault(e.id, _Pool(e.id))
            try:
                await self._tick_endpoint(pool, e, now)
            except asyncio.CancelledError:
                raise
            except StoreUnavailable:
                raise  # the store is down: the whole pass fails (and is tried again)
            except Exception as exc:  # one endpoint never stops the pass for the others
                if self._failing.get(e.id) != repr(exc):  # said once, not every pass
                    self._failing[e.id] = repr(exc)
                    log.exception("endpoint %s: its fleet pass failed; the others go on", e.id)
            else:
                self._failing.pop(e.id, None)
        if self._starts_left <= 0:  # the pass ran out of starts: the next one begins later
            self._turn += 1
        self._reap_leaving(now)
        self._forget_stopped(now)
        self._publish()

    async def _read_snapshots(self, live: set[str]) -> None:
        """The backend's snapshots, every few passes (the first before any start); the
        images of endpoints that are gone are deleted."""
        if self._passes % SNAPSHOT_READ_PASSES == 0:
            self._snapshots = await asyncio.to_thread(self.backend.snapshots, live)
        self._passes += 1

    def _forget_stopped(self, now: float) -> None:
        """Stopped workers are forgotten after STOPPED_MEMORY_S."""
        for ep_id, gone in list(self._stopped.items()):
            for wid, at in list(gone.items()):
                if now - at > STOPPED_MEMORY_S:
                    del gone[wid]
            if not gone:
                del self._stopped[ep_id]

    def _publish(self) -> None:
        self.view.publish(
            FleetReport(
                workers={
                    ep_id: [w.status() for w in pool.workers.values()]
                    for ep_id, pool in self._pools.items()
                },
                stopped={ep: dict(gone) for ep, gone in self._stopped.items()},
                inventory=self.backend.inventory(),
                engine=self.backend.engine(),
                snapshots=dict(self._snapshots or {}),
            )
        )

    async def _hold(self) -> bool:
        """Whether this supervisor drives the fleet now (always, unless shared). A new
        holder adopts what runs; one that lost the lock forgets its workers (they run on,
        for the new holder to adopt) and stops acting."""
        if not self.backend.shared:
            return True
        held = await self.view.hold_lock(FLEET_LOCK, self.owner, self.lock_lease_s)
        if held and not self.active:
            log.info("fleet controller %s: active (%s backend)", self.owner, self.backend.name)
            await self._adopt(await self.backend.adopt())
        elif not held and self.active:
            log.warning("fleet controller %s: lost the fleet lock; standing by", self.owner)
            self._pools.clear()
            self._leaving.clear()
        self.active = held
        return held

    async def _adopt(self, found: list[Adopted]) -> None:
        now = self.clock.now()
        for a in found:
            pool = self._pools.setdefault(a.endpoint_id, _Pool(a.endpoint_id))
            w = _Worker(a.worker_id, a.endpoint_id, "", slot_index=a.slot_index, slot=a.slot)
            w.started_at = a.started_at if a.started_at is not None else now
            w.adopted = True  # its becoming ready here is no cold start
            if a.draining:
                grace = self.settings.drain_extra_s
                w.phase, w.kill_at, w.reason = Phase.DRAINING, now + grace, "adopted while draining"
            pool.workers[w.id] = w
        if found:
            log.info("adopted %d running worker(s)", len(found))

    async def _tick_endpoint(self, pool: _Pool, e: FleetEndpoint, now: float) -> None:
        if e.launch is None:
            if pool.workers:
                log.warning("endpoint %s: %s; stopping its workers", e.id, e.problem)
            self._retire(pool, now)
            pool.workers.clear()
            return
        self._apply_settings(pool, e, now)
        # 2. exits; placements Ray has not made yet are throttled (with its reason)
        for w in list(pool.workers.values()):
            if w.slot is not None:
                code = w.slot.poll()
                if code is not None:
                    self._exited(pool, w, code, now)
                else:
                    self._placement(w, now)
        # 3. what the gateway saw (a load-balancing worker: its health check)
        queue = await self._observe_all(pool, e, now)
        # a new release: the older workers drain a batch at a time, replacements start
        self._roll(pool, e, now)
        # 4/5. the policy; stopping is a drain (or just forgetting a worker with no process)
        snapshots = [w.snapshot() for w in pool.workers.values() if not w.stale]
        decision = decide(_scaling(e.spec, self._snapshot_able(e)), queue, snapshots, now)
        grace = e.spec.execution_timeout_ms / 1000 + self.settings.drain_extra_s
        for wid in decision.stop:
            w = pool.workers[wid]
            if w.slot is None:
                del pool.workers[wid]
            else:
                self._drain(w, now, grace, "not needed (idle)")
        # restarts whose backoff ended, throttled workers (first come, first served),
        # then new workers
        for w in list(pool.workers.values()):
            if w.slot is None and (
                w.phase is Phase.THROTTLED
                or (w.phase is Phase.BACKOFF and (w.restart_at or 0) <= now)
            ):
                self._launch(w, e, now)
        free = self._free_slots(pool)
        for _ in range(min(decision.start, self._starts_left)):
            w = _Worker(
                id=f"{e.id[:6]}-{secrets.token_hex(4)}",
                endpoint_id=e.id,
                launch_key=pool.launch_key or "",
                slot_index=next(free),
            )
            pool.workers[w.id] = w
            self._launch(w, e, now)
        # drains that take too long
        for w in pool.workers.values():
            if w.phase is Phase.DRAINING and w.slot is not None and (w.kill_at or now) < now:
                log.warning(
                    "worker %s: still running %.0f s after SIGTERM; killing it", w.id, grace
                )
                w.slot.kill()
                w.kill_at = None
        if e.spec.load_balancer:
            await self._announce(pool, now)

    async def _observe_all(self, pool: _Pool, e: FleetEndpoint, now: float) -> QueueStats:
        """Which workers are ready and busy, and the endpoint's work (for the policy)."""
        if e.spec.load_balancer:
            return await self._check_lb(pool, e, now)
        seen = {i.worker_id: i for i in await self.view.workers(e.id)}
        for w in pool.workers.values():
            self._observe(w, seen.get(w.id), now)
        return await self.view.queue(e.id)

    def _roll(self, pool: _Pool, e: FleetEndpoint, now: float) -> None:
        """Replace the workers of an older release a batch at a time (a quarter of those
        the update began with, at least one), idle ones first: the next batch drains once
        the previous one has exited. A drain never kills a running job: SIGTERM, the
        worker finishes it (meanwhile the policy starts replacements: old ones do not
        count)."""
        stale = [w for w in pool.workers.values() if w.stale]
        if not stale or any(w.phase is Phase.DRAINING for w in stale):
            return
        batch = max(1, math.ceil(pool.roll_size / ROLL_FRACTION))
        grace = e.spec.execution_timeout_ms / 1000 + self.settings.drain_extra_s
        for w in sorted(stale, key=lambda w: w.busy)[:batch]:
            self._drain(w, now, grace, f"replaced by release {e.version} (a rolling update)")

    # --- load-balancing workers ---------------------------------------------------------

    async def _check_lb(self, pool: _Pool, e: FleetEndpoint, now: float) -> QueueStats:
        """Health-check the endpoint's running workers (at once, HEALTH_TIMEOUT_S each):
        200 ready, 204 initializing, else unhealthy (a ready one that fails HEALTH_MISSES
        checks in a row is killed and so replaced); read every gateway's requests in
        flight (busy, idle) and waiting (the scaler's work: REQUEST_COUNT)."""
        path = health_path(e.spec.env)
        checked = [
            w
            for w in pool.workers.values()
            if w.slot is not None
            and w.port is not None
            and w.slot.waiting is None
            and w.phase in (Phase.STARTING, Phase.READY)
        ]
        codes = await asyncio.gather(*(self._health(w, path) for w in checked))
        for w, code in zip(checked, codes, strict=True):
            self._observe_lb(w, health_of(code), now)
        load = self._loads.get(e.id, LbLoad())
        for w in pool.workers.values():
            w.in_flight = load.in_flight.get(w.id, 0)
            if w.phase in (Phase.READY, Phase.DRAINING):
                w.mark_busy(w.in_flight > 0, now)
        return QueueStats(queued=load.waiting, in_progress=sum(load.in_flight.values()))

    async def _health(self, w: _Worker, path: str) -> int | None:
        assert w.slot is not None
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S, trust_env=False)
        url = f"http://{w.slot.address}:{w.health_port or w.port}{path}"
        try:
            return (await self._http.get(url)).status_code
        except httpx.HTTPError:
            return None

    def _observe_lb(self, w: _Worker, health: Health, now: float) -> None:
        if health is Health.INITIALIZING and w.initializing_at is None:
            w.initializing_at = now
        if w.phase is Phase.STARTING:
            if health is Health.READY:
                start = w.initializing_at if w.initializing_at is not None else w.started_at
                w.cold_start_s = now - (start if start is not None else now)
                w.phase, w.ready_at, w.startup_failures, w.reason = Phase.READY, now, 0, None
                log.info("worker %s is ready (cold start %.1f s)", w.id, w.cold_start_s)
            if health is not Health.UNHEALTHY:  # no answer while starting: not up yet
                w.health = health
            return
        if health is Health.READY:
            w.health, w.misses = health, 0
        else:
            w.misses += 1
            w.health = Health.UNHEALTHY
            if w.misses >= HEALTH_MISSES and w.slot is not None:
                log.warning(
                    "worker %s: %d health checks failed in a row; replacing it", w.id, w.misses
                )
                w.reason = f"its health check failed {w.misses} times in a row"
                w.slot.kill()
        w.stable(now, self.settings.stable_s)

    async def _announce(self, pool: _Pool, now: float) -> None:
        """Tell every gateway's proxy (the store's worker registry) which workers are
        ready, on change and every third of a lease; a draining or gone one is withdrawn."""
        refresh = self.view.lease_s / 3
        for w in pool.workers.values():
            url = w.url
            if url is None or w.phase is Phase.DRAINING:
                health = "draining" if w.announced is not None else None
            else:  # none before its first answer
                health = w.health.value if w.health is not None else None
            if health is None or (health == w.announced and now - w.announced_at < refresh):
                continue
            state = "running" if w.in_flight else "idle"
            if health != Health.READY.value:
                state = "initializing" if health == Health.INITIALIZING.value else "unhealthy"
            info: dict[str, object] = {
                ANNOUNCE_URL: url or "",
                "health": health,
                ANNOUNCE_COLD_START: w.cold_start_s,
            }
            await self.view.announce(pool.endpoint_id, w.id, state, info)
            w.announced, w.announced_at = health, now

    def _apply_settings(self, pool: _Pool, e: FleetEndpoint, now: float) -> None:
        """New settings: unhealthy workers get another chance; when what the workers
        run changed (command, model, env, GPUs), the old ones are replaced."""
        assert e.launch is not None
        key = f"{e.launch.key}:{e.spec.gpu_ids}:{e.spec.gpu_count}:{e.spec.type}:{e.version}"
        if pool.spec is not None and pool.spec != e.spec:
            for w in list(pool.workers.values()):
                if w.phase is Phase.UNHEALTHY:
                    del pool.workers[w.id]
        if pool.launch_key is not None and pool.launch_key != key:
            log.info(
                "endpoint %s: a new release (version %d); replacing its workers a batch at a time",
                e.id,
                e.version,
            )
            for w in list(pool.workers.values()):
                if w.slot is None:
                    del pool.workers[w.id]
                elif w.phase is not Phase.DRAINING:
                    w.stale = True
            pool.roll_size = sum(1 for w in pool.workers.values() if w.stale)
        pool.spec = e.spec
        pool.launch_key = key

    def _placement(self, w: _Worker, now: float) -> None:
        """A placed slot that the backend has not started yet is throttled, with why; a
        starting one says what it waits for (its image's pull); one that stays starting
        past `init_timeout_s` is given up (killed: a start-up failure, with the reason)."""
        assert w.slot is not None
        if w.phase is Phase.STARTING and w.slot.waiting is None:
            w.reason = w.slot.note
            limit = self.settings.init_timeout_s
            if w.started_at is not None and now - w.started_at > limit and not w.gave_up:
                w.gave_up = True
                log.warning("worker %s: not ready %.0f s after its start; giving up", w.id, limit)
                w.slot.kill()
            return
        waiting = w.slot.waiting
        if waiting is not None and w.phase is Phase.STARTING:
            w.phase, w.reason = Phase.THROTTLED, waiting
            log.info("worker %s is throttled: %s", w.id, waiting)
        elif waiting is not None and w.phase is Phase.THROTTLED:
            w.reason = waiting
        elif waiting is None and w.phase is Phase.THROTTLED:
            w.phase, w.reason = Phase.STARTING, None

    def _observe(self, w: _Worker, info: WorkerInfo | None, now: float) -> None:
        if w.slot is None or w.phase not in (Phase.STARTING, Phase.READY, Phase.DRAINING):
            return
        # Seen since this process started (a restarted worker keeps its id).
        seen = info is not None and w.started_at is not None and info.last_seen >= w.started_at
        jobs = info.jobs if info is not None else 0
        if w.phase is Phase.STARTING and seen:
            w.phase, w.ready_at, w.startup_failures, w.reason = Phase.READY, now, 0, None
            log.info("worker %s is ready (%.1f s after start)", w.id, now - (w.started_at or now))
        if w.phase in (Phase.READY, Phase.DRAINING):
            w.mark_busy(bool(seen and jobs), now)
        w.stable(now, self.settings.stable_s)

    def _exited(self, pool: _Pool, w: _Worker, code: int, now: float) -> None:
        assert w.slot is not None
        slot, w.exit_code, w.busy, w.idle_since = w.slot, code, False, None
        cannot_start = self._cannot_start(slot) if code == EXIT_CANNOT_START else None
        slot.release()
        w.slot = None
        if w.phase is Phase.DRAINING:
            log.info("worker %s stopped (exit code %d)", w.id, code)
            self._forget(pool, w, now)
            return
        if code == 0 and w.phase is Phase.READY:
            log.info("worker %s exited on its own (code 0)", w.id)
            self._forget(pool, w, now)
            return
        if cannot_start is not None:  # restarting would not help: say why, stop here
            w.phase, w.restart_at = Phase.UNHEALTHY, None
            w.reason = cannot_start + " (updating the endpoint retries)"
            log.error("worker %s cannot start: %s", w.id, w.reason)
            return
        if w.gave_up:
            w.gave_up = False
            limit = self.settings.init_timeout_s
            self._crashed(
                w, f"not ready {limit:g} s after its start (PODIUM_WORKER_INIT_TIMEOUT_S)", now
            )
            return
        why = self._engine_refused(slot) if code == EXIT_NOT_STARTED else None
        self._crashed(w, why or f"exited with code {code}", now)

    @staticmethod
    def _engine_refused(slot: Slot) -> str | None:
        """A container the engine could not pull or run: its own words (they name the
        image), else None."""
        for line in reversed(slot.last_lines(50)):
            if line.startswith(("--- podium: cannot pull image", "Error: ", "docker: Error")):
                return line.strip("- ").removeprefix("podium: ")
        return None

    @staticmethod
    def _cannot_start(slot: Slot) -> str:
        """The worker's own reason: the last `cannot start` line of its output."""
        lines = slot.last_lines(50)
        reasons = [line.split(CANNOT_START, 1)[1] for line in lines if CANNOT_START in line]
        return reasons[-1] if reasons else f"exited with code {EXIT_CANNOT_START}"

    def _forget(self, pool: _Pool, w: _Worker, now: float) -> None:
        del pool.workers[w.id]
        self._stopped.setdefault(w.endpoint_id, {})[w.id] = now

    def _crashed(self, w: _Worker, what: str, now: float) -> None:
        if w.phase is not Phase.READY:
            w.startup_failures += 1
        w.crashes += 1
        limit = self.settings.startup_crash_limit
        if w.startup_failures >= limit:
            w.phase, w.restart_at = Phase.UNHEALTHY, None
            w.reason = (
                f"{what}; it failed {w.startup_failures} times in a row before it was ready, "
                "so it is not restarted (see `podium logs`; updating the endpoint retries)"
            )
            log.error("worker %s is unhealthy: %s", w.id, w.reason)
            return
        base, cap = self.settings.backoff_base_s, self.settings.backoff_cap_s
        delay = min(cap, base * 2 ** (w.crashes - 1))
        w.phase, w.restart_at = Phase.BACKOFF, now + delay
        w.reason = f"{what}; restarting in {delay:g} s"
        log.warning("worker %s %s", w.id, w.reason)

    def _launch(self, w: _Worker, e: FleetEndpoint, now: float) -> None:
        """Start (or restart) `w` if this pass may still start one; a worker the pass has
        no room for keeps its phase and is tried again on the next pass."""
        assert e.launch is not None
        if self._starts_left <= 0:
            return
        restart = w.started_at is not None
        if e.spec.load_balancer:  # its own ports, new on each start
            w.port = _free_port()
            w.health_port = _free_port() if wants_health_port(e.spec.env) else None
        w.health, w.initializing_at, w.cold_start_s, w.misses = None, None, None, 0
        w.announced, w.version, w.stale = None, e.version, False
        placement = Placement(
            endpoint_id=e.id,
            worker_id=w.id,
            slot=w.slot_index,
            argv=tuple(e.launch.argv),
            env=partial(self._worker_env, e, w.id, w.port, w.health_port),
            gpu_ids=e.spec.gpu_ids,
            gpu_count=e.spec.gpu_count,
            restart=restart,
            container=e.launch.container,
            snapshot=self._snapshot_able(e),
        )
        try:
            placed = self.backend.place(placement)
        except (OSError, ValueError) as exc:  # no such command, a NUL in argv or env, ...
            self._starts_left -= 1
            w.phase, w.started_at = Phase.STARTING, now
            if restart:
                w.restarts += 1
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._crashed(w, f"cannot start: {what}", now)
            return
        if isinstance(placed, str):
            if w.phase is not Phase.THROTTLED or w.reason != placed:
                log.info("worker %s is throttled: %s", w.id, placed)
            w.phase, w.reason = Phase.THROTTLED, placed
            return
        self._starts_left -= 1
        w.slot, w.started_at, w.ready_at, w.idle_since, w.busy = placed, now, None, None, False
        w.restart_at, w.reason, w.adopted = None, None, False
        if restart:
            w.restarts += 1
        w.phase = Phase.STARTING
        log.info(
            "worker %s started for endpoint %s (%s, pid %s, GPUs %s)",
            w.id,
            e.id,
            placed.node or self.backend.name,
            placed.pid,
            list(placed.gpus),
        )

    def _snapshot_able(self, e: FleetEndpoint) -> bool:
        """flashboot on a backend that takes snapshots: a process worker of a queue
        endpoint (load-balancing workers serve on ports they bound at start; images run
        through their engine) is started checkpointable (docs/snapshots.md)."""
        return (
            e.spec.flashboot
            and self._snapshots is not None
            and e.launch is not None
            and e.launch.container is None
            and not e.spec.load_balancer
        )

    def _worker_env(
        self,
        e: FleetEndpoint,
        worker_id: str,
        port: int | None,
        health_port: int | None,
        gpu: str,
    ) -> dict[str, str]:
        assert e.launch is not None
        env = {
            "PYTHONUNBUFFERED": "1",
            **e.launch.env,
            **self.view.worker_env(e.id, worker_id, gpu),
        }
        if port is not None:  # a load-balancing worker: the ports the fleet picked
            env.update(lb_env(e.launch.env, port, health_port))
        volume = e.spec.network_volume_id
        if volume is not None and e.launch.container is None:  # containers: the mount
            env[VOLUME_PATH_VAR] = volume_dir(self.view.volume_root, volume)
        return env

    def _drain(self, w: _Worker, now: float, grace: float, why: str) -> None:
        assert w.slot is not None
        w.phase, w.kill_at, w.reason = Phase.DRAINING, now + grace, why
        log.info("worker %s: draining (%s)", w.id, why)
        w.slot.terminate()

    def _retire(self, pool: _Pool, now: float) -> None:
        """The endpoint is gone: stop its workers (SIGTERM, then SIGKILL soon)."""
        for w in pool.workers.values():
            if w.slot is not None:
                self._drain(w, now, self.settings.delete_grace_s, "the endpoint was deleted")
                self._leaving.append(w)

    def _reap_leaving(self, now: float) -> None:
        for w in list(self._leaving):
            if w.slot is None:
                self._leaving.remove(w)
            elif w.slot.poll() is not None:
                w.slot.release()
                w.slot = None
                self._leaving.remove(w)
            elif (w.kill_at or now) < now:
                w.slot.kill()
                w.kill_at = None

    # --- helpers ------------------------------------------------------------------------

    def _all_workers(self) -> list[_Worker]:
        return [w for p in self._pools.values() for w in p.workers.values()] + self._leaving

    def _free_slots(self, pool: _Pool) -> Iterator[int]:
        """The slot numbers no worker of the endpoint holds (leaving ones too), lowest
        first: one pass over its workers, however many are started."""
        taken = {w.slot_index for w in pool.workers.values()}
        taken |= {w.slot_index for w in self._leaving if w.endpoint_id == pool.endpoint_id}
        return (i for i in itertools.count() if i not in taken)


def _free_port() -> int:
    """A TCP port free on this host now (the kernel picks it): a load-balancing worker's
    server binds it. Workers of one host share its network (containers run on the host's),
    so each gets its own; on a Ray cluster it is picked on the controller's host, and a
    worker that finds it taken on its node exits and is restarted with another."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
