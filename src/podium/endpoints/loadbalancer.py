"""Load-balancing endpoints (RunPod's `type: LOAD_BALANCER`): the contract, pure.

A load-balancing endpoint has no queue: the gateway proxies each request to the HTTP
server of one of its workers (a vLLM or SGLang OpenAI server, ComfyUI, any app with a
`/ping`), as RunPod's `https://ENDPOINT_ID.api.runpod.ai/<path>` does.

    worker env   PORT (the server's port), PORT_HEALTH (the health check's; default PORT),
                 HEALTH_CHECK_PATH (default /ping). The fleet picks a free port for each
                 worker (workers of one host share its network); `lb_env` sets them.
    health       200 ready, 204 initializing, anything else (or no answer) unhealthy:
                 `health_of`. Cold start: from the first 204 to the first 200.
    addressing   `Host: ENDPOINT_ID.<gateway host>` (RunPod's URL shape; *.localhost
                 resolves to loopback), or the path form /lb/ENDPOINT_ID/<path>:
                 `endpoint_of_host`, LB_PATH_PREFIX.
    balancing    least requests in flight among ready workers; `X-Runpod-Worker-Id: <id>`
                 prefers that worker, `strict <id>` only that one: `choose`.
    limits       30 MB bodies, 2 minutes waiting for a worker, 5.5 minutes processing.

The gateway's edge (gateway/lb_proxy.py) does the I/O; the fleet (fleet/supervisor.py)
runs the health checks and announces ready workers in the store's worker registry
(`WorkerInfo.info`: ANNOUNCE_URL, ANNOUNCE_IN_FLIGHT).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

__all__ = [
    "ANNOUNCE_COLD_START",
    "ANNOUNCE_URL",
    "BODY_IDLE_S",
    "DEFAULT_HEALTH_PATH",
    "DEFAULT_PORT",
    "ENDPOINT_TYPES",
    "HOP_BY_HOP",
    "LB_PATH_PREFIX",
    "LOAD_BALANCER",
    "MAX_BODY_BYTES",
    "PROCESSING_LIMIT_S",
    "QUEUE",
    "WAIT_FOR_WORKER_S",
    "WORKER_ID_HEADER",
    "Affinity",
    "Choice",
    "Health",
    "LbWorker",
    "answer_headers",
    "choose",
    "endpoint_of_host",
    "env_errors",
    "forwarded_headers",
    "health_of",
    "health_path",
    "lb_env",
    "lb_url",
    "parse_affinity",
    "wants_health_port",
]

QUEUE = "QUEUE"
LOAD_BALANCER = "LOAD_BALANCER"
ENDPOINT_TYPES = (QUEUE, LOAD_BALANCER)

DEFAULT_PORT = 80  # RunPod's default PORT (inside an image; the fleet picks host ports)
DEFAULT_HEALTH_PATH = "/ping"
MAX_BODY_BYTES = 30 * 1024 * 1024  # RunPod's request body limit: 413 beyond
WAIT_FOR_WORKER_S = 120.0  # a request waits this long for a ready worker (RunPod: ~2 min)
PROCESSING_LIMIT_S = 330.0  # a worker's answer must begin within 5.5 minutes: else 524
BODY_IDLE_S = 30.0  # a request body that sends nothing for this long is cut off: 408
LB_PATH_PREFIX = "/lb/"  # the path form: /lb/ENDPOINT_ID/<path>
WORKER_ID_HEADER = "X-Runpod-Worker-Id"

# What the fleet writes in a load-balancing worker's registry record (WorkerInfo.info).
ANNOUNCE_URL = "url"  # where the worker's server answers: http://host:port
ANNOUNCE_COLD_START = "coldStartS"  # first 204 (or its start) -> first 200, seconds

# RFC 9110 §7.6.1: a proxy does not forward these (nor what `Connection` names).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_HOP = frozenset(h.encode() for h in HOP_BY_HOP)
_NOT_FORWARDED = _HOP | {
    b"authorization",
    b"host",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
}
_NOT_ANSWERED = _HOP | {b"date", b"server"}  # the gateway's server sets its own
_ENDPOINT_ID = re.compile(r"[a-z0-9]{1,64}")
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/%-]{0,200}")


class Health(StrEnum):
    READY = "ready"  # 200
    INITIALIZING = "initializing"  # 204
    UNHEALTHY = "unhealthy"  # anything else, or no answer


def health_of(status: int | None) -> Health:
    """RunPod's health contract: 200 ready, 204 initializing, else unhealthy."""
    if status == 200:
        return Health.READY
    if status == 204:
        return Health.INITIALIZING
    return Health.UNHEALTHY


def health_path(env: Mapping[str, str]) -> str:
    """The health check's path (HEALTH_CHECK_PATH, default /ping)."""
    path = env.get("HEALTH_CHECK_PATH") or DEFAULT_HEALTH_PATH
    return path if _HEALTH_PATH.fullmatch(path) else DEFAULT_HEALTH_PATH


def lb_env(env: Mapping[str, str], port: int, health_port: int | None) -> dict[str, str]:
    """PORT, PORT_HEALTH and HEALTH_CHECK_PATH for a worker whose server the fleet put on
    `port` (`health_port`: a second port, when the endpoint's PORT_HEALTH differs from its
    PORT; None: the same)."""
    return {
        "PORT": str(port),
        "PORT_HEALTH": str(health_port if health_port is not None else port),
        "HEALTH_CHECK_PATH": health_path(env),
    }


