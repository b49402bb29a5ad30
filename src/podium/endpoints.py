"""Endpoint records: ids like RunPod's, settings and their validation. Pure: no I/O."""

from __future__ import annotations

import secrets
import string
from dataclasses import asdict, dataclass, field
from typing import Any

from podium.errors import BadRequest
from podium.jobs import DEFAULT_LIMITS

__all__ = ["Endpoint", "EndpointSpec", "new_endpoint_id"]

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_endpoint_id() -> str:
    """A 14-character lowercase id, the shape RunPod uses (e.g. `9ylt4s5v5gm1hd`)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


@dataclass(slots=True)
class EndpointSpec:
    """What a user may set on an endpoint (names as RunPod's REST API spells them)."""

    name: str
    execution_timeout_ms: int = DEFAULT_LIMITS.execution_timeout_default_ms
    retry_limit: int = DEFAULT_LIMITS.retry_limit_default
    retention_run_ms: int | None = None  # None: the gateway's default
    retention_sync_ms: int | None = None
    input_schema: dict[str, Any] | None = None

    def validate(self) -> None:
        errors: list[str] = []
        if not self.name or len(self.name) > 191:
            errors.append("`name` must be 1 to 191 characters")
        lim = DEFAULT_LIMITS
        if not lim.execution_timeout_min_ms <= self.execution_timeout_ms <= (
            lim.execution_timeout_max_ms
        ):
            errors.append(
                f"`executionTimeoutMs` must be between {lim.execution_timeout_min_ms} and "
                f"{lim.execution_timeout_max_ms}, got {self.execution_timeout_ms}"
            )
        if not 0 <= self.retry_limit <= 100:
            errors.append(f"`retryLimit` must be between 0 and 100, got {self.retry_limit}")
        for key in ("retention_run_ms", "retention_sync_ms"):
            value = getattr(self, key)
            if value is not None and not 1_000 <= value <= 7 * 86_400_000:
                errors.append(f"`{key}` must be between 1000 ms and 7 days, got {value}")
        if errors:
            raise BadRequest("Invalid endpoint: " + "; ".join(errors) + ".")


@dataclass(slots=True)
class Endpoint:
    id: str
    spec: EndpointSpec
    worker_token_hash: str
    webhook_secret: str
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Endpoint:
        doc = dict(doc)
        doc["spec"] = EndpointSpec(**doc["spec"])
        return cls(**doc)

    def public(self) -> dict[str, Any]:
        s = self.spec
        return {
            "id": self.id,
            "name": s.name,
            "executionTimeoutMs": s.execution_timeout_ms,
            "retryLimit": s.retry_limit,
            "retentionRunMs": s.retention_run_ms,
            "retentionSyncMs": s.retention_sync_ms,
            "createdAt": self.created_at,
            **self.extra,
        }
