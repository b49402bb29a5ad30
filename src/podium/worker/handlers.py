"""Handlers: finding one by name, telling its kind, and running sync code off the loop.

The kinds are the RunPod SDK's (`rp_handler.is_generator`, `rp_job.run_job`): a plain
function, a coroutine function, a generator function, an async generator function; plus
Podium's BatchHandler (podium.worker.api).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import inspect
import queue
import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from podium.worker.api import BatchHandler
from podium.worker.config import ConfigError

__all__ = ["HandlerKind", "kind_of", "load_handler", "run_in_thread"]

T = TypeVar("T")


class HandlerKind(StrEnum):
    FUNCTION = "function"
    COROUTINE = "coroutine"
    GENERATOR = "generator"
    ASYNC_GENERATOR = "async generator"
    BATCH = "batch"


def _unwrap(handler: Any) -> Any:
    """The function behind a partial or a callable object (for kind detection only)."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    if not inspect.isroutine(handler) and callable(handler):
        return type(handler).__call__
    return handler


def kind_of(handler: Any) -> HandlerKind:
    if isinstance(handler, BatchHandler):
        return HandlerKind.BATCH
    if not callable(handler):
        raise ConfigError(
            f"The handler must be callable or a BatchHandler, got {type(handler).__name__}."
        )
    fn = _unwrap(handler)
    if inspect.isasyncgenfunction(fn):
        return HandlerKind.ASYNC_GENERATOR
    if inspect.isgeneratorfunction(fn):
        return HandlerKind.GENERATOR
    if inspect.iscoroutinefunction(fn):
        return HandlerKind.COROUTINE
    return HandlerKind.FUNCTION


def load_handler(spec: str) -> Any:
    """`package.module:function` or `path/to/handler.py:function` (attribute paths like
    `module:obj.method` work too; without `:function` the name is `handler`)."""
    target, _, attr = spec.rpartition(":") if ":" in spec else (spec, ":", "handler")
    if not target or not attr:
        raise ConfigError(f"Give the handler as MODULE:FUNCTION or FILE.py:FUNCTION, got {spec!r}.")
    module = _import(target, spec)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"{target} has no attribute {attr!r} (from handler {spec!r})."
            ) from None
    kind_of(obj)  # fails loudly on a non-callable
    return obj


def _import(target: str, spec: str) -> Any:
    if target.endswith(".py") or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise ConfigError(f"Handler file {target} does not exist (from handler {spec!r}).")
        # Let the handler import the modules next to it, as `python handler.py` would.
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = path.stem if path.stem not in sys.modules else f"_podium_handler_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"Cannot load {target} as a Python module.")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise ConfigError(
                f"Cannot import handler module {target!r}: {exc}. Run from the directory "
                "that contains it, or give a file path like path/to/handler.py:handler."
            ) from exc
        raise


class _Threads:
    """Daemon threads kept for the next call. Handing a call to an idle thread costs
    ~20 µs; starting a thread for each job cost ~250 µs of every job's latency
    (docs/benchmarks.md). A thread is added only when every one is busy, so there are
    never more than the calls running at once (the worker's concurrency)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a call that no call was promised to yet

    def submit(self, call: Callable[[], None], name: str) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        self._calls.put((call, name))
        if start:
            threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        me = threading.current_thread()
        while True:
            call, me.name = self._calls.get()  # named after the job while it runs
            call()
            me.name = "handler-idle"
            with self._lock:
                self._idle += 1


_THREADS = _Threads()


def run_in_thread(fn: Callable[..., T], *args: Any, name: str = "handler") -> asyncio.Future[T]:
    """Run `fn(*args)` in a daemon thread; the future resolves on the running loop.

    The event loop stays free (stop polling, stream and result posts) while sync code
    runs. Daemon threads, not an executor's, so that exiting never waits for a handler
    that is still running (a hand-back on the second SIGTERM).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the worker exits
            loop.call_soon_threadsafe(settle, *outcome)

    _THREADS.submit(target, name)
    return future
