"""The supervisor: runs the worker processes of managed endpoints on this machine.

Every tick (`FleetSettings.tick_s`) and for each endpoint with a template it
    1. notices exits: a drained worker is gone; any other exit is a crash, restarted after
       a backoff of 1, 2, 4 ... 60 s; `startup_crash_limit` crashes in a row before the
       gateway ever saw the worker make it `unhealthy`, and it is not started again
       (until the endpoint's settings change);
    2. marks started workers ready once the gateway has seen them (a ping or a poll since
       the process started), and which ready ones hold jobs (the store's worker records);
    3. restarts crashed workers whose backoff ended, retries throttled ones;
    4. asks the scaling policy (scaling.decide, pure) how many to start and which idle
       ones to stop; stopping is a drain: SIGTERM, the worker runtime finishes the job it
       may hold and exits; SIGKILL only after executionTimeout + `drain_extra_s`;
    5. publishes its view (FleetView.publish) for /health and the admin API.

Each worker gets its GPU(s) in CUDA_VISIBLE_DEVICES (gpus.assign: never one GPU for two
workers; no free GPU -> `throttled`), an isolated HOME (no ~/.runpod/config.toml), every
RUNPOD_* variable of PROTOCOL.md §2 from the view, its own process group, and one pipe
for its stdout and stderr, read by a LogShipper (podium.logs) that ships the lines,
tagged with the jobs they belong to, to the gateway's store (`podium logs`); the
supervisor's own start and exit lines go in the same log. On Linux a worker is killed
when the gateway process dies, so no worker outlives its gateway.

`clock` and `spawn` are injectable: tests drive `tick()` with fake processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from podium.clock import Clock
from podium.endpoints import EndpointSpec
from podium.endpoints.gpu_ids import parse_gpu_ids
from podium.fleet.gpus import Inventory, assign, discover, why_throttled
from podium.fleet.scaling import Phase, ScalingSettings, WorkerSnapshot, decide
from podium.fleet.settings import ENV as FLEET_ENV
from podium.fleet.settings import FleetSettings
from podium.fleet.status import FleetReport, WorkerStatus
from podium.fleet.view import FleetEndpoint, FleetView
from podium.logs.markers import MARKER_ENV, new_marker
from podium.logs.shipper import LogShipper
from podium.settings import ENV as GATEWAY_ENV
from podium.store.base import WorkerInfo
from podium.worker.runtime import CANNOT_START, EXIT_CANNOT_START

__all__ = ["Process", "Supervisor", "spawn_process"]

log = logging.getLogger("podium.fleet")

# The gateway's own variables are not the workers' business (a store URL may hold a
# password); RUNPOD_* are set per worker.
STOPPED_MEMORY_S = 3600.0  # how long /health remembers that a worker exited
EOF_WAIT_S = 1.0  # after an exit (its group swept): how long its last lines may take
_GATEWAY_ONLY = {*GATEWAY_ENV, *FLEET_ENV, "PODIUM_API_KEY", "PODIUM_URL", "PODIUM_LOG_LEVEL"}


class Process(Protocol):
    pid: int
    stdout: BinaryIO | None  # its stdout and stderr, one pipe (None: nothing to read)

    def poll(self) -> int | None: ...
    def terminate(self) -> None:
        """SIGTERM to the worker (a drain)."""
        ...

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group."""
        ...


Spawn = Callable[[Sequence[str], Mapping[str, str]], Process]


class _Popen:
    """A worker process in its own process group, killed if the gateway dies (Linux)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self._p = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_DIE_WITH_PARENT,  # one prctl call (see _parent_death_signal)
        )
        self.pid = self._p.pid
        self.stdout: BinaryIO | None = self._p.stdout
        self._swept = False

    def poll(self) -> int | None:
        code = self._p.poll()
        if code is not None and not self._swept:
            # Leftovers of the group (a shell's children, an SDK's ping process) go too.
            self._swept = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return code

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._p.terminate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


def _parent_death_signal() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))

    return set_signal


_DIE_WITH_PARENT = _parent_death_signal()


def _cannot_start(lines: list[str]) -> str:
    """A worker's own reason: the last `cannot start` line of its output."""
    reasons = [line.split(CANNOT_START, 1)[1] for line in lines if CANNOT_START in line]
    return reasons[-1] if reasons else f"exited with code {EXIT_CANNOT_START}"


def spawn_process(argv: Sequence[str], env: Mapping[str, str]) -> Process:
    return _Popen(argv, env)


