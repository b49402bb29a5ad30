"""Handler kinds and load_handler."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path
from typing import Any

import pytest

from podium.worker.config import ConfigError
from podium.worker.handlers import HandlerKind, kind_of, load_handler, run_in_thread


def plain(job: Any) -> Any:
    return job


async def coro(job: Any) -> Any:
    return job


def gen(job: Any) -> Any:
    yield job


async def agen(job: Any) -> Any:
    yield job


class Callable:
    async def __call__(self, job: Any) -> Any:
        return job


class Batch:
    max_batch = 2
    max_wait_s = 0.1

    def handle_batch(self, jobs: list[Any]) -> list[Any]:
        return jobs


@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (plain, HandlerKind.FUNCTION),
        (coro, HandlerKind.COROUTINE),
        (gen, HandlerKind.GENERATOR),
        (agen, HandlerKind.ASYNC_GENERATOR),
        (functools.partial(agen), HandlerKind.ASYNC_GENERATOR),
        (Callable(), HandlerKind.COROUTINE),
        (Batch(), HandlerKind.BATCH),
    ],
)
def test_kind_of(handler: Any, kind: HandlerKind) -> None:
    assert kind_of(handler) is kind


def test_kind_of_refuses_what_cannot_be_called() -> None:
    with pytest.raises(ConfigError, match="callable"):
        kind_of(42)


def test_load_handler_from_a_module_and_a_file(tmp_path: Path) -> None:
    assert load_handler("tests.worker.test_handlers:plain") is plain
    assert isinstance(load_handler("tests.worker.test_handlers:Batch"), type)
    (tmp_path / "helper_mod_x.py").write_text("VALUE = 7\n")
    (tmp_path / "my_handler_x.py").write_text(
        "import helper_mod_x\n\ndef handler(job):\n    return helper_mod_x.VALUE\n"
    )
    fn = load_handler(f"{tmp_path}/my_handler_x.py:handler")
    assert fn({}) == 7
    assert load_handler(f"{tmp_path}/my_handler_x.py")({}) == 7  # `handler` by default


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.worker.test_handlers:missing", "no attribute 'missing'"),
        ("no_such_module_zz:handler", "Cannot import"),
        ("nowhere/handler.py:handler", "does not exist"),
        (":handler", "MODULE:FUNCTION"),
    ],
)
def test_load_handler_errors_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_handler(spec)


async def test_run_in_thread_runs_off_the_loop_and_propagates_errors() -> None:
    main = threading.get_ident()
    assert await run_in_thread(threading.get_ident) != main

    def boom() -> None:
        raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        await run_in_thread(boom)


async def test_run_in_thread_keeps_the_loop_responsive() -> None:
    release = threading.Event()
    future = run_in_thread(release.wait, 5)
    ticks = 0
    for _ in range(3):
        await asyncio.sleep(0.01)
        ticks += 1
    release.set()
    assert await future is True and ticks == 3


async def test_run_in_thread_reuses_idle_threads_and_names_them_after_the_job() -> None:
    def me() -> tuple[threading.Thread, str]:
        return threading.current_thread(), threading.current_thread().name

    threads = set()
    for i in range(20):  # one after the other: an idle thread takes each call
        thread, name = await run_in_thread(me, name=f"job-{i}")
        assert name == f"job-{i}"
        threads.add(thread)
    assert len(threads) <= 5  # the few left idle by earlier calls, not one per call
    # two at once: two threads, both busy until released
    release = threading.Event()
    started = threading.Barrier(3, timeout=5)

    def held() -> int:
        started.wait()
        release.wait(5)
        return threading.get_ident()

    calls = [run_in_thread(held, name=f"job-{i}") for i in range(2)]
    await asyncio.get_running_loop().run_in_executor(None, started.wait)
    release.set()
    assert len(set(await asyncio.gather(*calls))) == 2
