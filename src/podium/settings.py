"""Gateway settings: built once at the entry point (CLI or tests) and passed down.

Every PODIUM_* environment variable the gateway reads is named here and only here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from podium.endpoints.loadbalancer import BODY_IDLE_S, PROCESSING_LIMIT_S, WAIT_FOR_WORKER_S
from podium.jobs import DEFAULT_LIMITS
from podium.logs.lines import (
    BYTES_PER_ENDPOINT_DEFAULT,
    LINES_PER_WORKER_DEFAULT,
    RETENTION_DEFAULT_MS,
    RETENTION_MAX_MS,
    WORKERS_PER_ENDPOINT_DEFAULT,
    LogBudget,
)

__all__ = ["ADMIN_KEY_FILE", "CLIENT_KEY_FILE", "ENV", "Settings", "default_data_dir"]

# Files of the data dir (0600), in one place: the admin key the first start creates, and
# `podium up`'s run-scoped client key.
ADMIN_KEY_FILE = "admin.key"
CLIENT_KEY_FILE = "client.key"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """PODIUM_DATA_DIR, else ~/.podium: where the gateway keeps its files (and the SD
    worker its `tiny` model cache)."""
    env = os.environ if env is None else env
    return Path(env.get("PODIUM_DATA_DIR") or Path.home() / ".podium")


# Environment variable -> field name.
ENV = {
    "PODIUM_HOST": "host",
    "PODIUM_PORT": "port",
    "PODIUM_DATA_DIR": "data_dir",
    "PODIUM_STORE": "store",
    "PODIUM_PUBLIC_URL": "public_url",
    "PODIUM_RETENTION_RUN_MS": "retention_run_ms",
    "PODIUM_RETENTION_SYNC_MS": "retention_sync_ms",
    "PODIUM_HISTORY_MS": "history_ms",
    "PODIUM_OPENAI_WAIT_MS": "openai_wait_ms",
    "PODIUM_PING_INTERVAL_MS": "ping_interval_ms",
    "PODIUM_TAKE_HOLD_S": "take_hold_s",
    "PODIUM_ALLOW_PRIVATE_WEBHOOKS": "allow_private_webhooks",
    "PODIUM_RATE_LIMITS": "rate_limits",
    "PODIUM_REAPER_INTERVAL_S": "reaper_interval_s",
    "PODIUM_METRICS_FLUSH_S": "metrics_flush_s",
    "PODIUM_SQLITE_SYNC": "sqlite_sync",
    "PODIUM_ACCEPT_EMPTY_STORE": "accept_empty_store",
    "PODIUM_DECODE_OFF_LOOP_BYTES": "decode_off_loop_bytes",
    "PODIUM_VOLUME_ROOT": "volume_root",
    "PODIUM_LOG_LINES_PER_WORKER": "log_lines_per_worker",
    "PODIUM_LOG_WORKERS_PER_ENDPOINT": "log_workers_per_endpoint",
    "PODIUM_LOG_BYTES_PER_ENDPOINT": "log_bytes_per_endpoint",
    "PODIUM_LOG_RETENTION_MS": "log_retention_ms",
    "PODIUM_LB_WAIT_S": "lb_wait_s",
    "PODIUM_LB_PROCESSING_S": "lb_processing_s",
    "PODIUM_LB_BODY_IDLE_S": "lb_body_idle_s",
}


class Settings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default_factory=lambda: default_data_dir({}))
    # Network volumes: directories <root>/<id> (None: DATA_DIR/volumes). For a fleet across
    # hosts, a mount every host shares at the same path (NFS).
    volume_root_dir: Path | None = Field(default=None, alias="volume_root")
    store: str | None = None  # None: sqlite file in data_dir
    public_url: str | None = None  # how workers and clients reach this gateway
    insecure_no_auth: bool = False
    retention_run_ms: int = DEFAULT_LIMITS.retention_run_ms
    retention_sync_ms: int = DEFAULT_LIMITS.retention_sync_ms
    # How long a finished job's record stays in the history after its data was deleted.
    history_ms: int = Field(default=DEFAULT_LIMITS.history_ms, ge=0)
    # How long the OpenAI-compatible routes wait for a job's answer (or first chunk).
    openai_wait_ms: int = Field(default=DEFAULT_LIMITS.openai_wait_max_ms, ge=1000)
    ping_interval_ms: int = DEFAULT_LIMITS.ping_interval_ms
    take_hold_s: float = DEFAULT_LIMITS.take_hold_s
    allow_private_webhooks: bool = False
    rate_limits: bool = True
    reaper_interval_s: float = 1.0
    # How often a gateway writes the metrics it counted to the store (gateway/series.py)
    # and samples its endpoints' workers: other gateways' charts lag by this much.
    metrics_flush_s: float = Field(default=5.0, gt=0, le=60)
    webhook_max_attempts: int = 5
    webhook_backoff_s: float = 1.0
    # SQLite's synchronous pragma: NORMAL survives kill -9; FULL also a power cut.
    sqlite_sync: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    # Begin anew on a store that lost its data (gateway/instance.py) instead of refusing.
    accept_empty_store: bool = False
    # Bodies larger than this are decoded in a helper process (gateway/http.py).
    decode_off_loop_bytes: int = Field(default=256 * 1024, ge=0)
    # Worker logs (podium.logs): what the store keeps (logs.lines.LogBudget: the last lines
    # per worker; per endpoint, the logs of so many workers and so many bytes), and how
    # long the log of a worker that ships nothing more is kept.
    log_lines_per_worker: int = Field(default=LINES_PER_WORKER_DEFAULT, ge=1, le=1_000_000)
    log_workers_per_endpoint: int = Field(default=WORKERS_PER_ENDPOINT_DEFAULT, ge=1, le=100_000)
    log_bytes_per_endpoint: int = Field(default=BYTES_PER_ENDPOINT_DEFAULT, ge=4096, le=2**40)
    log_retention_ms: int = Field(default=RETENTION_DEFAULT_MS, ge=60_000, le=RETENTION_MAX_MS)
    # Load-balancing endpoints (endpoints/loadbalancer.py): how long a request waits for a
    # ready worker (then 400 no_workers), and for its worker's answer to begin (then 524).
    lb_wait_s: float = Field(default=WAIT_FOR_WORKER_S, gt=0, le=3600)
    lb_processing_s: float = Field(default=PROCESSING_LIMIT_S, gt=0, le=86_400)
    lb_body_idle_s: float = Field(default=BODY_IDLE_S, gt=0, le=3600)  # then 408

    @field_validator("sqlite_sync", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Environment first, then explicit overrides (CLI flags that were given)."""
        values: dict[str, object] = {}
        for var, name in ENV.items():
            if var in os.environ:
                values[name] = os.environ[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def store_url(self) -> str:
        return self.store or str(self.data_dir / "podium.db")

    @property
    def volume_root(self) -> Path:
        return self.volume_root_dir or self.data_dir / "volumes"

    @property
    def log_budget(self) -> LogBudget:
        return LogBudget(
            self.log_lines_per_worker, self.log_workers_per_endpoint, self.log_bytes_per_endpoint
        )

    @property
    def lease_s(self) -> float:
        return self.ping_interval_ms * DEFAULT_LIMITS.lease_missed_pings / 1000.0

    @property
    def local_url(self) -> str:
        """This gateway as seen from its own machine (a wildcard bind means loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """How clients and remote workers reach this gateway."""
        return self.public_url or self.local_url