def wants_health_port(env: Mapping[str, str]) -> bool:
    """Whether the endpoint asks for a health port of its own (PORT_HEALTH != PORT)."""
    health = env.get("PORT_HEALTH")
    return bool(health) and health != env.get("PORT", str(DEFAULT_PORT))


def env_errors(env: Mapping[str, str]) -> list[str]:
    """PORT / PORT_HEALTH must be ports, HEALTH_CHECK_PATH an absolute path."""
    errors = []
    for name in ("PORT", "PORT_HEALTH"):
        value = env.get(name)
        if value is not None and not (value.isdigit() and 1 <= int(value) <= 65535):
            errors.append(f"`env.{name}` must be a port number (1-65535), got {value[:20]!r}")
    path = env.get("HEALTH_CHECK_PATH")
    if path is not None and not _HEALTH_PATH.fullmatch(path):
        errors.append(
            f"`env.HEALTH_CHECK_PATH` must be an absolute URL path like /ping, got {path[:50]!r}"
        )
    return errors


def endpoint_of_host(host: str | None) -> str | None:
    """The endpoint id a `Host` header names as its first label (`ENDPOINT_ID.localhost:8000`,
    `ENDPOINT_ID.gpu.example.com`), or None. The caller checks that such a
    load-balancing endpoint exists; an IP address or a bare name names none."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else ""
    label, dot, rest = name.lower().partition(".")
    if not dot or not rest or not _ENDPOINT_ID.fullmatch(label) or label.isdigit():
        return None
    return label


def lb_url(base_url: str, endpoint_id: str) -> str:
    """Where clients call a load-balancing endpoint: RunPod's shape, the endpoint id as the
    first label of the gateway's host name (a loopback gateway: ID.localhost, which curl
    and browsers resolve to loopback); a gateway known only by an IP address: the path
    form."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    if host in ("127.0.0.1", "::1", "localhost"):
        return f"{parts.scheme}://{endpoint_id}.localhost{port}"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"{parts.scheme}://{endpoint_id}.{host}{port}"
    return f"{base_url.rstrip('/')}{LB_PATH_PREFIX}{endpoint_id}"


@dataclass(frozen=True, slots=True)
class Affinity:
    worker_id: str
    strict: bool


def parse_affinity(value: str | None) -> Affinity | None:
    """RunPod's worker affinity: `X-Runpod-Worker-Id: <id>` (soft: that worker when it is
    ready, else any) or `strict <id>` (only that worker)."""
    if not value:
        return None
    words = value.split()
    if len(words) == 2 and words[0].lower() == "strict":
        return Affinity(words[1][:200], strict=True)
    if len(words) == 1:
        return Affinity(words[0][:200], strict=False)
    return None


@dataclass(frozen=True, slots=True)
class LbWorker:
    """A ready worker as a gateway sees it: its id, its server's URL, and the requests
    every gateway has in flight on it (this one's exact, the others' as last published)."""

    id: str
    url: str
    in_flight: int = 0


class Choice(StrEnum):
    WAIT = "wait"  # no worker fits yet: wait for one (scale from zero, a strict busy one)
    GONE = "gone"  # strict affinity to a worker that is not there


def choose(
    workers: Sequence[LbWorker],
    affinity: Affinity | None = None,
    known: frozenset[str] | set[str] = frozenset(),
    max_in_flight: int | None = None,
) -> LbWorker | Choice:
    """The worker for one request: least requests in flight (ties: the first listed);
    with affinity, that worker if it is ready (soft: else the least busy). `known`: the
    ids of the endpoint's workers that still exist (ready or not): a strict request for
    one of them waits, for any other it is GONE. `max_in_flight`: a strict request waits
    while its worker has this many."""
    if affinity is not None:
        mine = next((w for w in workers if w.id == affinity.worker_id), None)
        if affinity.strict:
            if mine is None:
                return Choice.WAIT if affinity.worker_id in known else Choice.GONE
            if max_in_flight is not None and mine.in_flight >= max_in_flight:
                return Choice.WAIT
            return mine
        if mine is not None:
            return mine
    if not workers:
        return Choice.WAIT
    return min(workers, key=lambda w: w.in_flight)


def forwarded_headers(
    headers: Sequence[tuple[bytes, bytes]], client: str | None, host: str, scheme: str
) -> list[tuple[bytes, bytes]]:
    """A request's headers as the proxy sends them on: no hop-by-hop ones (nor those
    `Connection` names), no `Authorization` (the key is the gateway's business, not the
    worker's), no Host (the client sets the worker's), and X-Forwarded-For/-Host/-Proto."""
    named = _named_by_connection(headers)
    drop = _NOT_FORWARDED | named if named else _NOT_FORWARDED
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    prior = [v.decode("latin-1") for n, v in headers if n.lower() == b"x-forwarded-for"]
    chain = ", ".join([*prior, client] if client else prior)
    if chain:
        out.append((b"x-forwarded-for", chain.encode("latin-1")))
    out.append((b"x-forwarded-host", host.encode("latin-1")))
    out.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    return out


def answer_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A worker's answer headers as the proxy passes them back (no hop-by-hop ones; the
    server sets its own framing)."""
    named = _named_by_connection(headers)
    drop = _NOT_ANSWERED | named if named else _NOT_ANSWERED
    return [(n, v) for n, v in headers if n.lower() not in drop]


def _named_by_connection(headers: Sequence[tuple[bytes, bytes]]) -> set[bytes]:
    """The headers a `Connection` header names (hop-by-hop too: RFC 9110 §7.6.1)."""
    return {
        token.strip().lower().encode()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    } - {b"keep-alive", b"close"}
