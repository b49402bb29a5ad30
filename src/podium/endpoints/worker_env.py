"""What a worker process is given: the RUNPOD_* variables and URLs of PROTOCOL.md §2. Pure.

One home for these facts: the fleet sets them for the workers it starts (`worker_env`),
the worker runtime reads them (`podium.worker.config`), endpoint and template settings
may not override them (`PROTECTED_ENV`, `env_errors`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from urllib.parse import quote, urlencode

__all__ = [
    "GPU_VAR",
    "NEXT_JOB_PARAM",
    "PING_INTERVAL_HEADER",
    "PROTECTED_ENV",
    "TAKE_URL",
    "WORKER_GPU_VAR",
    "RunpodEnv",
    "env_errors",
    "logs_destination",
    "logs_url_of",
    "nul_errors",
    "worker_env",
    "worker_logs_url",
    "worker_urls",
]


class RunpodEnv(StrEnum):
    """Every variable the RunPod SDK (1.12) reads, and so does Podium's runtime."""

    GET_JOB = "RUNPOD_WEBHOOK_GET_JOB"  # `$ID` -> the worker id
    POST_OUTPUT = "RUNPOD_WEBHOOK_POST_OUTPUT"  # `$RUNPOD_POD_ID` -> worker, `$ID` -> job
    POST_STREAM = "RUNPOD_WEBHOOK_POST_STREAM"  # same substitutions
    PING = "RUNPOD_WEBHOOK_PING"  # `$RUNPOD_POD_ID` -> worker
    API_KEY = "RUNPOD_AI_API_KEY"  # the worker token, sent as the raw Authorization
    POD_ID = "RUNPOD_POD_ID"  # the worker id
    POD_HOSTNAME = "RUNPOD_POD_HOSTNAME"
    ENDPOINT_ID = "RUNPOD_ENDPOINT_ID"
    PING_INTERVAL = "RUNPOD_PING_INTERVAL"  # ms
    DEBUG_LEVEL = "RUNPOD_DEBUG_LEVEL"
    # Without these the SDK's start-up checks need CUDA, 4 GB RAM and a TCP connect to
    # 8.8.8.8:53, which fails on a closed network.
    SKIP_AUTO_SYSTEM_CHECKS = "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"
    SKIP_GPU_CHECK = "RUNPOD_SKIP_GPU_CHECK"


# Podium extension of job-done (PROTOCOL.md §2.3): `?podium_next=N` asks the gateway to
# answer with up to N queued jobs for the same worker (`"next": [...]`), one round trip per
# job instead of two. Only Podium's runtime sends it; other workers never see a difference.
NEXT_JOB_PARAM = "podium_next"

# Every ping answer carries the gateway's heartbeat interval (ms; a lease lasts three):
# Podium's runtime pings at least that often whatever RUNPOD_PING_INTERVAL says, so a
# worker started by hand keeps its jobs' leases. (RunPod SDK workers do not read it: give
# them RUNPOD_PING_INTERVAL; the fleet does.)
PING_INTERVAL_HEADER = "X-Podium-Ping-Interval-Ms"

# The `gpu=` query value of a Podium worker's derived URLs (what worker_env sets).
WORKER_GPU_VAR = "PODIUM_WORKER_GPU"
GPU_VAR = "CUDA_VISIBLE_DEVICES"

