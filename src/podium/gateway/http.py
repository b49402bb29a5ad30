"""HTTP plumbing shared by the routers: JSON responses, bounded body reading, and JSON
decoding through the one codec (podium.codec) at every entrance.

Large bodies are decoded in a separate process: orjson holds the GIL while it builds a
document (about 0.2 s for 9 MB with 500,000 keys on the reference machine), and a
thread would stall every other request of the gateway just the same. Only JSON text
comes back from that process (codec.split), never a large Python object.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response

from podium import codec
from podium.errors import PayloadTooLarge, PodiumError

__all__ = [
    "JSON",
    "BodyDecoder",
    "CodecRoute",
    "json_body",
    "read_body",
]

ROUTE_BODY_BYTES = 1024 * 1024  # bodies of routes that take a model (admin API)


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself (raw, whatever the
    Content-Type): documents the body on /docs and lets a fuzzer build bodies."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


class JSON(Response):
    """application/json via the codec (aiohttp's .json() in the runpod SDK needs the
    type). Stored JSON text travels inside as codec.fragment, unparsed."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return codec.dumps(content)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and codec.ascii_digits(declared) and int(declared) > limit:
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


class BodyDecoder:
    """codec.split on the event loop for small bodies, in a process pool for large ones
    (started on first use, `processes` of them)."""

    def __init__(self, off_loop_bytes: int = 256 * 1024, processes: int | None = None) -> None:
        self.off_loop_bytes = off_loop_bytes
        self.processes = processes or max(1, (os.cpu_count() or 2) // 2)
        self._pool: ProcessPoolExecutor | None = None

    async def split(
        self,
        raw: bytes,
        key: str,
        what: str,
        check_value: Callable[[Any], None] | None = None,
    ) -> tuple[Any, str | None]:
        if len(raw) <= self.off_loop_bytes:
            return codec.split(raw, key, what, check_value)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn")
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, codec.split, raw, key, what, check_value)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class _CodecRequest(Request):
    """A request whose body is bounded and whose JSON goes through the codec, for the
    routes where FastAPI reads the body into a model (a PodiumError becomes an
    HTTPException there, which FastAPI lets through to gateway/errors.py)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            try:
                self._body = await read_body(self, ROUTE_BODY_BYTES)
            except PodiumError as exc:
                raise HTTPException(exc.status, exc.message) from None
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = codec.loads(await self.body())
            except PodiumError as exc:
                raise HTTPException(exc.status, exc.message) from None
        return self._json


class CodecRoute(APIRoute):
    """Every router's route class: FastAPI's own JSON parsing never runs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_CodecRequest(request.scope, request.receive))

        return route
