"""Who may call what: client API keys (scopes, endpoints) and per-endpoint worker tokens."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import Request

from podium.endpoints import Endpoint
from podium.errors import Forbidden, NotFound, Unauthorized
from podium.keys import (
    ApiKey,
    Scope,
    derive_worker_token,
    hash_secret,
    new_fleet_secret,
    new_key,
    secrets_equal,
)
from podium.store import JobStore

__all__ = [
    "ADMIN_KEY_FILE",
    "authorize_client",
    "authorize_worker",
    "ensure_admin_key",
    "ensure_fleet_secret",
]

ADMIN_KEY_FILE = "admin.key"
_ADMIN_SETTING = "admin_key_id"
_FLEET_SETTING = "fleet_secret"


def _presented_secret(request: Request) -> str | None:
    """`Authorization: Bearer <key>` or the bare key (RunPod's curl examples send it so)."""
    value = request.headers.get("authorization")
    if not value:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


async def authorize_client(
    request: Request, scope: Scope, endpoint_id: str | None = None
) -> ApiKey | None:
    """The calling key, checked for `scope` (and the endpoint). None in insecure mode."""
    state = request.app.state.podium
    if state.settings.insecure_no_auth:
        return None
    secret = _presented_secret(request)
    if secret is None:
        raise Unauthorized(
            "Missing API key: send `Authorization: Bearer <key>` (see `podium keys create`)."
        )
    digest = hash_secret(secret)
    key = await state.lookups.key(digest)
    if key is None or key.revoked or not secrets_equal(key.hash, digest):
        raise Unauthorized("Unknown or revoked API key.")
    if not key.allows(scope, endpoint_id):
        where = f" on endpoint {endpoint_id}" if endpoint_id else ""
        raise Forbidden(f"This API key lacks the `{scope}` scope{where}.")
    return key


async def authorize_worker(request: Request, endpoint_id: str) -> Endpoint:
    """The endpoint whose worker token was presented; it must be `endpoint_id`.

    Accepted: the endpoint's own token, or the token the supervisor derives for this
    endpoint from the fleet secret (keys.derive_worker_token)."""
    state = request.app.state.podium
    endpoint = await state.lookups.endpoint(endpoint_id)
    if state.settings.insecure_no_auth:
        if endpoint is None:
            raise NotFound(f"Endpoint {endpoint_id} does not exist.")
        return endpoint
    secret = _presented_secret(request)
    if secret is None:
        raise Unauthorized("Missing worker token: set RUNPOD_AI_API_KEY to the endpoint's token.")
    digest = hash_secret(secret)
    if endpoint is not None and secrets_equal(endpoint.worker_token_hash, digest):
        return endpoint
    fleet_secret = getattr(state, "fleet_secret", None)
    if (
        endpoint is not None
        and fleet_secret
        and secrets_equal(secret, derive_worker_token(fleet_secret, endpoint_id))
    ):
        return endpoint
    owner = await state.store.endpoint_by_token_hash(digest)
    if owner is None:
        raise Unauthorized("Unknown worker token.")
    raise Forbidden(f"This worker token belongs to endpoint {owner.id}, not {endpoint_id}.")


async def ensure_admin_key(store: JobStore, data_dir: Path, now: float) -> str | None:
    """Create the admin key on first start; return it (to print once) or None if it exists.

    The key is also written to DATA_DIR/admin.key with mode 0600.
    """
    key_id = "adm_" + secrets.token_hex(6)
    if not await store.set_setting_if_absent(_ADMIN_SETTING, key_id):
        return None
    plain = new_key()
    await store.put_key(
        ApiKey(
            id=key_id,
            name="admin",
            hash=hash_secret(plain),
            scopes=[Scope.ADMIN],
            created_at=now,
            prefix=plain[:7],
        )
    )
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at first start
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain + "\n")
    os.chmod(path, 0o600)
    return plain


async def ensure_fleet_secret(store: JobStore) -> str:
    """The deployment's fleet secret (keys.derive_worker_token), created on first start.
    Every gateway on one store reads the same one."""
    await store.set_setting_if_absent(_FLEET_SETTING, new_fleet_secret())
    secret = await store.get_setting(_FLEET_SETTING)
    assert secret is not None
    return secret