# Set by the fleet for every worker; an endpoint's or a template's `env` may not override them.
PROTECTED_ENV = frozenset(
    {
        RunpodEnv.GET_JOB,
        RunpodEnv.POST_OUTPUT,
        RunpodEnv.POST_STREAM,
        RunpodEnv.PING,
        RunpodEnv.API_KEY,
        RunpodEnv.POD_ID,
        RunpodEnv.ENDPOINT_ID,
        RunpodEnv.PING_INTERVAL,
        GPU_VAR,
    }
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def nul_errors(values: Mapping[str, str | None]) -> list[str]:
    """Fields (by wire name) that hold a NUL character: such a value cannot become part of
    a command line or an environment (execve ends a string at NUL; Python refuses it)."""
    return [
        f"`{name}` may not contain a NUL character (\\u0000)"
        for name, value in values.items()
        if value is not None and "\x00" in value
    ]


def env_errors(env: Mapping[str, str]) -> list[str]:
    """What is wrong with a user-given `env` (invalid names, protected variables, NUL
    characters in values)."""
    errors: list[str] = []
    bad = sorted(k for k in env if not _ENV_NAME.fullmatch(k))
    if bad:
        errors.append(f"`env` has invalid variable names: {', '.join(bad)}")
    errors += nul_errors({f"env.{k}": v for k, v in sorted(env.items()) if k not in bad})
    protected = sorted(PROTECTED_ENV & set(env))
    if protected:
        errors.append(f"`env` may not set {', '.join(protected)}: the fleet sets them per worker")
    return errors


def worker_urls(gateway_url: str, endpoint_id: str, gpu: str) -> dict[str, str]:
    """The four RUNPOD_WEBHOOK_* URLs of a Podium gateway, with the SDK's placeholders."""
    base = f"{gateway_url.rstrip('/')}/v2/{quote(endpoint_id, safe='')}"
    q = "?" + urlencode({"gpu": gpu})
    return {
        str(RunpodEnv.GET_JOB): f"{base}/job-take/$ID{q}",
        str(RunpodEnv.POST_OUTPUT): f"{base}/job-done/$RUNPOD_POD_ID/$ID{q}",
        str(RunpodEnv.POST_STREAM): f"{base}/job-stream/$RUNPOD_POD_ID/$ID{q}",
        str(RunpodEnv.PING): f"{base}/ping/$RUNPOD_POD_ID{q}",
    }


# A Podium-shaped job-take URL (what worker_urls makes, `$ID` replaced by the worker id):
# the other worker routes of the same gateway derive from it.
TAKE_URL = re.compile(r"^(?P<base>.+)/job-take/(?P<worker>[^/?]+)(?P<query>\?.*)?$")


def worker_logs_url(gateway_url: str, endpoint_id: str, worker_id: str) -> str:
    """The worker-logs route of a gateway (docs/api.md, "Worker logs")."""
    return (
        f"{gateway_url.rstrip('/')}/v2/{quote(endpoint_id, safe='')}"
        f"/worker-logs/{quote(worker_id, safe='')}"
    )


def logs_url_of(take_url: str) -> str | None:
    """The worker-logs URL beside a worker's job-take URL (its query left out); None when
    the take URL is not Podium-shaped."""
    m = TAKE_URL.match(take_url)
    return None if m is None else f"{m['base']}/worker-logs/{m['worker']}"


def logs_destination(env: Mapping[str, str]) -> tuple[str, str | None] | None:
    """Where the log lines of a worker started with these variables go: (the worker-logs
    URL of the gateway its job-take URL names, its worker token); None when the URL is
    not a Podium gateway's or the worker has no id yet."""
    worker_id = env.get(RunpodEnv.POD_ID)
    take = env.get(RunpodEnv.GET_JOB)
    if not worker_id or not take:
        return None
    url = logs_url_of(take.replace("$ID", quote(worker_id, safe="")))
    return None if url is None else (url, env.get(RunpodEnv.API_KEY) or None)


def worker_env(
    gateway_url: str,
    endpoint_id: str,
    worker_id: str,
    gpu: str,
    token: str,
    ping_interval_ms: int,
) -> dict[str, str]:
    """Every variable a RunPod SDK worker (or Podium's runtime) needs, PROTOCOL.md §2."""
    env = {
        **worker_urls(gateway_url, endpoint_id, gpu),
        RunpodEnv.API_KEY: token,
        RunpodEnv.POD_ID: worker_id,
        RunpodEnv.ENDPOINT_ID: endpoint_id,
        RunpodEnv.PING_INTERVAL: str(ping_interval_ms),
        RunpodEnv.SKIP_AUTO_SYSTEM_CHECKS: "true",
        RunpodEnv.SKIP_GPU_CHECK: "true",
        WORKER_GPU_VAR: gpu,
    }
    return {str(k): v for k, v in env.items()}
