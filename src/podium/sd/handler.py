"""SDHandler: the Stable Diffusion v1.5 worker handler (a podium.worker.api.BatchHandler).

The runtime hands it up to `max_batch` jobs at once. Each job's input is validated alone
(a bad one gets `{"error": ...}`, the others go on), compatible jobs share one diffusers
call (batching.plan), and results come back in job order:

    handler = build("tiny")                     # or SDHandler(model=..., ...)
    handler.handle_batch([job1, job2])          # -> [[{"image": b64, "seed": n}], {"error": ...}]
    handler(job)                                # one job, as a plain RunPod-style handler

The model loads once, in the constructor. Pipeline calls are serialized by a lock: the
weights are shared, and one accelerator gains nothing from two calls at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from podium.errors import BadRequest
from podium.sd import allocator
from podium.sd.batching import plan
from podium.sd.generate import Result, Task, generate
from podium.sd.images import ImageLimits, crop_to_multiple, load_image
from podium.sd.models import LoadOptions, load_pipeline
from podium.sd.schema import FIELDS, validate
from podium.settings import default_data_dir

__all__ = ["ENV_DATA_DIR", "ENV_MODEL", "SDHandler", "build"]

log = logging.getLogger(__name__)

ENV_MODEL = "PODIUM_SD_MODEL"
ENV_DATA_DIR = "PODIUM_DATA_DIR"
_MIN_SIDE = int(FIELDS["width"].minimum or 64)


class SDHandler:
    """Loads one SD model and serves txt2img, img2img and inpainting jobs in batches."""

    def __init__(
        self,
        model: str = "auto",
        data_dir: Path | str | None = None,
        max_batch: int = 4,
        max_wait_s: float = 0.05,
        device: str | None = None,
        compile: bool = False,
        allow_urls: bool = False,
        *,
        dtype: str | None = None,
        allow_download: bool = False,
        max_images_per_call: int = 16,
        vae_batch: int = 8,
        image_limits: ImageLimits = ImageLimits(),
    ) -> None:
        """Load `model` (see models.py for the names) and get ready to serve.

        max_batch, max_wait_s: how many jobs the runtime may hand over at once, and how long
        it waits to fill a batch. max_images_per_call caps the images of one diffusers call
        (jobs beyond it run in a further call); vae_batch caps the images decoded at once.
        """
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.allow_urls = allow_urls
        self.max_images_per_call = max_images_per_call
        self.vae_batch = vae_batch
        self.image_limits = image_limits
        options = LoadOptions(
            data_dir=Path(data_dir) if data_dir is not None else default_data_dir({}),
            device=device,
            dtype=dtype,
            compile=compile,
            allow_download=allow_download,
        )
        self.pipe, self._description = load_pipeline(model, options)
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """What this worker serves, for the runtime to show; `warning` says when it is noise."""
        return {
            **self._description,
            "noise": self._description["kind"] in ("tiny", "sd15-random"),
            "max_batch": self.max_batch,
        }

    def __call__(self, job: dict[str, Any]) -> Result:
        return self.handle_batch([job])[0]

    def handle_batch(self, jobs: list[dict[str, Any]]) -> list[Result]:
        results: list[Result | None] = [None] * len(jobs)

        # 1. Validate each input and decode its images; a bad job fails alone.
        tasks: list[Task] = []
        positions: list[int] = []
        for n, job in enumerate(jobs):
            try:
                tasks.append(self._prepare(job))
                positions.append(n)
            except BadRequest as exc:
                results[n] = {"error": exc.message}

        # 2. Run compatible jobs together, one diffusers call per group.
        for call in plan([task.request for task in tasks], self.max_images_per_call):
            group = [tasks[i] for i in call]
            try:
                with self._lock:
                    outcome = generate(self.pipe, group, vae_batch=self.vae_batch)
            except Exception as exc:
                log.exception("Generation failed for a call of %d job(s)", len(group))
                error: Result = {"error": f"Generation failed: {type(exc).__name__}: {exc}"}
                outcome = [error] * len(group)
            for i, result in zip(call, outcome, strict=True):
                results[positions[i]] = result
        return [r if r is not None else {"error": "No result."} for r in results]

    def _prepare(self, job: dict[str, Any]) -> Task:
        raw = job.get("input") if isinstance(job, dict) else None
        if raw is None:
            raise BadRequest('The job has no "input"; send {"input": {"prompt": ...}}.')
        request = validate(raw, allow_urls=self.allow_urls)
        if request.init_image is None:
            return Task(job=job, request=request)
        errors: list[str] = []
        init_image = mask = None
        try:
            init_image = crop_to_multiple(self._load(request.init_image, "init_image"), 8)
            w, h = init_image.size
            if min(w, h) < _MIN_SIDE:
                errors.append(f"`init_image` is {w}×{h}; both sides must be at least {_MIN_SIDE}.")
        except BadRequest as exc:
            errors.append(exc.message)
        if request.mask is not None:
            try:
                mask = self._load(request.mask, "mask")
            except BadRequest as exc:
                errors.append(exc.message)
        if errors or init_image is None:
            raise BadRequest("; ".join(errors))
        # The output size is the (cropped) source image's.
        w, h = init_image.size
        request = dataclasses.replace(request, width=w, height=h)
        return Task(job=job, request=request, init_image=init_image, mask=mask)

    def _load(self, source: str, name: str) -> Image.Image:
        return load_image(source, name=name, allow_urls=self.allow_urls, limits=self.image_limits)


def build(model: str | None = None, **kw: Any) -> SDHandler:
    """The entry point the CLI calls: model from PODIUM_SD_MODEL (default "auto"), data
    directory from PODIUM_DATA_DIR (default ~/.podium), other SDHandler arguments as given.
    First, before any thread allocates: glibc malloc settings that keep the pipeline's
    buffers for reuse instead of page-faulting them in anew at every step (allocator.py)."""
    allocator.tune()
    if model is None:
        model = os.environ.get(ENV_MODEL) or "auto"
    if kw.get("data_dir") is None and os.environ.get(ENV_DATA_DIR):
        kw["data_dir"] = os.environ[ENV_DATA_DIR]
    return SDHandler(model, **kw)
