"""Turning job outputs that carry base64 images into files (CLI `run --out`, `decode`)."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from podium.errors import DecodeError

__all__ = ["DecodeError", "decode_status_file", "output_images", "save_output_images"]


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


def decode_status_file(json_path: Path, image_path: Path) -> str:
    """What RunPod's tutorial snippet does: read a saved status JSON, base64-decode
    `output[0]["image"]` into `image_path`. Same messages as the snippet."""
    try:
        with open(json_path) as fh:
            data = json.load(fh)
        encoded = data["output"][0]["image"]
        if isinstance(encoded, str) and encoded.startswith("data:"):
            encoded = encoded.split(",", 1)[1]
        image = base64.b64decode(encoded, validate=True)
    except FileNotFoundError:
        raise DecodeError(
            f"File '{json_path}' not found. Make sure the JSON file exists in the same "
            "directory as the script."
        ) from None
    except json.JSONDecodeError:
        raise DecodeError(
            f"Invalid JSON format in '{json_path}'. Please check the contents of the JSON file."
        ) from None
    except (KeyError, IndexError, TypeError):
        raise DecodeError(
            "Required keys not found in the JSON structure. Make sure the JSON contains the "
            "'output' key with the image data."
        ) from None
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"An error occurred: {exc}") from None
    image_path.write_bytes(image)
    return f"Image successfully decoded and saved as '{image_path}'."
