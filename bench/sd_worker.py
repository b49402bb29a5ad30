"""SD worker benchmark, part 1: a direct diffusers call vs SDHandler.handle_batch.

Same model, same settings; for each batch size b, b concurrent jobs (different prompts and
seeds) go through one `handle_batch`, and the same b images through one direct `pipe(...)`
call with a list of prompts. The gap is the handler's own cost (validation, a per-call
scheduler and pipeline, PNG encoding); batch 1 vs batch b shows what batching buys.

    .venv/bin/python bench/sd_worker.py                 # sd15-random, 128², 4 steps, b=1,2,4
    .venv/bin/python bench/sd_worker.py --quick         # 2 steps, b=1,2
    .venv/bin/python bench/sd_worker.py --model tiny    # seconds, for a smoke test

`measure_direct` and `measure_batches` are meant for reuse (the gateway + worker part).
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PROMPTS = [
    "A cute fluffy white dog in the style of a Pixar animation 3D drawing.",
    "A lighthouse on a cliff at sunset, oil painting.",
    "A bowl of ramen, studio photo, 50mm.",
    "An astronaut riding a horse on the moon.",
]


@dataclass(frozen=True, slots=True)
class Measurement:
    mode: str
    batch: int
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def s_per_image(self) -> float:
        return self.seconds / self.images


def machine_info() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    info = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def jobs_for(batch: int, *, size: int, steps: int, scheduler: str = "PNDM") -> list[dict[str, Any]]:
    """`batch` concurrent jobs: different prompts and seeds, settings that share one call."""
    return [
        {
            "id": f"bench-{batch}-{i}",
            "input": {
                "prompt": PROMPTS[i % len(PROMPTS)],
                "width": size,
                "height": size,
                "num_inference_steps": steps,
                "scheduler": scheduler,
                "seed": i,
            },
        }
        for i in range(batch)
    ]


def measure_direct(
    pipe: Any, *, batch: int, size: int, steps: int, rounds: int = 1, warmup: bool = True
) -> Measurement:
    """One plain `pipe(prompt=[...])` call of `batch` images per round (PIL out, no encoding)."""
    import torch

    def call(n_steps: int) -> None:
        pipe(
            prompt=[PROMPTS[i % len(PROMPTS)] for i in range(batch)],
            height=size,
            width=size,
            num_inference_steps=n_steps,
            generator=[torch.Generator("cpu").manual_seed(i) for i in range(batch)],
        )

    if warmup:
        call(1)
    _sync()
    start = time.perf_counter()
    for _ in range(rounds):
        call(steps)
    _sync()
    return Measurement("direct pipe()", batch, batch * rounds, time.perf_counter() - start)


def measure_batches(
    handler: Any,
    *,
    batches: Sequence[int],
    size: int,
    steps: int,
    rounds: int = 1,
    warmup: bool = True,
    warmup_steps: int = 1,
    mode: str = "SDHandler.handle_batch",
) -> list[Measurement]:
    """For each b: `rounds` calls of handle_batch with b concurrent jobs (after a warm-up
    call of the same batch size, where torch.compile, if on, compiles that shape)."""
    results = []
    for batch in batches:
        jobs = jobs_for(batch, size=size, steps=steps)
        if warmup:
            handler.handle_batch(jobs_for(batch, size=size, steps=warmup_steps))
        _sync()
        start = time.perf_counter()
        for _ in range(rounds):
            outputs = handler.handle_batch(jobs)
            errors = [o for o in outputs if isinstance(o, dict)]
            if errors:
                raise RuntimeError(f"handle_batch failed: {errors[0]}")
        _sync()
        results.append(Measurement(mode, batch, batch * rounds, time.perf_counter() - start))
    return results


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def format_table(rows: Sequence[Measurement], baseline: Measurement | None = None) -> str:
    head = f"{'mode':<26} {'batch':>5} {'images':>6} {'seconds':>9} {'images/s':>9} {'s/image':>9}"
    lines = [head + (f" {'vs base':>8}" if baseline else ""), "-" * (len(head) + 9)]
    for m in rows:
        line = (
            f"{m.mode:<26} {m.batch:>5} {m.images:>6} {m.seconds:>9.2f} "
            f"{m.images_per_s:>9.3f} {m.s_per_image:>9.2f}"
        )
        if baseline:
            line += f" {m.images_per_s / baseline.images_per_s:>7.2f}x"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sd15-random", help="sd15-random (default), tiny, ...")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batches", default="1,2,4", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16, float16")
    parser.add_argument("--quick", action="store_true", help="2 steps, batches 1,2")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batches = 2, "1,2"
    batches = [int(b) for b in args.batches.split(",")]

    from podium.sd.handler import SDHandler

    for key, value in machine_info().items():
        print(f"{key:>14}: {value}")
    print(f"{'settings':>14}: {args.model}, {args.size}x{args.size}, {args.steps} steps, PNDM")

    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        handler = SDHandler(
            args.model,
            data_dir=data_dir,
            device=args.device,
            dtype=args.dtype,
            max_batch=max(batches),
        )
        print(f"{'load':>14}: {time.perf_counter() - start:.1f} s ({handler.info()['dtype']})\n")
        rows: list[Measurement] = []
        for batch in batches:
            rows.append(
                measure_direct(
                    handler.pipe, batch=batch, size=args.size, steps=args.steps, rounds=args.rounds
                )
            )
            rows.extend(
                measure_batches(
                    handler, batches=[batch], size=args.size, steps=args.steps, rounds=args.rounds
                )
            )
            print(format_table(rows[-2:]), flush=True)
        print("\nall:")
        print(format_table(rows, baseline=rows[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
