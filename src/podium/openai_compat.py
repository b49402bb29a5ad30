"""OpenAI-compatible routes as RunPod serves them for vLLM workers. Pure: no I/O.

`POST /v2/{ep}/openai/v1/chat/completions` (and `/completions`, or any other POST route
under `/openai/v1/`) and `GET /v2/{ep}/openai/v1/models` become a job whose input is
worker-vllm's contract:

    {"openai_route": "/v1/chat/completions", "openai_input": <the request body>}
    {"openai_route": "/v1/models"}                       (no body: a GET)

The worker (a generator handler with `return_aggregate_stream`) yields either the whole
OpenAI response once, or, when the body asked for `"stream": true`, server-sent-event
text: strings of `data: {...}\\n\\n` lines (worker-vllm passes vLLM's SSE bytes on as they
come, or batches of them), or lists of chunk objects (worker-vllm's RAW_OPENAI_OUTPUT=0).
`SseWriter` turns those stream chunks into one event stream that ends with
`data: [DONE]`; `answer` turns a finished job into the response (or the OpenAI error).

Errors on these routes use OpenAI's shape, `{"error": {"message", "type", "param",
"code"}}`, so that OpenAI clients raise their own exception types.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from podium import codec
from podium.errors import (
    BadRequest,
    Forbidden,
    JobFailed,
    NotFound,
    PodiumError,
    RateLimited,
    Unauthorized,
)
from podium.jobs import Job, JobStatus

__all__ = [
    "OPENAI_PREFIX",
    "SseWriter",
    "answer",
    "check_nesting",
    "error_body",
    "is_openai_path",
    "job_error",
    "job_input_json",
    "parse_body",
    "route_of",
]

OPENAI_PREFIX = "/openai/v1/"
DONE = "data: [DONE]\n\n"
# The field that holds the bulk of each route's body: it is taken out of the body as
# text (codec.split), so that a large prompt is never turned into Python objects twice.
BULKY_FIELD = {"/v1/chat/completions": "messages", "/v1/completions": "prompt"}
_ROUTE = re.compile(r"^[a-z0-9][a-z0-9_\-/.]{0,127}$")
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_ERROR_TEXT_MAX = 65_536  # longer errors are shown as they are, never parsed


def is_openai_path(path: str) -> bool:
    """Whether an HTTP path is one of the OpenAI-compatible routes (errors in OpenAI's shape)."""
    return path.startswith("/v2/") and OPENAI_PREFIX in path


def route_of(path_rest: str) -> str:
    """The worker's `openai_route` for what follows `/openai/v1/` (e.g. chat/completions)."""
    if not _ROUTE.match(path_rest) or ".." in path_rest:
        raise NotFound(f"/openai/v1/{path_rest[:80]} is not an OpenAI route.")
    return "/v1/" + path_rest.strip("/")


# --- the request -----------------------------------------------------------------------


def _depth(value: Any) -> int:
    """Levels of arrays and objects in a decoded value (a scalar: 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_nesting(value: Any) -> None:
    """The bulky field of a body sits two levels deeper in the job's input
    ({"openai_input": {"messages": ...}}) than in the body: it may hold 98 levels, so that
    the stored input keeps within codec.MAX_DEPTH. (Module-level: picklable for the
    decoder's process pool.)"""
    if _depth(value) > codec.MAX_DEPTH - 2:
        raise BadRequest(
            f"The request body is nested too deeply: the job's input would pass "
            f"{codec.MAX_DEPTH} levels of arrays and objects."
        )


@dataclass(frozen=True, slots=True)
class OpenAIRequest:
    input_json: str  # the job's input: {"openai_route", "openai_input"}
    stream: bool


def parse_body(route: str, rest: Any, bulky_json: str | None) -> OpenAIRequest:
    """A decoded POST body (codec.split took BULKY_FIELD[route] out of it as text) ->
    the job's input. BadRequest when it is not an object or `stream` is not a boolean."""
    if not isinstance(rest, dict):
        raise BadRequest(
            f"The request body must be a JSON object (OpenAI's request), got {type(rest).__name__}."
        )
    if _depth(rest) > codec.MAX_DEPTH - 1:
        raise BadRequest(
            f"The request body is nested too deeply: the job's input would pass "
            f"{codec.MAX_DEPTH} levels of arrays and objects."
        )
    stream = rest.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest(f"`stream` must be true or false, got {codec.dumps_text(stream)[:40]}.")
    body = dict(rest)
    if bulky_json is not None:
        body[BULKY_FIELD.get(route, "input")] = codec.fragment(bulky_json)
    return OpenAIRequest(job_input_json(route, body), stream)


def job_input_json(route: str, body: dict[str, Any] | None) -> str:
    """worker-vllm's job input: the route, and the body when there is one."""
    doc: dict[str, Any] = {"openai_route": route}
    if body is not None:
        doc["openai_input"] = body
    return codec.dumps_text(doc)


# --- errors ------------------------------------------------------------------------------


def _kind_of(exc: PodiumError) -> tuple[str, str | None]:
    """OpenAI's error `type` and `code` for a Podium error."""
    if isinstance(exc, JobFailed):
        return exc.kind, exc.code
    if isinstance(exc, Unauthorized):
        return "authentication_error", "invalid_api_key"
    if isinstance(exc, Forbidden):
        return "permission_error", None
    if isinstance(exc, RateLimited):
        return "rate_limit_error", "rate_limit_exceeded"
    if exc.status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def error_body(status: int, message: str, exc: PodiumError | None = None) -> dict[str, Any]:
    """OpenAI's error object for an answer of `status`."""
    if exc is not None:
        kind, code = _kind_of(exc)
    else:
        kind, code = ("server_error" if status >= 500 else "invalid_request_error"), None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _parsed_error_text(text: str) -> Any:
    """A worker's error string may be a dict: worker-vllm yields {"error": {...}}, which the
    runpod SDK (and Podium's runtime) post as str(dict); Podium's runtime posts a raised
    exception as JSON. The dict when it is one, else the text."""
    if len(text) > _ERROR_TEXT_MAX or not text.startswith("{"):
        return text
    try:
        return codec.loads(text)
    except PodiumError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return text


def _from_worker(value: Any, default_status: int) -> JobFailed:
    """A JobFailed from what a worker reported: an OpenAI/vLLM error object
    ({message, type, code}), {"error": {...}}, Podium's exception payload or a string."""
    if isinstance(value, dict) and isinstance(value.get("error"), dict | str):
        value = value["error"]
    if isinstance(value, str):
        value = _parsed_error_text(value)
        if isinstance(value, dict) and isinstance(value.get("error"), dict):
            value = value["error"]
    if not isinstance(value, dict):
        message = str(value)
        kind, code = "server_error", None
    else:
        message = str(value.get("message") or value.get("error_message") or value)
        kind = str(value.get("type") or value.get("error_type") or "server_error")
        code = value.get("code")
    status = default_status
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        status = code
    elif (found := _HTTP_STATUS.search(message)) and 400 <= int(found[1]) <= 599:
        status = int(found[1])  # worker-vllm: "vLLM returned HTTP 400: ..."
    return JobFailed(message, status=status, kind=kind, code=None if code is None else str(code))


def job_error(job: Job) -> JobFailed:
    """The OpenAI error for a job that ended without an answer."""
    if job.status is JobStatus.TIMED_OUT:
        return JobFailed(job.error or "The job timed out.", status=504, kind="timeout")
    if job.status is JobStatus.CANCELLED:
        return JobFailed("The job was cancelled before it answered.", status=500)
    return _from_worker(job.error or "The worker failed without saying why.", 500)


# --- the answer ------------------------------------------------------------------------


def _unwrap(output: Any) -> Any:
    """A generator handler's aggregated output is the list of what it yielded: an OpenAI
    response is yielded once."""
    if isinstance(output, list) and len(output) == 1:
        return output[0]
    return output


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and (
        value.get("object") == "error" or isinstance(value.get("error"), dict | str)
    )


def answer(job: Job) -> Any:
    """The response body for a finished job (its output); JobFailed when the job failed or
    its output is an error object."""
    if job.status is not JobStatus.COMPLETED:
        raise job_error(job)
    value = _unwrap(job.output)
    if _is_error(value):
        raise _from_worker(value, 400 if value.get("object") == "error" else 500)
    return value


class SseWriter:
    """Turns a job's stream chunks into one server-sent-event stream (text)."""

    def __init__(self) -> None:
        self.wrote = False
        self._tail = ""  # the end of what was written, to see `data: [DONE]` across chunks

    def _out(self, text: str) -> str:
        if text:
            self.wrote = True
            self._tail = (self._tail + text)[-64:]
        return text

    @property
    def done(self) -> bool:
        return DONE.strip() in self._tail

    def feed(self, chunk: Any) -> str:
        """One stream chunk (decoded): SSE text passes as it is; objects become events."""
        if isinstance(chunk, str):
            return self._out(chunk)
        if isinstance(chunk, list):
            return "".join(self.feed(item) for item in chunk)
        return self._out(f"data: {codec.dumps_text(chunk)}\n\n")

    def fail(self, message: str) -> str:
        """End the stream with an error event (the job is abandoned), then [DONE]."""
        exc = JobFailed(message)
        out = self._out(f"data: {codec.dumps_text(error_body(exc.status, exc.message, exc))}\n\n")
        return out + ("" if self.done else self._out(DONE))

    def finish(self, job: Job) -> str:
        """What ends the stream once the job is final: its answer when it streamed nothing
        (a handler that returned instead of yielding), an error event when it failed,
        then `data: [DONE]` unless the worker sent it."""
        out = ""
        try:
            if not self.wrote:
                out += self.feed(answer(job))
            elif job.status is not JobStatus.COMPLETED:
                raise job_error(job)
        except JobFailed as exc:
            out += self._out(
                f"data: {codec.dumps_text(error_body(exc.status, exc.message, exc))}\n\n"
            )
        if not self.done:
            out += self._out(DONE)
        return out
