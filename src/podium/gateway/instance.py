"""The store's instance mark: notice a store that lost its data, and say so.

A Redis without persistence that restarts comes back empty. Every gateway would then
answer "Unknown or revoked API key" and workers would exit with "Unknown worker token":
true, but not the cause. So on first start the store gets a random mark (the setting
`instance`), and every gateway remembers it:
- in memory: a mark that disappears or changes while the gateway runs makes it answer
  503 naming the loss, on every route but /healthz (also 503), until the data comes
  back (the mark is seen again: a restored backup) or the gateway is restarted;
- in its data dir (`store-instances.json`, one entry per store URL): a gateway that
  starts on a store without a mark, where one was seen before, refuses to start unless
  told to begin anew (`podium serve --accept-empty-store`).
The mark is read again on every miss of a key, token or endpoint (the symptom of a
loss) and on every reaper tick, so a loss is noticed within a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

from podium.errors import StoreUnavailable
from podium.store import JobStore

__all__ = ["INSTANCE_SETTING", "InstanceGuard", "StoreLost"]

log = logging.getLogger("podium.gateway")

INSTANCE_SETTING = "instance"
RECORD_FILE = "store-instances.json"


class StoreLost(StoreUnavailable):
    """The store no longer holds the data this gateway served (503)."""


def _store_key(store_url: str) -> str:
    """Records are keyed by a digest of the store URL (it may hold a password)."""
    return hashlib.sha256(store_url.encode()).hexdigest()[:16]


class InstanceGuard:
    def __init__(self, store: JobStore, data_dir: Path, store_url: str, where: str) -> None:
        self.store = store
        self.where = where
        self._record = data_dir / RECORD_FILE
        self._key = _store_key(store_url)
        self.mark: str | None = None
        self.lost: str | None = None  # the message, while the data is gone

    async def start(self, accept_empty: bool) -> None:
        """Create or read the mark. Raises StoreLost when the store lost its data since
        this data dir last saw it, unless `accept_empty`."""
        seen = self._recorded()
        mark = await self.store.get_setting(INSTANCE_SETTING)
        if mark is None and seen is not None and not accept_empty:
            raise StoreLost(self._message(seen, None) + _ACT)
        if mark is None:
            await self.store.set_setting_if_absent(INSTANCE_SETTING, secrets.token_hex(8))
            mark = await self.store.get_setting(INSTANCE_SETTING)
            if seen is not None:
                log.warning("began anew on an empty store at %s (instance %s)", self.where, mark)
        self.mark = mark
        self._remember(mark)

    async def check(self) -> None:
        """Read the mark again; set or clear `lost`."""
        if self.mark is None:
            return
        mark = await self.store.get_setting(INSTANCE_SETTING)
        if mark == self.mark:
            if self.lost is not None:
                log.warning("the store at %s has its data again (instance %s)", self.where, mark)
            self.lost = None
            return
        if self.lost is None:
            log.error("%s", self._message(self.mark, mark) + _ACT)
        self.lost = self._message(self.mark, mark) + _ACT

    def raise_if_lost(self) -> None:
        if self.lost is not None:
            raise StoreLost(self.lost)

    async def verify(self) -> None:
        """On a miss (unknown key, token or endpoint): is the store's data still there?"""
        await self.check()
        self.raise_if_lost()

    def _message(self, expected: str, found: str | None) -> str:
        now = "has no instance mark" if found is None else f"has instance {found}"
        return (
            f"The job store at {self.where} lost its data: it {now}, not {expected} as "
            "before (a Redis without persistence that restarted comes back empty)."
        )

    def _recorded(self) -> str | None:
        try:
            records = json.loads(self._record.read_text())
        except (FileNotFoundError, ValueError):
            return None
        value = records.get(self._key) if isinstance(records, dict) else None
        return value if isinstance(value, str) else None

    def _remember(self, mark: str | None) -> None:
        try:
            records = json.loads(self._record.read_text())
        except (FileNotFoundError, ValueError):
            records = {}
        if not isinstance(records, dict) or records.get(self._key) == mark:
            return
        records[self._key] = mark
        tmp = self._record.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(records, fh)
        os.replace(tmp, self._record)


_ACT = (
    " Restore the store from a backup (this gateway recovers by itself once the data is "
    "back), or restart the gateways with --accept-empty-store to begin anew with no "
    "endpoints, keys or jobs."
)
