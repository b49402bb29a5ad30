"""SD 1.5 on one GPU: a plain diffusers loop vs Podium's SDHandler (batching, torch.compile).

Run by bench/gpu.sh. Random weights (`sd15-random`, fp16): the images are noise, the compute
is SD 1.5's. Variants, all at the same size, steps and scheduler (PNDM, SD 1.5's default):

    plain loop         what a user writes: build the pipe, .to("cuda"), one prompt at a time
    podium b=N         SDHandler.handle_batch with N concurrent jobs (one diffusers call)
    podium+compile b=N the same with torch.compile on the UNet (compiled during warm-up)

Each variant warms up first (one call at its batch size and step count; compilation happens
there) and is then timed over --images images. Results print as they come, so a run cut short by the
time budget still shows what it measured.

    python bench/gpu_sd.py                      # 512², 25 steps, 16 images, b=4,8 (+compile)
    python bench/gpu_sd.py --device cpu --dtype float32 --model tiny --size 64 --steps 2
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from sd_worker import (  # noqa: E402
    PROMPTS,
    Measurement,
    format_table,
    machine_info,
    measure_batches,
)

# Rough warm-up costs, to skip what cannot finish inside the budget.
_COMPILE_S = 150.0


def plain_pipeline(model: str, device: str, dtype: Any) -> Any:
    """The pipeline a user would build: no channels_last, no compile, default scheduler."""
    from diffusers import StableDiffusionPipeline

    from podium.sd import models

    if model == "sd15-random":
        pipe = models.build_sd15_random(device=device, dtype=dtype)
    elif model == "tiny":
        pipe = models.build_tiny()
        pipe.to(device, dtype)
    else:
        pipe = StableDiffusionPipeline.from_pretrained(
            model, dtype=dtype, safety_checker=None, requires_safety_checker=False
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def measure_plain_loop(pipe: Any, *, images: int, size: int, steps: int) -> Measurement:
    """One prompt at a time, `images` times (after one warm-up image)."""
    import torch

    pipe(PROMPTS[0], height=size, width=size, num_inference_steps=steps)
    _sync(torch)
    start = time.perf_counter()
    for i in range(images):
        pipe(PROMPTS[i % len(PROMPTS)], height=size, width=size, num_inference_steps=steps)
    _sync(torch)
    return Measurement("plain diffusers loop", 1, images, time.perf_counter() - start)


def _sync(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _free(torch: Any) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(torch: Any) -> str:
    if not torch.cuda.is_available():
        return "-"
    return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sd15-random")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batches", default="4,8", help="SDHandler batch sizes")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--budget-s", type=float, default=540.0, help="skip what would not fit")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    batches = [int(b) for b in args.batches.split(",")]

    import torch

    from podium.sd.handler import SDHandler
    from podium.sd.models import resolve_dtype

    dtype = resolve_dtype(args.dtype, args.device)
    for key, value in machine_info().items():
        print(f"{key:>14}: {value}")
    print(
        f"{'settings':>14}: {args.model} {args.dtype}, {args.size}x{args.size}, "
        f"{args.steps} steps, PNDM, {args.images} images per variant\n",
        flush=True,
    )
    rows: list[Measurement] = []
    notes: list[str] = []

    def report(new: list[Measurement], label: str, started: float) -> None:
        rows.extend(new)
        print(format_table(new), flush=True)
        notes.append(f"{label}: peak {_peak_gib(torch)}, {time.perf_counter() - started:.0f} s")
        print(notes[-1] + "\n", flush=True)

    # 1. The baseline: a plain pipeline, one prompt at a time.
    started = time.perf_counter()
    pipe = plain_pipeline(args.model, args.device, dtype)
    report(
        [measure_plain_loop(pipe, images=args.images, size=args.size, steps=args.steps)],
        "plain loop",
        started,
    )
    del pipe
    _free(torch)

    with tempfile.TemporaryDirectory() as data_dir:
        # 2. Podium's handler: batch 1 (its overhead), then the batch sizes.
        for compiled in (False, True):
            if compiled and args.no_compile:
                break
            label = "podium+compile" if compiled else "podium"
            if compiled and deadline - time.monotonic() < _COMPILE_S * len(batches):
                batches = batches[: max(0, int((deadline - time.monotonic()) // _COMPILE_S))]
                notes.append(f"{label}: batch sizes cut to {batches} by the time budget")
            if not batches:
                break
            started = time.perf_counter()
            handler = SDHandler(
                args.model,
                data_dir=data_dir,
                device=args.device,
                dtype=args.dtype,
                compile=compiled,
                max_batch=max(batches),
                max_images_per_call=max(batches),
            )
            for batch in ([] if compiled else [1]) + batches:
                if time.monotonic() > deadline:
                    notes.append(f"{label} b={batch}: skipped, out of time")
                    continue
                t0 = time.perf_counter()
                [m] = measure_batches(
                    handler,
                    batches=[batch],
                    size=args.size,
                    steps=args.steps,
                    rounds=max(1, args.images // batch),
                    warmup_steps=args.steps,
                    mode=f"{label} b={batch}",
                )
                report([m], f"{label} b={batch}", t0)
            del handler
            _free(torch)

    print("=" * 88)
    print(format_table(rows, baseline=rows[0]))
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
