"""Podium's one exception tree.

    PodiumError                    base; `status` is the HTTP status the gateway answers with
    ├── BadRequest          400    malformed JSON, missing input, bad policy values
    ├── Unauthorized        401    missing or unknown key / worker token
    ├── Forbidden           403    key lacks the scope or the endpoint
    ├── NotFound            404    unknown endpoint, unknown or expired job
    ├── Conflict            409    transition not allowed from the job's current state
    ├── PayloadTooLarge     413    request body over the route's limit
    ├── RateLimited         429    per-endpoint rate limit; `retry_after` seconds
    ├── StoreUnavailable    503    the job store cannot be reached
    ├── ProxyError   400/404/408/413/502/524  a load-balancing request no worker could
    │                              take, or whose worker failed it; `code` names which
    ├── JobFailed         4xx/5xx  a job a route waited on for its answer ended without one
    │                              (the OpenAI routes): the worker's status when it named one
    │   outside the gateway (never an HTTP answer of its own):
    ├── ConfigError                a worker cannot start with its settings (podium worker)
    ├── GatewayRefused             the gateway will not serve this worker (401/403/404)
    ├── Throttled                  the gateway asked a worker to slow down (429)
    ├── SinkUnavailable            a log batch did not get through this time (retried)
    ├── SinkRefused                a log batch was refused for good (4xx)
    ├── ModelUnavailable           the SD model asked for cannot be served here
    ├── DecodeError                `podium decode` could not write the image
    └── PodiumHTTPError            the client got an error answer: `status`, the message

Domain code raises these; the gateway translates them to `{"error": message}` with
`status` in exactly one place (gateway/errors.py). Messages say what was wrong and
what to do, in one sentence.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "DecodeError",
    "Forbidden",
    "GatewayRefused",
    "JobFailed",
    "ModelUnavailable",
    "NotFound",
    "PayloadTooLarge",
    "PodiumError",
    "PodiumHTTPError",
    "ProxyError",
    "RateLimited",
    "SinkRefused",
    "SinkUnavailable",
    "StoreUnavailable",
    "Throttled",
    "Unauthorized",
]


class PodiumError(Exception):
    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PodiumError):
    status = 400


class ProxyError(PodiumError):
    """A load-balancing request the gateway could not pass to a worker, or whose worker
    failed it (gateway/lb_proxy.py); `code` is RunPod's word for it (`no_workers`,
    `affinity_worker_gone`) and goes in the JSON error beside the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Unauthorized(PodiumError):
    status = 401


class Forbidden(PodiumError):
    status = 403


class NotFound(PodiumError):
    status = 404


class Conflict(PodiumError):
    status = 409


class PayloadTooLarge(PodiumError):
    status = 413


class RateLimited(PodiumError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(PodiumError):
    status = 503


class JobFailed(PodiumError):
    """The job a route ran for its answer failed, timed out or answered an error object.
    `status`: the worker's (an OpenAI error's 4xx/5xx code), else 500; `kind` and `code`
    fill OpenAI's error object."""

    status = 500

    def __init__(
        self, message: str, status: int = 500, kind: str = "server_error", code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code


# --- outside the gateway ----------------------------------------------------------------


class ConfigError(PodiumError):
    """The worker cannot start with these settings; the message says which and how to fix."""


class GatewayRefused(PodiumError):
    """The gateway will not serve this worker (401, 403, 404): wrong token or endpoint."""


class Throttled(PodiumError):
    """The gateway answered 429: try again after `retry_after_s`."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"throttled for {retry_after_s} s")
        self.retry_after_s = retry_after_s


class SinkUnavailable(PodiumError):
    """The batch did not get through this time (network, 5xx, 429): try again later."""


class SinkRefused(PodiumError):
    """The gateway refused the batch for good (4xx): sending it again would not help."""


class ModelUnavailable(PodiumError):
    """The model asked for cannot be served here; the message says why and what to do."""


class DecodeError(PodiumError):
    """decode_status_file could not write the image; the message is the tutorial's."""


class PodiumHTTPError(PodiumError):
    """The gateway answered with an error; `status` and the gateway's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.args = (f"{status}: {message}",)
        self.status = status