@dataclass(eq=False)
class _Worker:
    id: str
    endpoint_id: str
    launch_key: str
    phase: Phase = Phase.STARTING
    gpus: tuple[int, ...] = ()
    proc: Process | None = None
    log: LogShipper | None = None  # ships this run's output; a restart gets a new one
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

    def snapshot(self) -> WorkerSnapshot:
        return WorkerSnapshot(self.id, self.phase, self.busy, self.idle_since)

    def status(self) -> WorkerStatus:
        return WorkerStatus(
            id=self.id,
            endpoint_id=self.endpoint_id,
            phase=self.phase,
            gpus=self.gpus,
            pid=self.proc.pid if self.proc else None,
            restarts=self.restarts,
            started_at=self.started_at,
            ready_at=self.ready_at,
            exit_code=self.exit_code,
            reason=self.reason,
        )


@dataclass(eq=False)
class _Pool:
    endpoint_id: str
    spec: EndpointSpec | None = None
    launch_key: str | None = None
    workers: dict[str, _Worker] = field(default_factory=dict)


def _scaling(spec: EndpointSpec) -> ScalingSettings:
    return ScalingSettings(
        workers_min=spec.workers_min,
        workers_max=spec.workers_max,
        idle_timeout=spec.idle_timeout,
        scaler_type=spec.scaler_type,
        scaler_value=spec.scaler_value,
        flashboot=spec.flashboot,
    )


