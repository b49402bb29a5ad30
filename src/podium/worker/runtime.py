"""The worker runtime: take jobs, run the handler, post results (PROTOCOL.md §2).

    run_worker(config, handler) -> exit code
        Worker.run()                 the event loop; owns per-job state and concurrency
          _take_loop                 long-polls job-take / job-take-batch while slots are free
          _stop_loop                 long-polls job-stop; sets `is_cancelled`, cancels async work
          one task per job (or per batch)   run the handler, stream, post the result
        Heartbeat (a thread)         pings with the held job ids, whatever the loop is doing
        SIGTERM / SIGINT             1st: take no more, finish and post, exit 0
                                     2nd: hand back (exit at once, post nothing)

Sync handlers (and sync generators, and BatchHandler.handle_batch) run in a thread of their
own so the loop stays responsive; async ones run on the loop. Logs carry job ids and
durations, never inputs or outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import httpx

from podium.board import CANNOT_START, EXIT_CANNOT_START
from podium.logs.markers import write_marker
from podium.worker import api
from podium.worker.backoff import Backoff
from podium.worker.config import ConfigError, WorkerConfig
from podium.worker.handlers import HandlerKind, kind_of, load_handler, run_in_thread
from podium.worker.heartbeat import Heartbeat
from podium.worker.results import (
    Payload,
    batch_payloads,
    chunk_error,
    encode,
    encode_chunk,
    error_payload,
    exception_payload,
    output_payload,
    stream_payload,
)
from podium.worker.snapshot import announce, snapshot_point
from podium.worker.startup import Startup
from podium.worker.transport import Delivery, GatewayRefused, Throttled, Transport

__all__ = [
    "Worker",
    "WorkerConfig",
    "build_and_run",
    "load_handler",
    "run_worker",
    "start",
]

log = logging.getLogger("podium.worker")

EXIT_OK = 0
EXIT_REFUSED = 1  # the gateway refused this worker (token, endpoint)
DRAIN_TAKE_GRACE_S = 2.0  # on stop: how long a take in flight may still bring jobs
FAST_EMPTY_S = 0.5  # an empty answer faster than this: the server does not hold; slow down
CHUNK_QUEUE = 64  # sync generator chunks buffered ahead of their posts

_END = object()
Chunks = AsyncGenerator[tuple[str, Any], None]  # ("chunk", job-stream body) | ("error", msg)


@dataclass(slots=True, eq=False)
class _Running:
    """Per-job state while the job is this worker's."""

    job: dict[str, Any]
    ctx: api.JobContext
    started: float
    stopped: bool = False
    work: asyncio.Task[Any] | None = None  # cancelled on stop when the handler is async
    cancellable: bool = False
    progress: _Progress | None = None

    @property
    def id(self) -> str:
        return self.ctx.job_id


@dataclass(slots=True, eq=False)
class _Progress:
    """Posts a job's progress in order, keeping only the newest value when posts lag."""

    transport: Transport
    job_id: str
    abandoned: Callable[[], bool]
    latest: bytes | None = None
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def offer(self, body: bytes) -> None:  # on the loop
        if self.closed:
            return
        self.latest = body
        self.wake.set()
        if self.task is None:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self.closed:
            await self.wake.wait()
            self.wake.clear()
            body, self.latest = self.latest, None
            if body is not None and not self.closed:
                await self.transport.post_progress(self.job_id, body, self.abandoned)

    async def close(self) -> None:
        """Drop what is pending; let a post in flight land before the result."""
        self.closed = True
        self.wake.set()
        if self.task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.task, 10.0)


