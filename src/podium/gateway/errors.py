"""Domain errors -> HTTP, in exactly one place. Every error body is {"error": "..."}, except
on the OpenAI-compatible routes (`/v2/{ep}/openai/...`), which answer in OpenAI's shape
{"error": {"message", "type", "param", "code"}} so that OpenAI clients understand them,
and on RunPod's REST v2 resources (`/v2/network-volumes`, ...: gateway/rest_v2.py), which
answer its ErrorResponse {"title", "status", "detail", "errors"?}."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from podium.errors import PodiumError, ProxyError, RateLimited
from podium.gateway.rest_v2 import REST_V2_PREFIXES
from podium.gateway.rest_v2 import error_body as v2_error_body
from podium.openai_compat import error_body, is_openai_path

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("podium.gateway")


def _is_rest_v2(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in REST_V2_PREFIXES)


def error_response(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
    exc: PodiumError | None = None,
    errors: list[str] | None = None,
) -> JSONResponse:
    """The error body of the route asked for; `errors`: the problems one by one (REST v2)."""
    if request is not None and is_openai_path(request.url.path):
        return JSONResponse(error_body(status, message, exc), status_code=status, headers=headers)
    if request is not None and _is_rest_v2(request.url.path):
        title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        return JSONResponse(
            v2_error_body(status, title, message, errors), status_code=status, headers=headers
        )
    body: dict[str, object] = {"error": message}
    if isinstance(exc, ProxyError):
        body["code"] = exc.code
    return JSONResponse(body, status_code=status, headers=headers)


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
    parts, entries = [], []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
        where = ".".join(loc)
        msg = str(err.get("msg"))
        if err.get("type") == "extra_forbidden":  # RunPod's words for an unknown field
            parent = ".".join(["$", *loc[:-1]])
            entries.append(f"{parent}: additional properties {loc[-1]!r} not allowed")
        else:
            entries.append(f"{'.'.join(['$', *loc])}: {msg}")
        parts.append(f"{where}: {msg}" if where else msg)
    message = "Invalid request: " + "; ".join(parts) + "."
    return error_response(400, message, request=request, errors=entries)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "Internal error in the gateway; see its log.", request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PodiumError, _podium_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