class Supervisor:
    def __init__(
        self,
        view: FleetView,
        settings: FleetSettings,
        data_dir: Path,
        clock: Clock,
        *,
        spawn: Spawn = spawn_process,
        discover_gpus: Callable[[], Inventory] | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.view = view
        self.settings = settings
        self.data_dir = data_dir
        self.clock = clock
        self._spawn = spawn
        self._discover = discover_gpus or (lambda: discover(settings.gpus))
        env = dict(os.environ if base_env is None else base_env)
        self._base_env = {
            k: v for k, v in env.items() if not k.startswith("RUNPOD_") and k not in _GATEWAY_ONLY
        }
        home = Path(self._base_env.get("HOME") or Path.home())
        self._cache_home = self._base_env.get("XDG_CACHE_HOME") or str(home / ".cache")
        self.inventory: Inventory | None = None
        self._pools: dict[str, _Pool] = {}
        self._leaving: list[_Worker] = []  # workers of deleted endpoints, until they exit
        self._stopped: dict[str, dict[str, float]] = {}  # endpoint -> worker -> exited at
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
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
        them. `stop()` then waits for them. Call it on the event loop."""
        if self._task is not None:
            self._task.cancel()
        for w in self._all_workers():
            if w.proc is not None and w.phase is not Phase.DRAINING:
                w.phase, w.reason = Phase.DRAINING, "the gateway is shutting down"
                w.proc.terminate()

    async def stop(self) -> None:
        """Stop the loop, then every worker: SIGTERM, `shutdown_grace_s`, SIGKILL."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        running = [w for w in self._all_workers() if w.proc is not None]
        for w in running:
            assert w.proc is not None
            w.proc.terminate()
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while time.monotonic() < deadline and any(
            w.proc is not None and w.proc.poll() is None for w in running
        ):
            await asyncio.sleep(0.05)
        for w in running:
            if w.proc is not None and w.proc.poll() is None:
                log.warning("worker %s did not stop in time; killing it", w.id)
                w.proc.kill()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(
            w.proc is not None and w.proc.poll() is None for w in running
        ):
            await asyncio.sleep(0.02)
        for w in running:
            code = w.proc.poll() if w.proc is not None else None
            self._close_log(w, f"--- podium: worker {w.id} exited with code {code} ---")
        self._pools.clear()
        self._leaving.clear()

    # --- one pass -----------------------------------------------------------------------

    async def tick(self) -> None:
        now = self.clock.now()
        endpoints = await self.view.endpoints()
        wanted = {e.id: e for e in endpoints}
        for ep_id in [p for p in self._pools if p not in wanted]:
            self._retire(self._pools.pop(ep_id), now)
        if endpoints and self.inventory is None:
            self.inventory = await asyncio.to_thread(self._discover)
            self._announce_inventory(self.inventory)
            now = self.clock.now()
        for e in endpoints:
            pool = self._pools.setdefault(e.id, _Pool(e.id))
            await self._tick_endpoint(pool, e, now)
        self._reap_leaving(now)
        for ep_id, gone in list(self._stopped.items()):
            for wid, at in list(gone.items()):
                if now - at > STOPPED_MEMORY_S:
                    del gone[wid]
            if not gone:
                del self._stopped[ep_id]
        self.view.publish(
            FleetReport(
                workers={
                    ep_id: [w.status() for w in pool.workers.values()]
                    for ep_id, pool in self._pools.items()
                },
                stopped={ep: dict(gone) for ep, gone in self._stopped.items()},
                inventory=self.inventory,
            )
        )

    async def _tick_endpoint(self, pool: _Pool, e: FleetEndpoint, now: float) -> None:
        if e.launch is None:
            if pool.workers:
                log.warning("endpoint %s: %s; stopping its workers", e.id, e.problem)
            self._retire(pool, now)
            pool.workers.clear()
            return
        self._apply_settings(pool, e, now)
        # 1. exits
        for w in list(pool.workers.values()):
            if w.proc is not None:
                code = w.proc.poll()
                if code is not None:
                    self._exited(pool, w, code, now)
        # 2. what the gateway saw
        seen = {i.worker_id: i for i in await self.view.workers(e.id)}
        for w in pool.workers.values():
            self._observe(w, seen.get(w.id), now)
        # 3. the policy; stopping is a drain (or just forgetting a worker with no process)
        queue = await self.view.queue(e.id)
        snapshots = [w.snapshot() for w in pool.workers.values()]
        decision = decide(_scaling(e.spec), queue, snapshots, now)
        grace = e.spec.execution_timeout_ms / 1000 + self.settings.drain_extra_s
        for wid in decision.stop:
            w = pool.workers[wid]
            if w.proc is None:
                del pool.workers[wid]
            else:
                self._drain(w, now, grace, "not needed (idle)")
        # 4. restarts whose backoff ended, throttled workers (first come, first served),
        # then new workers
        for w in list(pool.workers.values()):
            if w.phase is Phase.THROTTLED or (
                w.phase is Phase.BACKOFF and (w.restart_at or 0) <= now
            ):
                self._launch(w, e, now)
        for _ in range(decision.start):
            w = _Worker(
                id=f"{e.id[:6]}-{secrets.token_hex(4)}",
                endpoint_id=e.id,
                launch_key=pool.launch_key or "",
            )
            pool.workers[w.id] = w
            self._launch(w, e, now)
        # 5. drains that take too long
        for w in pool.workers.values():
            if w.phase is Phase.DRAINING and w.proc is not None and (w.kill_at or now) < now:
                log.warning(
                    "worker %s: still running %.0f s after SIGTERM; killing it", w.id, grace
                )
                w.proc.kill()
                w.kill_at = None

    def _apply_settings(self, pool: _Pool, e: FleetEndpoint, now: float) -> None:
        """New settings: unhealthy workers get another chance; when what the workers
        run changed (command, model, env, GPUs), the old ones are replaced."""
        assert e.launch is not None
        key = f"{e.launch.key}:{e.spec.gpu_ids}:{e.spec.gpu_count}"
        if pool.spec is not None and pool.spec != e.spec:
            for w in list(pool.workers.values()):
                if w.phase is Phase.UNHEALTHY:
                    del pool.workers[w.id]
        if pool.launch_key is not None and pool.launch_key != key:
            log.info("endpoint %s: its worker settings changed; replacing its workers", e.id)
            for w in list(pool.workers.values()):
                if w.proc is None:
                    del pool.workers[w.id]
                elif w.phase is not Phase.DRAINING:
                    grace = e.spec.execution_timeout_ms / 1000 + self.settings.drain_extra_s
                    self._drain(w, now, grace, "replaced: the endpoint's settings changed")
        pool.spec = e.spec
        pool.launch_key = key

    def _observe(self, w: _Worker, info: WorkerInfo | None, now: float) -> None:
        if w.proc is None or w.phase not in (Phase.STARTING, Phase.READY, Phase.DRAINING):
            return
        # Seen since this process started (a restarted worker keeps its id).
        seen = info is not None and w.started_at is not None and info.last_seen >= w.started_at
        jobs = info.jobs if info is not None else 0
        if w.phase is Phase.STARTING and seen:
            w.phase, w.ready_at, w.startup_failures, w.reason = Phase.READY, now, 0, None
            log.info("worker %s is ready (%.1f s after start)", w.id, now - (w.started_at or now))
        if w.phase in (Phase.READY, Phase.DRAINING):
            w.busy = bool(seen and jobs)
            if w.busy:
                w.idle_since = None
            elif w.idle_since is None:
                w.idle_since = now
        if w.crashes and w.ready_at is not None and now - w.ready_at >= self.settings.stable_s:
            w.crashes = 0

    def _exited(self, pool: _Pool, w: _Worker, code: int, now: float) -> None:
        w.proc, w.exit_code, w.gpus, w.busy, w.idle_since = None, code, (), False, None
        last_lines = self._close_log(w, f"--- podium: worker {w.id} exited with code {code} ---")
        if w.phase is Phase.DRAINING:
            log.info("worker %s stopped (exit code %d)", w.id, code)
            self._forget(pool, w, now)
            return
        if code == 0 and w.phase is Phase.READY:
            log.info("worker %s exited on its own (code 0)", w.id)
            self._forget(pool, w, now)
            return
        if code == EXIT_CANNOT_START:  # restarting would not help: say why, stop here
            w.phase, w.restart_at = Phase.UNHEALTHY, None
            w.reason = _cannot_start(last_lines) + " (updating the endpoint retries)"
            log.error("worker %s cannot start: %s", w.id, w.reason)
            return
        self._crashed(w, f"exited with code {code}", now)

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
        assert e.launch is not None and self.inventory is not None
        request = parse_gpu_ids(e.spec.gpu_ids)
        gpus = assign(self.inventory, request, e.spec.gpu_count, self._gpus_in_use())
        if gpus is None:
            if w.phase is not Phase.THROTTLED:
                w.reason = why_throttled(self.inventory, request, e.spec.gpu_count)
                log.info("worker %s is throttled: %s", w.id, w.reason)
            w.phase = Phase.THROTTLED
            return
        restart = w.started_at is not None
        label = ",".join(g.name for g in self.inventory.gpus if g.index in gpus) or "cpu"
        home = self.data_dir / "workers" / w.id
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **self._base_env,
            # An isolated HOME: a RunPod SDK worker must not read ~/.runpod/config.toml.
            # Caches stay shared (models are big), so XDG_CACHE_HOME keeps the real one.
            "HOME": str(home),
            "XDG_CACHE_HOME": self._cache_home,
            "PODIUM_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **e.launch.env,
            **self.view.worker_env(e.id, w.id, label),
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus),
        }
        marker = env[MARKER_ENV] = new_marker()
        header = (
            f"--- podium: worker {w.id} {'restart' if restart else 'start'}, GPUs "
            f"[{env['CUDA_VISIBLE_DEVICES']}]: {e.launch.argv[0] if e.launch.argv else '?'} ---"
        )
        w.gpus, w.started_at, w.ready_at, w.idle_since, w.busy = gpus, now, None, None, False
        w.restart_at, w.reason = None, None
        if restart:
            w.restarts += 1
        sink = self.view.log_sink(e.id, w.id)
        try:
            w.proc = self._spawn(e.launch.argv, env)
        except OSError as exc:
            w.gpus = ()
            w.phase = Phase.STARTING
            w.log = LogShipper(None, sink, name=w.id).start()
            w.log.note(header)
            self._close_log(w, f"--- podium: cannot start {e.launch.argv[:1]}: {exc} ---")
            self._crashed(w, f"cannot start: {exc.strerror or exc}", now)
            return
        w.log = LogShipper(w.proc.stdout, sink, marker=marker, name=w.id)
        w.log.note(header)  # before the reader starts: the first line of this run
        w.log.start()
        w.phase = Phase.STARTING
        log.info(
            "worker %s started for endpoint %s (pid %d, GPUs [%s])",
            w.id,
            e.id,
            w.proc.pid,
            env["CUDA_VISIBLE_DEVICES"],
        )

    def _drain(self, w: _Worker, now: float, grace: float, why: str) -> None:
        assert w.proc is not None
        w.phase, w.kill_at, w.reason = Phase.DRAINING, now + grace, why
        log.info("worker %s: draining (%s)", w.id, why)
        w.proc.terminate()

    def _retire(self, pool: _Pool, now: float) -> None:
        """The endpoint is gone: stop its workers (SIGTERM, then SIGKILL soon)."""
        for w in pool.workers.values():
            if w.proc is not None:
                self._drain(w, now, self.settings.delete_grace_s, "the endpoint was deleted")
                self._leaving.append(w)

    def _reap_leaving(self, now: float) -> None:
        for w in list(self._leaving):
            code = None if w.proc is None else w.proc.poll()
            if w.proc is None or code is not None:
                self._leaving.remove(w)
                self._close_log(w, f"--- podium: worker {w.id} exited with code {code} ---")
            elif (w.kill_at or now) < now:
                w.proc.kill()
                w.kill_at = None

    # --- helpers ------------------------------------------------------------------------

    def _all_workers(self) -> list[_Worker]:
        return [w for p in self._pools.values() for w in p.workers.values()] + self._leaving

    def _gpus_in_use(self) -> set[int]:
        return {g for w in self._all_workers() if w.proc is not None for g in w.gpus}

    @staticmethod
    def _close_log(w: _Worker, last: str) -> list[str]:
        """The worker's process is gone: its last lines (the pipe ends once its group is
        swept), then `last`, then the shipper stops once they are shipped. The last lines
        it wrote, for a reason to show."""
        if w.log is None:
            return []
        w.log.wait_eof(EOF_WAIT_S)
        lines = w.log.recent()
        w.log.note(last)
        w.log.finish()
        w.log = None
        return lines

    @staticmethod
    def _announce_inventory(inventory: Inventory) -> None:
        if inventory.warning:
            log.warning("%s", inventory.warning)
        for g in inventory.gpus:
            log.info("GPU %d: %s, %d MiB (%s)", g.index, g.name, g.memory_mb, inventory.source)