class Worker:
    def __init__(self, config: WorkerConfig, handler: Any) -> None:
        self.config = config
        self.handler = handler
        self.kind = kind_of(handler)
        self.heartbeat = Heartbeat(config)
        self.backoff = Backoff(base_s=0.5, cap_s=10.0)
        self.exit_code = EXIT_OK
        self._running: dict[str, _Running] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._concurrency = config.concurrency
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._filling = False
        self._taking = False  # a job-take request is in flight
        self._signals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: Transport | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        restore = self._install_signals()
        log.info(
            "worker %s started: %s handler, concurrency %d%s",
            self.config.worker_id,
            self.kind.value,
            self.config.concurrency,
            f", batches of up to {self._batch_limit()}" if self._batch_limit() > 1 else "",
        )
        self._log_handler_info()
        try:
            async with httpx.AsyncHTTPTransport() as http:
                self._transport = Transport(self.config, http)
                self.heartbeat.start()
                take = asyncio.create_task(self._take_loop(), name="take")
                stop = asyncio.create_task(self._stop_loop(), name="stop")
                try:
                    await self._stopping.wait()
                    await self._drain(take)
                finally:
                    for task in (take, stop, *self._tasks):
                        task.cancel()
                    await asyncio.gather(take, stop, *self._tasks, return_exceptions=True)
        finally:
            self.heartbeat.stop()
            restore()
        log.info("worker %s exiting (code %d)", self.config.worker_id, self.exit_code)
        return self.exit_code

    def _log_handler_info(self) -> None:
        """A handler may describe itself (`info() -> dict`, e.g. the model it serves)."""
        info = getattr(self.handler, "info", None)
        if callable(info):
            try:
                log.info("handler: %s", json.dumps(info(), default=str))
            except Exception as exc:
                log.warning("handler.info() raised %s", type(exc).__name__)

    def request_stop(self, reason: str) -> None:
        """Take no more jobs; finish the running ones; then `run` returns."""
        if not self._stopping.is_set():
            log.info("%s: taking no more jobs; finishing %d job(s)", reason, len(self._running))
        self._stopping.set()
        self._slot_freed.set()

    async def _drain(self, take: asyncio.Task[None]) -> None:
        """Wait for every job task, including ones a take in flight still brings.

        A take in flight when the stop came may already carry jobs the gateway counts as
        this worker's (its answer is on the wire): it gets DRAIN_TAKE_GRACE_S to arrive,
        and those jobs run to the end. A long-poll still empty by then is dropped; the
        gateway stops holding it as the connection closes, so no job goes to it."""
        if self._taking and not take.done():
            await asyncio.wait({take}, timeout=DRAIN_TAKE_GRACE_S)
        while True:
            busy: set[asyncio.Task[Any]] = set(self._tasks)
            if self._filling and not take.done():
                busy.add(take)
            if not busy:
                return
            await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            log.warning("not on the main thread: SIGTERM/SIGINT keep their default handling")
            return lambda: None
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1 and self._loop is not None:
            self._loop.call_soon_threadsafe(self.request_stop, name)
            return
        # Second signal: hand the jobs back. Nothing is posted; their leases lapse and the
        # gateway requeues them. os._exit: handler threads cannot be interrupted otherwise.
        held = ",".join(self.heartbeat.job_ids()) or "none"
        os.write(2, f"podium.worker: second {name}: handing back jobs {held}\n".encode())
        os._exit(128 + signum)

    # --- taking jobs --------------------------------------------------------------------

    def _batch_limit(self) -> int:
        if self.kind is HandlerKind.BATCH:
            return self.config.batch_size if self.config.batch_size > 1 else self.handler.max_batch
        return self.config.batch_size

    def _capacity(self) -> int:
        modifier = self.config.concurrency_modifier
        if modifier is not None:
            self._concurrency = max(1, int(modifier(self._concurrency)))
        return self._concurrency

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker is asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _take_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            free = self._capacity() - len(self._tasks)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            started = time.monotonic()
            self._taking = True
            try:
                jobs = await self._take(free)
                failures = 0
            except GatewayRefused as exc:
                log.error("%s Stopping.", exc.message)
                self.exit_code = EXIT_REFUSED
                self.request_stop("refused by the gateway")
                return
            except Throttled as exc:
                await self._pause(exc.retry_after_s)
                continue
            except Exception as exc:  # network, 5xx, or a bug: never let taking die silently
                if failures == 0:
                    log.warning(
                        "job-take failed (%s); retrying",
                        type(exc).__name__,
                        exc_info=not isinstance(exc, httpx.HTTPError | OSError),
                    )
                await self._pause(self.backoff.delay(failures))
                failures += 1
                continue
            finally:
                self._taking = False
            if jobs:
                self._launch(jobs)
            elif time.monotonic() - started < FAST_EMPTY_S:
                await self._pause(1.0)

    async def _take(self, free: int) -> list[dict[str, Any]]:
        assert self._transport is not None
        hold = self.config.take_hold_s
        in_progress = bool(self._running)
        if self.kind is not HandlerKind.BATCH:
            return self._accept(
                await self._transport.take(min(free, self._batch_limit()), in_progress, hold)
            )
        limit = self._batch_limit()
        jobs = self._accept(await self._transport.take(limit, in_progress, hold))
        # Fill the batch with what is queued now: ask again without holding while each ask
        # brings more, for at most max_wait_s. The first answer already held every job that
        # was queued (up to `limit`), so a lone job starts after one empty ask (a round
        # trip) instead of waiting max_wait_s for company that is not coming; under load
        # the jobs queue while a batch runs, and the next take gets them all at once.
        deadline = time.monotonic() + float(self.handler.max_wait_s)
        self._filling = True
        try:
            while jobs and len(jobs) < limit and not self._stopping.is_set():
                if deadline - time.monotonic() <= 0:
                    break
                more = self._accept(await self._transport.take(limit - len(jobs), True, 0.0))
                if not more:
                    break
                jobs += more
        except (httpx.HTTPError, OSError, Throttled, GatewayRefused) as exc:
            log.warning("filling a batch failed (%s); running %d job(s)", exc, len(jobs))
        finally:
            self._filling = False
        return jobs

    def _accept(self, items: list[Any]) -> list[dict[str, Any]]:
        """Valid job objects; their leases are renewed from this moment."""
        jobs = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                log.warning("job-take returned an item without a string id; skipped")
                continue
            self.heartbeat.add(item["id"])
            jobs.append(item)
        return jobs

    def _launch(self, jobs: list[dict[str, Any]]) -> None:
        if self.kind is HandlerKind.BATCH:
            self._spawn(self._run_batch(jobs), f"batch-{jobs[0]['id']}")
        else:
            for job in jobs:
                self._spawn(self._run_job(job), f"job-{job['id']}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._slot_freed.set()
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                log.error("%s crashed: %s", name, type(exc).__name__, exc_info=exc)

        task.add_done_callback(done)

    # --- the stop channel ---------------------------------------------------------------

    async def _stop_loop(self) -> None:
        assert self._transport is not None
        url = self.config.stop_request_url()
        if url is None:
            log.warning("the job-take URL has no /job-take/ part: per-job stop is disabled")
            return
        failures = 0
        while True:
            started = time.monotonic()
            try:
                ids = await self._transport.poll_stop(url)
                failures = 0
            except Throttled as exc:
                await asyncio.sleep(exc.retry_after_s)
                continue
            except Exception as exc:  # network, 5xx, refused: keep polling, slower
                if failures == 0:
                    log.warning("job-stop failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self.backoff.delay(failures))
                failures += 1
                continue
            for job_id in ids:
                self.stop_job(job_id)
            if not ids and time.monotonic() - started < FAST_EMPTY_S:
                await asyncio.sleep(1.0)

    def stop_job(self, job_id: str) -> bool:
        """The gateway cancelled or timed out this job: tell the handler, post nothing."""
        rec = self._running.get(job_id)
        if rec is None or rec.stopped:
            return False
        rec.stopped = True
        rec.ctx.cancelled.set()
        self.heartbeat.remove(job_id)
        if rec.cancellable and rec.work is not None:
            rec.work.cancel()
        log.info("job %s: stop requested (cancelled or timed out)", job_id)
        return True

    # --- running one job ----------------------------------------------------------------

    def _begin(self, job: dict[str, Any]) -> _Running:
        job_id = job["id"]
        rec = _Running(job=job, ctx=api.JobContext(job_id, lambda _: None), started=0.0)
        rec.ctx.send_progress = self._progress_sender(rec)
        rec.cancellable = self.kind in (HandlerKind.COROUTINE, HandlerKind.ASYNC_GENERATOR)
        rec.started = time.monotonic()
        self._running[job_id] = rec
        api.register(rec.ctx)
        log.info("job %s started", job_id)
        write_marker(self.config.log_marker, "start", job_id)
        return rec

    def _progress_sender(self, rec: _Running) -> Callable[[Any], None]:
        loop = self._loop
        assert loop is not None and self._transport is not None
        transport = self._transport

        def offer(body: bytes) -> None:
            if rec.progress is None:
                rec.progress = _Progress(transport, rec.id, lambda: rec.stopped)
            rec.progress.offer(body)

        def send(progress: Any) -> None:  # any thread; never blocks the handler
            try:
                body = json.dumps({"status": "IN_PROGRESS", "output": progress}).encode()
            except (TypeError, ValueError) as exc:
                log.warning("job %s: progress is not JSON-serializable (%s)", rec.id, exc)
                return
            with contextlib.suppress(RuntimeError):  # the loop is gone: the worker exits
                loop.call_soon_threadsafe(offer, body)

        return send

    async def _finish(self, rec: _Running, payload: Payload, is_stream: bool) -> None:
        """Post the result (unless the job was stopped) and forget the job."""
        assert self._transport is not None
        try:
            if rec.progress is not None:
                await rec.progress.close()
            took = time.monotonic() - rec.started
            if rec.stopped:
                log.info("job %s stopped after %.3f s; no result posted", rec.id, took)
                return
            body, failed = encode(payload)
            status = "FAILED" if failed else "COMPLETED"
            take_next = self._next_wanted()
            posted = await self._transport.post_result(
                rec.id, body, is_stream, lambda: rec.stopped, take_next
            )
            if posted.delivery is Delivery.ACKED:
                log.info("job %s %s in %.3f s", rec.id, status, took)
            else:
                log.error(
                    "job %s %s in %.3f s; result %s", rec.id, status, took, posted.delivery.value
                )
            if posted.jobs:
                # Ours already (IN_PROGRESS, leased): run them even when stopping.
                self._launch(self._accept(posted.jobs[:take_next]))
        finally:
            self._forget(rec)

    def _next_wanted(self) -> int:
        """How many jobs the result post of a finishing job may bring back (`podium_next`):
        the slots free once it is gone, unless the take loop is already asking for them,
        the worker is stopping, or the handler takes batches (the take loop fills those)."""
        if self._taking or self._stopping.is_set() or self.kind is HandlerKind.BATCH:
            return 0
        busy = len(self._tasks) - 1  # this job's task is still among them
        return max(0, min(self._capacity() - busy, self._batch_limit()))

    def _forget(self, rec: _Running) -> None:
        write_marker(self.config.log_marker, "end", rec.id)
        api.unregister(rec.id)
        self._running.pop(rec.id, None)
        self.heartbeat.remove(rec.id)

    def _refresh(self, payloads: list[Payload], what: str) -> None:
        """refresh_worker (config or returned): stopPod on the result(s), then exit."""
        if self.config.refresh_worker or any(p.get("stopPod") for p in payloads):
            for payload in payloads:
                payload["stopPod"] = True
            self.request_stop(f"{what} asked to refresh the worker")

    async def _run_job(self, job: dict[str, Any]) -> None:
        rec = self._begin(job)
        try:
            if "input" not in job:
                payload, is_stream = error_payload("The job has no input."), False
            else:
                rec.work = asyncio.create_task(self._execute(rec), name=f"handler-{rec.id}")
                try:
                    payload, is_stream = await rec.work
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if not rec.stopped or (current is not None and current.cancelling()):
                        raise  # the worker itself is being cancelled
                    payload, is_stream = {}, False
            if not rec.stopped:
                self._refresh([payload], f"job {rec.id}")
        except BaseException:
            self._forget(rec)
            raise
        await self._finish(rec, payload, is_stream)

    async def _execute(self, rec: _Running) -> tuple[Payload, bool]:
        """Run the handler: (job-done payload, isStream)."""
        job = rec.job
        streaming = self.kind in (HandlerKind.GENERATOR, HandlerKind.ASYNC_GENERATOR)
        try:
            if self.kind is HandlerKind.GENERATOR:
                return await self._stream(rec, self._sync_chunks(rec)), True
            if self.kind is HandlerKind.ASYNC_GENERATOR:
                return await self._stream(rec, self._async_chunks(rec)), True
            if self.kind is HandlerKind.COROUTINE:
                value = await self.handler(job)
            else:
                value = await run_in_thread(self.handler, job, name=f"job-{rec.id}")
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            log.error("job %s: the handler raised %s", rec.id, type(exc).__name__)
            return exception_payload(exc, self.config.worker_id, self.config.hostname), streaming
        return output_payload(value), False

    # --- generators ---------------------------------------------------------------------

    async def _stream(self, rec: _Running, chunks: Chunks) -> Payload:
        """Post each chunk in order; the final payload of a generator job."""
        assert self._transport is not None
        kept: list[Any] = []
        async with contextlib.aclosing(chunks):
            async for kind, value in chunks:
                if kind == "error":
                    return error_payload(value)
                if not rec.stopped:
                    await self._transport.post_chunk(rec.id, value, lambda: rec.stopped)
                if self.config.return_aggregate_stream:
                    kept.append(json.loads(value)["output"])  # a snapshot, as posted
        return stream_payload(kept, self.config.return_aggregate_stream)

    async def _async_chunks(self, rec: _Running) -> Chunks:
        agen = self.handler(rec.job)
        try:
            async for chunk in agen:
                item = _classify(chunk)
                yield item
                if item[0] == "error":
                    return
        finally:
            await agen.aclose()

    async def _sync_chunks(self, rec: _Running) -> Chunks:
        """Iterate a sync generator in a handler thread; chunks cross over to the loop one
        `call_soon_threadsafe` each, at most CHUNK_QUEUE ahead of their posts (the
        generator waits while posts lag, as with the SDK)."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()
        room = threading.Semaphore(CHUNK_QUEUE)

        def put(item: Any) -> bool:  # in the thread
            while not room.acquire(timeout=0.5):
                if loop.is_closed():
                    return False
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the loop is closed: the worker exits
                return False
            return True

        def produce() -> None:
            try:
                gen = self.handler(rec.job)
                try:
                    for chunk in gen:
                        item = _classify(chunk)
                        if not put(item) or item[0] == "error" or rec.ctx.cancelled.is_set():
                            break
                finally:
                    gen.close()
            except Exception as exc:
                log.error("job %s: the handler raised %s", rec.id, type(exc).__name__)
                payload = exception_payload(exc, self.config.worker_id, self.config.hostname)
                put(("error", payload["error"]))
            finally:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(items.put_nowait, _END)  # never waits for room

        run_in_thread(produce, name=f"job-{rec.id}")
        while (item := await items.get()) is not _END:
            room.release()
            yield item

    # --- batches ------------------------------------------------------------------------

    async def _run_batch(self, jobs: list[dict[str, Any]]) -> None:
        recs = [self._begin(job) for job in jobs]
        try:
            handle = self.handler.handle_batch
            if inspect.iscoroutinefunction(handle):
                results = await handle(jobs)
            else:
                results = await run_in_thread(handle, jobs, name=f"batch-{jobs[0]['id']}")
            payloads = batch_payloads(results, len(jobs))
        except Exception as exc:
            log.error("batch of %d: handle_batch raised %s", len(jobs), type(exc).__name__)
            error = exception_payload(exc, self.config.worker_id, self.config.hostname)
            payloads = [dict(error) for _ in jobs]
        except BaseException:
            for rec in recs:
                self._forget(rec)
            raise
        self._refresh(payloads, f"a batch of {len(jobs)}")
        await asyncio.gather(
            *(self._finish(rec, p, False) for rec, p in zip(recs, payloads, strict=True))
        )


def _classify(chunk: Any) -> tuple[str, Any]:
    """("error", message) for an error chunk (or one JSON cannot carry), else
    ("chunk", its job-stream body)."""
    error = chunk_error(chunk)
    if error is not None:
        return ("error", error)
    try:
        return ("chunk", encode_chunk(chunk))
    except (TypeError, ValueError) as exc:
        return ("error", f"A streamed chunk is not JSON-serializable: {exc}")


# --- entry points ----------------------------------------------------------------------


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("podium.worker")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def build_and_run(
    config: WorkerConfig,
    build: Callable[[], Any],
    reconfigure: Callable[[], WorkerConfig] | None = None,
) -> int:
    """Build the handler, then run the worker: what both worker entry points do. A
    handler that cannot be built (a model that is not there, a module that does not
    import) is reported to the gateway as unhealthy with the reason, written to stderr,
    and the process exits EXIT_CANNOT_START, which the supervisor does not restart.
    Once built, the worker stops at the snapshot point (worker/snapshot.py) when its
    fleet asked for one; `reconfigure` then rebuilds the config from the identity it
    was given there (a copy restored from a snapshot is a new worker)."""
    booted_at = time.time()
    announce()  # to a fleet that takes snapshots: this worker will stop at the point
    try:
        handler = build()
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(CANNOT_START + reason, file=sys.stderr, flush=True)
        heartbeat = Heartbeat(config)
        try:
            heartbeat.report_unhealthy("handler", reason)
        finally:
            heartbeat.stop()
        return EXIT_CANNOT_START
    resumed = snapshot_point()
    if resumed is None:
        return run_worker(config, handler, Startup.now(booted_at))
    if reconfigure is not None:
        config = reconfigure()
    # a restored copy came up just now, its handler already built
    startup = Startup.now() if resumed.restored else Startup.now(booted_at)
    return run_worker(config, handler, startup)


def run_worker(config: WorkerConfig, handler: Any, startup: Startup | None = None) -> int:
    """Run until SIGTERM/SIGINT (or refresh_worker); the process exit code. `startup`:
    when the process came up (default: the handler was built just now)."""
    _configure_logging(config.log_level)
    worker = Worker(config, handler)
    worker.heartbeat.startup = startup or Startup.now()
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(worker.run())
    except KeyboardInterrupt:
        return 130


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (it comes with uvicorn[standard]): each request to the
    gateway costs the loop ~25% less CPU than asyncio's own (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def start(config: Mapping[str, Any]) -> None:
    """Drop-in for `runpod.serverless.start({...})`: reads RUNPOD_* env vars and runs.

    Understands `handler`, `return_aggregate_stream`, `refresh_worker` and
    `concurrency_modifier`; other keys (e.g. `rp_args`) are ignored.
    """
    if "handler" not in config:
        raise ConfigError('start() needs {"handler": your_function, ...}.')
    # The handler's module has built everything by now: the snapshot point
    resumed = snapshot_point()
    try:
        worker_config = WorkerConfig.from_env(
            return_aggregate_stream=config.get("return_aggregate_stream"),
            refresh_worker=config.get("refresh_worker"),
            concurrency_modifier=config.get("concurrency_modifier"),
        )
    except ConfigError as exc:
        print(f"podium.worker: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    restored = resumed is not None and resumed.restored
    code = run_worker(worker_config, config["handler"], Startup.now() if restored else None)
    if code:
        raise SystemExit(code)
