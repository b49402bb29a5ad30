"""Who may call what: client API keys (scopes, endpoints) and per-endpoint worker tokens."""

from __future__ import annotations

from fastapi import Request

from podium.endpoints import Endpoint
from podium.errors import BadRequest, Forbidden, NotFound, Unauthorized
from podium.gateway.state import state_of
from podium.jobs import WORKER_ID_MAX_CHARS
from podium.keys import ApiKey, Scope, derive_worker_token, hash_secret, secrets_equal

__all__ = ["authenticate_client", "authorize_client", "authorize_worker"]


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
    key = await authenticate_client(request)
    if key is None:
        return None
    if not key.allows(scope, endpoint_id):
        if endpoint_id is None and key.endpoints and key.allows(scope, key.endpoints[0]):
            raise Forbidden(
                f"This API key is limited to endpoints {', '.join(key.endpoints)}; this "
                f"needs an `{scope}` key for every endpoint."
            )
        where = f" on endpoint {endpoint_id}" if endpoint_id else ""
        raise Forbidden(f"This API key lacks the `{scope}` scope{where}.")
    return key


async def authenticate_client(request: Request) -> ApiKey | None:
    """The calling key, valid and not revoked, whatever it may do (the caller checks its
    scope, e.g. per endpoint of a list). None in insecure mode."""
    state = state_of(request)
    if state.settings.insecure_no_auth:
        return None
    secret = _presented_secret(request)
    if secret is None:
        raise Unauthorized(
            "Missing API key: send `Authorization: Bearer <key>` (see `podium keys create`)."
        )
    digest = hash_secret(secret)
    key = await state.lookups.key(digest)
    if key is None:
        await state.guard.verify()  # a store that lost its data says so, not this
    if key is None or key.revoked or not secrets_equal(key.hash, digest):
        raise Unauthorized("Unknown or revoked API key.")
    return key


async def authorize_worker(request: Request, endpoint_id: str) -> Endpoint:
    """The endpoint whose worker token was presented; it must be `endpoint_id`.

    Accepted: the endpoint's own token, or the token the supervisor derives for this
    endpoint from the fleet secret (keys.derive_worker_token)."""
    state = state_of(request)
    worker_id = request.path_params.get("worker_id")
    if worker_id is not None and not 1 <= len(worker_id) <= WORKER_ID_MAX_CHARS:
        raise BadRequest(
            f"A worker id must be 1 to {WORKER_ID_MAX_CHARS} characters, got {len(worker_id)}."
        )
    endpoint = await state.lookups.endpoint(endpoint_id)
    if state.settings.insecure_no_auth:
        if endpoint is None:
            await state.guard.verify()
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
        await state.guard.verify()
        raise Unauthorized("Unknown worker token.")
    raise Forbidden(f"This worker token belongs to endpoint {owner.id}, not {endpoint_id}.")
