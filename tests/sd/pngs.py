"""Small image helpers for the SD tests: build PNG sources, decode PNG outputs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    color = (128, 64, 200) if mode == "RGB" else 255
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def png_b64(width: int, height: int, mode: str = "RGB") -> str:
    return base64.b64encode(png_bytes(width, height, mode)).decode("ascii")


def data_url(width: int, height: int, mode: str = "RGB") -> str:
    return "data:image/png;base64," + png_b64(width, height, mode)


def decode(b64: str) -> Image.Image:
    """A PNG output: plain base64 (no data: prefix) of a PNG file."""
    image = Image.open(io.BytesIO(base64.b64decode(b64, validate=True)))
    assert image.format == "PNG"
    image.load()
    return image


def pixels(b64: str) -> np.ndarray:
    return np.asarray(decode(b64), dtype=np.int16)
