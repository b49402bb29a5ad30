"""The heartbeat: a thread with its own sync HTTP client that pings every interval.

It does not share the event loop, so a handler that blocks the loop (an async handler
doing CPU work) or holds the GIL in a busy loop cannot starve it: CPython hands the GIL
to other threads every switch interval (5 ms), and a ping needs only a few slices. The
RunPod SDK uses a separate process for the same reason; a thread is lighter and sees
the in-progress job set without a shared-memory mirror.

Each ping names every job this worker holds (`job_id=a,b`) until its result is
acknowledged, so a result still being retried keeps its lease. A Podium gateway's answer
says how often it expects a ping (PING_INTERVAL_HEADER): when that is more often than
this worker's own setting (a worker started by hand without RUNPOD_PING_INTERVAL), the
heartbeat follows the gateway, so that its jobs' leases never run out between pings.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from podium import __version__ as podium_version
from podium.codec import ascii_digits
from podium.endpoints.worker_env import PING_INTERVAL_HEADER
from podium.worker.config import WorkerConfig, with_query
from podium.worker.results import RUNPOD_COMPAT_VERSION
from podium.worker.startup import Startup

__all__ = ["Heartbeat"]

log = logging.getLogger("podium.worker")


class Heartbeat:
    def __init__(self, config: WorkerConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self._jobs: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        timeout = min(max(config.ping_interval_s, 2.0), 30.0)
        headers = {"Authorization": config.token} if config.token else {}
        self._client = client or httpx.Client(headers=headers, timeout=timeout)
        self._failing = False
        self.interval_s = config.ping_interval_s  # the gateway may ask for a shorter one
        self.startup: Startup | None = None  # sent on every ping (worker/startup.py)

    # --- the job set (any thread) -------------------------------------------------------

    def add(self, job_id: str) -> None:
        with self._lock:
            self._jobs.add(job_id)

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.discard(job_id)

    def job_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)

    # --- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # a ping still in flight; the daemon dies with us
                return
        self._client.close()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.beat()
            next_at += self.interval_s
            now = time.monotonic()
            if next_at < now:  # a slow ping: do not burst to catch up
                next_at = now
            self._stop.wait(next_at - now)

    def report_unhealthy(self, check: str, reason: str) -> bool:
        """One ping that marks this worker unhealthy, with why (as the runpod SDK does
        before it exits); the gateway shows the reason."""
        return self.beat({"status": "unhealthy", "check": check, "reason": reason[:1000]})

    def params(self) -> dict[str, str]:
        jobs = self.job_ids()
        params = {
            "runpod_version": RUNPOD_COMPAT_VERSION,
            "podium_version": podium_version,
            "state": "running" if jobs else "idle",
        }
        if jobs:
            params["job_id"] = ",".join(jobs)
        if self.startup is not None:
            params.update(self.startup.params())
        return params

    def beat(self, extra: dict[str, str] | None = None) -> bool:
        """Send one ping; True when the gateway acknowledged it."""
        try:
            # Not `params=`: httpx would replace the URL's own query (gpu=...).
            params = {**self.params(), **(extra or {})}
            response = self._client.get(with_query(self.config.ping_url, params))
            ok = response.is_success
            problem = f"HTTP {response.status_code}"
            if ok:
                self._follow(response.headers.get(PING_INTERVAL_HEADER, ""))
        except httpx.HTTPError as exc:
            ok, problem = False, type(exc).__name__
        if ok and self._failing:
            log.info("heartbeat: the gateway answers again")
        elif not ok and not self._failing:
            log.warning("heartbeat: ping failed (%s); still trying every interval", problem)
        self._failing = not ok
        return ok

    def _follow(self, gateway_ms: str) -> None:
        """Ping at least as often as the gateway expects (its answer's header)."""
        if not ascii_digits(gateway_ms) or len(gateway_ms) > 9 or int(gateway_ms) < 100:
            return
        wanted = int(gateway_ms) / 1000.0
        if wanted < self.interval_s:
            log.warning(
                "heartbeat: the gateway expects a ping every %g s, more often than this "
                "worker's %g s (RUNPOD_PING_INTERVAL); pinging every %g s",
                wanted,
                self.interval_s,
                wanted,
            )
            self.interval_s = wanted
