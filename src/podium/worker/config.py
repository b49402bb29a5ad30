"""Worker settings: built once, at the entry point, from the environment (PROTOCOL.md §2).

`WorkerConfig.from_env(**overrides)` reads the variables the RunPod SDK reads, so a worker
started by RunPod or by a Podium gateway needs no other configuration:

    RUNPOD_WEBHOOK_GET_JOB       job-take URL; `$ID` -> worker id
    RUNPOD_WEBHOOK_POST_OUTPUT   job-done URL; `$RUNPOD_POD_ID` -> worker id, `$ID` -> job id
    RUNPOD_WEBHOOK_POST_STREAM   job-stream URL; same substitutions
    RUNPOD_WEBHOOK_PING          heartbeat URL; `$RUNPOD_POD_ID` -> worker id
    RUNPOD_AI_API_KEY            worker token, sent as the raw `Authorization` value
    RUNPOD_POD_ID                worker id (a random uuid when unset)
    RUNPOD_POD_HOSTNAME          hostname reported in error payloads (default: this host)
    RUNPOD_ENDPOINT_ID           endpoint id
    RUNPOD_PING_INTERVAL         heartbeat interval in ms (default 10000)

Instead of the four URLs, a Podium worker may name its gateway; every URL is then derived
as `{gateway}/v2/{endpoint}/job-take/{worker}?gpu=...` and so on:

    PODIUM_GATEWAY               gateway base URL (the same variable `podium worker` reads)

Podium's own knobs (all optional):

    PODIUM_WORKER_CONCURRENCY         jobs (or batches) run at once (default 1)
    PODIUM_WORKER_BATCH_SIZE          most jobs one take may claim (default 1; for a
                                      BatchHandler, >1 overrides its `max_batch`)
    PODIUM_WORKER_TAKE_HOLD_S         ask the gateway to hold job-take at most this long
                                      (`?hold=`; default: the gateway's own hold)
    PODIUM_WORKER_RESULT_DEADLINE_S   keep retrying a result post this long (default 600)
    PODIUM_WORKER_REFRESH             `true`: ask to be recycled (stopPod) and exit after
                                      every job, like `refresh_worker` in the SDK config
    PODIUM_WORKER_AGGREGATE_STREAM    `true`: a generator's final output is all its chunks
                                      (`return_aggregate_stream`)
    PODIUM_WORKER_GPU                 the `gpu=` query value of derived URLs (default unknown)
    PODIUM_WORKER_LOG_LEVEL           DEBUG, INFO (default), WARNING, ERROR; falls back to
                                      RUNPOD_DEBUG_LEVEL
    PODIUM_WORKER_HANDLER             MODULE:FUNCTION for `python -m podium.worker`
    PODIUM_LOG_MARKER                 set by a log shipper (podium.logs.markers): mark
                                      where each job starts and ends in the output

Explicit overrides win over the environment; an override of None means "not given".
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from podium.endpoints.worker_env import (
    NEXT_JOB_PARAM,
    TAKE_URL,
    WORKER_GPU_VAR,
    RunpodEnv,
    logs_url_of,
    worker_urls,
)
from podium.errors import ConfigError
from podium.logs.markers import MARKER_ENV

__all__ = ["ENV", "ConfigError", "WorkerConfig", "with_query"]

_READ_RUNPOD = tuple(
    str(v)
    for v in RunpodEnv
    if v not in (RunpodEnv.SKIP_AUTO_SYSTEM_CHECKS, RunpodEnv.SKIP_GPU_CHECK)
)
ENV = (
    *_READ_RUNPOD,
    "PODIUM_GATEWAY",
    "PODIUM_WORKER_CONCURRENCY",
    "PODIUM_WORKER_BATCH_SIZE",
    "PODIUM_WORKER_TAKE_HOLD_S",
    "PODIUM_WORKER_RESULT_DEADLINE_S",
    "PODIUM_WORKER_REFRESH",
    "PODIUM_WORKER_AGGREGATE_STREAM",
    WORKER_GPU_VAR,
    "PODIUM_WORKER_LOG_LEVEL",
    "PODIUM_WORKER_HANDLER",
    MARKER_ENV,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def with_query(url: str, params: Mapping[str, Any]) -> str:
    """Append query parameters, with `?` or `&` as the URL needs (None values are left out)."""
    present = {k: v for k, v in params.items() if v is not None}
    if not present:
        return url
    sep = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        sep = ""
    return url + sep + urlencode(present, safe=",")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker process needs; URLs already carry the worker id."""

    take_url: str  # job-take URL for this worker
    done_url: str  # job-done URL; `$ID` is replaced by the job id per post
    stream_url: str  # job-stream URL; `$ID` as above
    ping_url: str
    worker_id: str
    token: str | None = None
    endpoint_id: str | None = None
    hostname: str = "unknown"
    ping_interval_s: float = 10.0
    concurrency: int = 1
    batch_size: int = 1
    take_hold_s: float | None = None  # None: the gateway's own hold
    take_timeout_s: float = 90.0  # client-side bound on one long-poll (the SDK's value)
    result_deadline_s: float = 600.0
    return_aggregate_stream: bool = False
    refresh_worker: bool = False
    log_level: str = "INFO"
    # Set by whoever reads this worker's output as a log (podium.logs.markers): the
    # runtime then marks where each job starts and ends in that output.
    log_marker: str | None = None
    # runpod.serverless.start's `concurrency_modifier`: current concurrency -> new one.
    concurrency_modifier: Callable[[int], int] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"`concurrency` must be at least 1, got {self.concurrency}.")
        if self.batch_size < 1:
            raise ConfigError(f"`batch_size` must be at least 1, got {self.batch_size}.")
        if self.ping_interval_s <= 0:
            raise ConfigError(
                f"The ping interval must be positive, got {self.ping_interval_s * 1000:g} ms."
            )

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerConfig:
        """Read RUNPOD_* / PODIUM_* variables (see the module docstring), then apply
        `overrides` that are not None. `gateway`, `endpoint_id` and `token` derive the URLs
        from a Podium gateway instead of the RUNPOD_WEBHOOK_* variables."""
        env = os.environ if env is None else env
        given = {k: v for k, v in overrides.items() if v is not None}
        worker_id = given.pop("worker_id", None) or env.get(RunpodEnv.POD_ID) or str(uuid.uuid4())
        token = given.pop("token", None) or env.get(RunpodEnv.API_KEY) or None
        endpoint_id = given.pop("endpoint_id", None) or env.get(RunpodEnv.ENDPOINT_ID) or None
        gateway = given.pop("gateway", None) or env.get("PODIUM_GATEWAY") or None
        gpu = given.pop("gpu", None) or env.get(WORKER_GPU_VAR) or "unknown"
        if gateway:
            if not endpoint_id:
                raise ConfigError(
                    f"The gateway {gateway} needs an endpoint id: set RUNPOD_ENDPOINT_ID "
                    "or pass --endpoint."
                )
            derived = worker_urls(gateway, endpoint_id, gpu)
            urls = _env_urls(derived, quote(worker_id, safe=""))
        else:
            urls = _env_urls(env, worker_id)
        values: dict[str, Any] = {
            **urls,
            "worker_id": worker_id,
            "token": token,
            "endpoint_id": endpoint_id,
            "hostname": env.get(RunpodEnv.POD_HOSTNAME) or socket.gethostname() or "unknown",
            "ping_interval_s": _number(env, RunpodEnv.PING_INTERVAL, 10_000, int) / 1000.0,
            "concurrency": _number(env, "PODIUM_WORKER_CONCURRENCY", 1, int),
            "batch_size": _number(env, "PODIUM_WORKER_BATCH_SIZE", 1, int),
            "take_hold_s": _number(env, "PODIUM_WORKER_TAKE_HOLD_S", None, float),
            "result_deadline_s": _number(env, "PODIUM_WORKER_RESULT_DEADLINE_S", 600.0, float),
            "refresh_worker": _flag(env, "PODIUM_WORKER_REFRESH"),
            "return_aggregate_stream": _flag(env, "PODIUM_WORKER_AGGREGATE_STREAM"),
            "log_level": _log_level(env),
            "log_marker": env.get(MARKER_ENV) or None,
        }
        unknown = sorted(set(given) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"Unknown worker setting(s): {', '.join(unknown)}.")
        values.update(given)
        return cls(**values)

    # --- URLs for each request ----------------------------------------------------------

    @property
    def stop_url(self) -> str | None:
        """The stop channel: the job-take URL with /job-take/ -> /job-stop/ (None if the
        take URL has another shape, as the SDK does)."""
        if "/job-take/" not in self.take_url:
            return None
        return self.take_url.replace("/job-take/", "/job-stop/", 1)

    @property
    def logs_url(self) -> str | None:
        """Where `--ship-logs` sends this worker's log lines: the job-take URL with
        /job-take/ -> /worker-logs/, without its query (None for another shape)."""
        return logs_url_of(self.take_url)

    def take_request_url(self, n: int, in_progress: bool, hold_s: float | None) -> str:
        url = self.take_url
        params: dict[str, Any] = {}
        if n > 1:
            url = url.replace("/job-take/", "/job-take-batch/", 1)
            params["batch_size"] = n
        params["job_in_progress"] = "1" if in_progress else "0"
        if hold_s is not None:
            params["hold"] = f"{max(hold_s, 0.0):.3f}"
        return with_query(url, params)

    def stop_request_url(self) -> str | None:
        url = self.stop_url
        if url is None or self.take_hold_s is None:
            return url
        return with_query(url, {"hold": f"{self.take_hold_s:.3f}"})

    def done_request_url(self, job_id: str, is_stream: bool, take_next: int = 0) -> str:
        """`take_next` > 0 asks a Podium gateway to answer with up to that many queued jobs
        for this worker (`podium_next=`, a Podium extension; other servers ignore it)."""
        url = self.done_url.replace("$ID", quote(job_id, safe=""))
        params = {"isStream": "true" if is_stream else "false"}
        if take_next > 0:
            params[NEXT_JOB_PARAM] = str(take_next)
        return with_query(url, params)

    def stream_request_url(self, job_id: str) -> str:
        url = self.stream_url.replace("$ID", quote(job_id, safe=""))
        return with_query(url, {"isStream": "false"})


