"""Domain errors -> HTTP, in exactly one place. Every error body is {"error": "..."}, except
on the OpenAI-compatible routes (`/v2/{ep}/openai/...`), which answer in OpenAI's shape
{"error": {"message", "type", "param", "code"}} so that OpenAI clients understand them."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from podium.errors import PodiumError, RateLimited
from podium.openai_compat import error_body, is_openai_path

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("podium.gateway")


def error_response(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
    exc: PodiumError | None = None,
) -> JSONResponse:
    if request is not None and is_openai_path(request.url.path):
        return JSONResponse(error_body(status, message, exc), status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _podium_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, PodiumError):  # registered for PodiumError only
        return await _unexpected(request, exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(exc.status, exc.message, headers, request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        return await _unexpected(request, exc)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "No such route; see /docs for the API."
    if exc.status_code == 405:
        message = "Method not allowed on this route; see /docs for the API."
    return error_response(exc.status_code, message, getattr(exc, "headers", None), request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for it only
        return await _unexpected(request, exc)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return error_response(400, "Invalid request: " + "; ".join(parts) + ".", request=request)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "Internal error in the gateway; see its log.", request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PodiumError, _podium_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
