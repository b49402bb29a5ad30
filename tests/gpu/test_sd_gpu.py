"""SD 1.5 on CUDA, fp16: what a first GPU machine must confirm beyond speed (bench/gpu.sh).

fp16 txt2img at 512²; a batch gives the images its jobs give alone; torch.compile on and
off give the same image; a cancel mid-denoise stops the call; unloading gives the VRAM back.
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

from podium.worker.api import JobContext, register, unregister
from tests.sd.pngs import decode, pixels

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: see bench/gpu.sh"),
]


def job(job_id: str, size: int = 512, steps: int = 4, **input: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "input": {
            "prompt": "a lighthouse at dusk",
            "width": size,
            "height": size,
            "num_inference_steps": steps,
            "scheduler": "PNDM",
            **input,
        },
    }


def image_of(result: Any) -> np.ndarray:
    assert isinstance(result, list), result
    return pixels(result[0]["image"])


def alike(a: np.ndarray, b: np.ndarray) -> bool:
    """fp16 kernels differ in the last bits with batch size and fusion: the same picture
    within a few levels on average."""
    return float(np.abs(a - b).mean()) <= 3.0


def test_fp16_txt2img_at_512(sd15: Any) -> None:
    assert sd15.pipe.unet.dtype == torch.float16
    assert sd15.pipe.device.type == "cuda"
    [out] = sd15(job("a", seed=7))
    image = decode(out["image"])
    assert image.size == (512, 512) and out["seed"] == 7
    assert np.asarray(image).std() > 0  # not a blank (NaN) image


def test_a_batch_gives_the_images_of_its_jobs_alone(sd15: Any) -> None:
    jobs = [job(f"b{i}", seed=100 + i, prompt=f"prompt {i}") for i in range(3)]
    batched = sd15.handle_batch(jobs)
    for j, result in zip(jobs, batched, strict=True):
        assert alike(image_of(result), image_of(sd15({**j, "id": j["id"] + "-solo"})))


def test_cancel_mid_denoise_stops_the_call(sd15: Any) -> None:
    from podium.sd.generate import CANCELLED_ERROR

    steps: list[Any] = []
    ctx = JobContext(job_id="c1", send_progress=steps.append)

    def cancel_at_step_2(progress: Any) -> None:
        steps.append(progress)
        if progress["step"] == 2:
            ctx.cancelled.set()

    ctx.send_progress = cancel_at_step_2
    register(ctx)
    try:
        assert sd15(job("c1", steps=30, seed=1)) == {"error": CANCELLED_ERROR}
    finally:
        unregister("c1")
    assert [s["step"] for s in steps] == [1, 2]


def test_compile_on_and_off_give_the_same_image(sd15: Any, gpu_data_dir: Any) -> None:
    from podium.sd.handler import SDHandler

    small = job("k", size=256, steps=3, seed=5)
    plain = image_of(sd15(small))
    compiled = SDHandler(
        "sd15-random", data_dir=gpu_data_dir, device="cuda", dtype="float16", compile=True
    )
    try:
        first = image_of(compiled({**small, "id": "k1"}))  # compiles here
        again = image_of(compiled({**small, "id": "k2"}))  # the compiled graph, reused
    finally:
        del compiled
        gc.collect()
        torch.cuda.empty_cache()
    assert alike(first, plain) and alike(again, plain)


def test_unloading_gives_the_vram_back(gpu_data_dir: Any) -> None:
    from podium.sd.handler import SDHandler

    gc.collect()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    handler = SDHandler("sd15-random", data_dir=gpu_data_dir, device="cuda", dtype="float16")
    handler(job("u", size=256, steps=2, seed=3))
    assert torch.cuda.memory_allocated() - before > 1.5 * 2**30  # ~2 GiB of fp16 weights
    del handler
    gc.collect()
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated() - before < 64 * 2**20