# --- helpers -------------------------------------------------------------------------


def _env_urls(env: Mapping[str, str], worker_id: str) -> dict[str, str]:
    """The four URLs from RUNPOD_WEBHOOK_* (a Podium-shaped take URL alone derives the
    other three), placeholders replaced by the worker id."""
    take = env.get(RunpodEnv.GET_JOB)
    if not take:
        raise ConfigError(
            "No job source: set RUNPOD_WEBHOOK_GET_JOB (and the other RUNPOD_WEBHOOK_* "
            "variables), or name a Podium gateway with PODIUM_GATEWAY / --gateway."
        )
    take_url = take.replace("$ID", worker_id)
    # A Podium-shaped take URL lets the other three be derived when they are not set.
    derived: dict[str, str] = {}
    match = TAKE_URL.match(take_url)
    if match:
        base, query = match["base"], match["query"] or ""
        derived = {
            RunpodEnv.POST_OUTPUT: f"{base}/job-done/$RUNPOD_POD_ID/$ID{query}",
            RunpodEnv.POST_STREAM: f"{base}/job-stream/$RUNPOD_POD_ID/$ID{query}",
            RunpodEnv.PING: f"{base}/ping/$RUNPOD_POD_ID{query}",
        }
    urls = {"take_url": take_url}
    for var, name in (
        (RunpodEnv.POST_OUTPUT, "done_url"),
        (RunpodEnv.POST_STREAM, "stream_url"),
        (RunpodEnv.PING, "ping_url"),
    ):
        template = env.get(var) or derived.get(var)
        if not template:
            raise ConfigError(f"{var} is not set; it is needed with RUNPOD_WEBHOOK_GET_JOB={take}.")
        urls[name] = template.replace("$RUNPOD_POD_ID", worker_id)
    return urls


def _number(env: Mapping[str, str], var: str, default: Any, kind: type) -> Any:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{var} must be {what}, got {raw!r}.") from None
    if value < 0:
        raise ConfigError(f"{var} must not be negative, got {raw!r}.")
    return value


def _flag(env: Mapping[str, str], var: str) -> bool:
    raw = env.get(var, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{var} must be true or false, got {env[var]!r}.")


def _log_level(env: Mapping[str, str]) -> str:
    raw = (env.get("PODIUM_WORKER_LOG_LEVEL") or env.get(RunpodEnv.DEBUG_LEVEL) or "INFO").upper()
    level = {"WARN": "WARNING"}.get(raw, raw)
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(
            f"The log level must be DEBUG, INFO, WARNING or ERROR, got {raw!r} "
            "(PODIUM_WORKER_LOG_LEVEL / RUNPOD_DEBUG_LEVEL)."
        )
    return level
