"""SD fixtures: one tiny model per session (built into a tmp dir), job contexts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from podium.worker.api import JobContext, register, unregister


@pytest.fixture(scope="session")
def sd_data_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("sd-data")


@pytest.fixture(scope="session")
def tiny(sd_data_dir) -> Any:
    """An SDHandler on the tiny model, CPU float32 (torch is imported only when used)."""
    import torch

    from podium.sd.handler import SDHandler

    torch.set_num_threads(1)  # the tiny model's ops are too small to gain from threads

    return SDHandler("tiny", data_dir=sd_data_dir, device="cpu", max_batch=4)


@pytest.fixture
def job_context() -> Iterator[Callable[[str], tuple[JobContext, list[Any]]]]:
    """make(job_id) registers a JobContext whose progress goes to the returned list."""
    ids: list[str] = []

    def make(job_id: str) -> tuple[JobContext, list[Any]]:
        events: list[Any] = []
        ctx = JobContext(job_id=job_id, send_progress=events.append)
        register(ctx)
        ids.append(job_id)
        return ctx, events

    yield make
    for job_id in ids:
        unregister(job_id)
