"""GPU smoke tests: they run only where torch sees CUDA (bench/gpu.sh runs them first).

One sd15-random pipeline in fp16 per session (the real SD 1.5 architecture with random
weights: the images are noise, the compute and memory are SD 1.5's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def gpu_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("gpu-sd")


@pytest.fixture(scope="session")
def sd15(gpu_data_dir: Any) -> Iterator[Any]:
    from podium.sd.handler import SDHandler

    handler = SDHandler(
        "sd15-random", data_dir=gpu_data_dir, device="cuda", dtype="float16", max_batch=4
    )
    yield handler
    del handler
