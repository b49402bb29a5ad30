"""`podium up`'s defaults: one `sd15` endpoint and a client key for it, created on the
first start and reused on the next ones (the endpoint named "sd15" with template sd15;
the key in DATA_DIR/client.key, mode 0600)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from podium.endpoints import TEMPLATE_SD15, Endpoint, EndpointSpec
from podium.keys import ApiKey, Scope, hash_secret, new_key
from podium.settings import CLIENT_KEY_FILE
from podium.store import JobStore

__all__ = ["DEFAULT_NAME", "TUTORIAL_INPUT", "QuickStart", "ensure_sd15"]

DEFAULT_NAME = TEMPLATE_SD15  # the endpoint is named after its template
TUTORIAL_INPUT = {"prompt": "A cute fluffy white dog in the style of a Pixar animation 3D drawing."}


@dataclass(frozen=True, slots=True)
class QuickStart:
    endpoint: Endpoint
    created: bool  # False: an existing endpoint was reused
    api_key: str  # run scope, this endpoint only


async def ensure_sd15(
    store: JobStore, data_dir: Path, now: float, settings: dict[str, object]
) -> QuickStart:
    """Find or create the endpoint; apply `settings` (EndpointSpec fields the user gave
    on the command line) to it; find or create its key."""
    endpoint = next(
        (
            e
            for e in await store.list_endpoints()
            if e.spec.name == DEFAULT_NAME and e.spec.template_id == TEMPLATE_SD15
        ),
        None,
    )
    created = endpoint is None
    if endpoint is None:
        spec = EndpointSpec(name=DEFAULT_NAME, template_id=TEMPLATE_SD15).updated(settings)
        spec.validate()
        endpoint, _token = Endpoint.create(spec, now)
        await store.put_endpoint(endpoint)
    elif settings:
        spec = endpoint.spec.updated(settings)
        spec.validate()
        if spec != endpoint.spec:
            endpoint.spec = spec
            await store.put_endpoint(endpoint)
    key = await _ensure_key(store, data_dir, endpoint.id, now)
    return QuickStart(endpoint, created, key)


async def _ensure_key(store: JobStore, data_dir: Path, endpoint_id: str, now: float) -> str:
    path = data_dir / CLIENT_KEY_FILE
    if path.is_file():
        plain = path.read_text().strip()
        key = await store.key_by_hash(hash_secret(plain))
        if key is not None and not key.revoked and key.endpoints == [endpoint_id]:
            return plain
    plain = new_key()
    await store.put_key(
        ApiKey(
            id="key_" + secrets.token_hex(6),
            name="podium up",
            hash=hash_secret(plain),
            scopes=[Scope.RUN],
            endpoints=[endpoint_id],
            created_at=now,
            prefix=plain[:7],
        )
    )
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at first start
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain + "\n")
    return plain
