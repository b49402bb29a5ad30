"""API keys and worker tokens: generation, hashing, scopes. Pure: no I/O.

Keys are high-entropy random strings, so a SHA-256 digest is a safe way to store them
(no password stretching needed); comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "ApiKey",
    "Scope",
    "derive_worker_token",
    "hash_secret",
    "installation_id",
    "new_fleet_secret",
    "new_key",
    "new_worker_token",
    "secrets_equal",
]

KEY_PREFIX = "pk_"
WORKER_TOKEN_PREFIX = "pw_"


class Scope(StrEnum):
    READ = "read"  # status, stream, health
    RUN = "run"  # run, runsync, cancel, retry, purge-queue (implies read)
    ADMIN = "admin"  # endpoints, keys (implies run and read)


_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.RUN: frozenset({Scope.READ, Scope.RUN}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.RUN, Scope.ADMIN}),
}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_worker_token() -> str:
    return WORKER_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_fleet_secret() -> str:
    return secrets.token_hex(32)


def derive_worker_token(fleet_secret: str, endpoint_id: str) -> str:
    """The worker token a supervisor gives the workers it starts for `endpoint_id`.

    Only the hash of an endpoint's own token is stored, so a supervisor cannot hand that
    one out; instead every deployment has one fleet secret, and the gateway accepts
    `pw_` + HMAC-SHA256(fleet secret, endpoint id) on that endpoint's worker routes (and
    nowhere else). A per-host agent that knows the secret derives the same tokens."""
    mac = hmac.new(fleet_secret.encode("utf-8"), endpoint_id.encode("utf-8"), hashlib.sha256)
    return WORKER_TOKEN_PREFIX + mac.hexdigest()


def installation_id(fleet_secret: str) -> str:
    """A public name of one installation (every gateway on one store shares it): the
    label of the containers its fleet starts. It reveals nothing of the secret."""
    mac = hmac.new(fleet_secret.encode("utf-8"), b"podium-installation", hashlib.sha256)
    return mac.hexdigest()[:16]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(slots=True)
class ApiKey:
    id: str
    name: str
    hash: str
    scopes: list[Scope]
    endpoints: list[str] = field(default_factory=list)  # empty: every endpoint
    created_at: float = 0.0
    revoked: bool = False
    prefix: str = ""  # first characters of the key, to recognise it in lists

    def allows(self, scope: Scope, endpoint_id: str | None = None) -> bool:
        granted: set[Scope] = set()
        for s in self.scopes:
            granted |= _IMPLIED[Scope(s)]
        if scope not in granted:
            return False
        if not self.endpoints:
            return True
        if endpoint_id is None:
            # Gateway-wide administration (keys, endpoints, templates) would reach every
            # endpoint: a key limited to some may only read or run without one named.
            return scope is not Scope.ADMIN
        return endpoint_id in self.endpoints

    def to_doc(self) -> str:
        """The stored form (JSON text): every field, the hash included."""
        return json.dumps(
            {
                "id": self.id,
                "name": self.name,
                "hash": self.hash,
                "scopes": [str(s) for s in self.scopes],
                "endpoints": self.endpoints,
                "created_at": self.created_at,
                "revoked": self.revoked,
                "prefix": self.prefix,
            }
        )

    @classmethod
    def from_doc(cls, doc: str) -> ApiKey:
        data = json.loads(doc)
        data["scopes"] = [Scope(s) for s in data["scopes"]]
        return cls(**data)

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": [str(s) for s in self.scopes],
            "endpoints": list(self.endpoints),
            "createdAt": self.created_at,
            "revoked": self.revoked,
            "prefix": self.prefix,
        }
