"""HTTP plumbing shared by the routers: fast JSON responses and bounded body reading."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from podium.errors import BadRequest, PayloadTooLarge

__all__ = ["JSON", "read_body", "read_json"]


class JSON(Response):
    """application/json via orjson (aiohttp's .json() in the runpod SDK needs the type)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # integers beyond 64 bits and other rarities
            return json.dumps(content, separators=(",", ":")).encode()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"The request body is {int(declared)} bytes, over this route's limit of {limit} bytes."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is over this route's limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """Parse the body as JSON whatever its Content-Type (RunPod clients mislabel it)."""
    raw = await read_body(request, limit)
    if not raw.strip():
        raise BadRequest('The request body is empty; send JSON like {"input": {...}}.')
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
