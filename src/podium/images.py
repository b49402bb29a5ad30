"""Turning job outputs that carry base64 images into files (CLI `run --out`, `decode`)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

__all__ = ["output_images", "save_output_images"]


def output_images(output: Any) -> list[bytes]:
    """The decoded images of an SD-style output `[{"image": b64, "seed": n}, ...]`."""
    items = output if isinstance(output, list) else [output]
    images = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("image"), str):
            data = item["image"]
            if data.startswith("data:"):
                data = data.split(",", 1)[1]
            images.append(base64.b64decode(data))
    return images


def save_output_images(output: Any, path: Path) -> list[Path]:
    """Save image 0 to `path`, image i to `path` with `-i` before the suffix."""
    images = output_images(output)
    if not images:
        raise ValueError("The job's output holds no images.")
    saved = []
    for i, data in enumerate(images):
        target = path if i == 0 else path.with_name(f"{path.stem}-{i}{path.suffix}")
        target.write_bytes(data)
        saved.append(target)
    return saved
