"""What a gateway does with its data dir and store before it serves, in one place (the
CLI runs it to print a new admin key before the server starts; the app runs it again,
which changes nothing the second time).

    1. the data dir: 0700 (it holds the admin key, and the SQLite file with the fleet
       secret, webhook secrets and every job's data), whatever the umask;
    2. the store's instance mark (gateway/instance.py): refuse a store that lost its data;
    3. the admin key, created on first start: printed once, kept in DATA_DIR/admin.key (0600);
    4. the fleet secret the supervisor's worker tokens derive from (keys.derive_worker_token).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from podium.gateway.instance import InstanceGuard
from podium.keys import ApiKey, Scope, hash_secret, new_fleet_secret, new_key
from podium.settings import ADMIN_KEY_FILE, Settings
from podium.store import JobStore
from podium.store.records import TemplateCatalog

__all__ = ["Bootstrapped", "bootstrap", "prepare_data_dir"]

_ADMIN_SETTING = "admin_key_id"
_FLEET_SETTING = "fleet_secret"


@dataclass(slots=True)
class Bootstrapped:
    guard: InstanceGuard
    fleet_secret: str
    admin_key: str | None  # a new admin key (shown once), or None


def prepare_data_dir(path: Path) -> None:
    """Create the data dir 0700, or make an existing one 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


async def bootstrap(store: JobStore, settings: Settings, now: float) -> Bootstrapped:
    prepare_data_dir(settings.data_dir)
    guard = InstanceGuard(store, settings.data_dir, settings.store_url, store.where)
    await guard.start(settings.accept_empty_store)
    admin_key = None
    if not settings.insecure_no_auth:
        admin_key = await _ensure_admin_key(store, settings.data_dir, now)
    await store.set_setting_if_absent(_FLEET_SETTING, new_fleet_secret())
    fleet_secret = await store.get_setting(_FLEET_SETTING)
    if fleet_secret is None:  # set just above; only a store that lost it meanwhile
        guard.lost = "The job store lost its settings while the gateway started."
        guard.raise_if_lost()
    await TemplateCatalog(store).migrate_legacy()
    return Bootstrapped(guard=guard, fleet_secret=fleet_secret or "", admin_key=admin_key)


async def _ensure_admin_key(store: JobStore, data_dir: Path, now: float) -> str | None:
    """Create the admin key on first start; return it (to print once) or None if it exists.
    The key is also written to DATA_DIR/admin.key with mode 0600."""
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
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain + "\n")
    os.chmod(path, 0o600)
    return plain
