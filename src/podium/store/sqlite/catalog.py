"""The catalog on SQLite (store.base.Catalog): endpoints, API keys, templates and the
gateway-wide settings, each a JSON document in its table."""

from __future__ import annotations

import sqlite3

from podium import codec
from podium.endpoints import Endpoint
from podium.keys import ApiKey
from podium.store.sqlite.db import Connected, guarded

__all__ = ["SQLiteCatalog"]


class SQLiteCatalog(Connected):
    # --- endpoints, keys, settings -----------------------------------------------------

    @guarded
    async def put_endpoint(self, endpoint: Endpoint) -> None:
        with self._tx() as db:
            db.execute(
                """INSERT INTO endpoints (id, token_hash, doc) VALUES (?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
                       doc = excluded.doc""",
                (endpoint.id, endpoint.worker_token_hash, codec.dumps_text(endpoint.to_doc())),
            )

    @guarded
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = self._db.execute("SELECT doc FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone()
        return None if row is None else Endpoint.from_doc(codec.loads_trusted(row[0]))

    @guarded
    async def list_endpoints(self) -> list[Endpoint]:
        rows = self._db.execute("SELECT doc FROM endpoints ORDER BY rowid").fetchall()
        return [Endpoint.from_doc(codec.loads_trusted(r[0])) for r in rows]

    @guarded
    async def endpoint_by_token_hash(self, token_hash: str) -> Endpoint | None:
        row = self._db.execute(
            "SELECT doc FROM endpoints WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else Endpoint.from_doc(codec.loads_trusted(row[0]))

    @guarded
    async def put_key(self, key: ApiKey) -> None:
        with self._tx() as db:
            db.execute(
                """INSERT INTO api_keys (id, hash, doc) VALUES (?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, doc = excluded.doc""",
                (key.id, key.hash, key.to_doc()),
            )

    @guarded
    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._db.execute("SELECT doc FROM api_keys WHERE hash = ?", (key_hash,)).fetchone()
        return None if row is None else ApiKey.from_doc(row[0])

    @guarded
    async def list_keys(self) -> list[ApiKey]:
        rows = self._db.execute("SELECT doc FROM api_keys ORDER BY rowid").fetchall()
        return [ApiKey.from_doc(r[0]) for r in rows]

    @guarded
    async def put_record(self, kind: str, record_id: str, name: str, doc: str) -> bool:
        with self._tx() as db:
            try:
                db.execute(
                    """INSERT INTO records (kind, id, name, doc) VALUES (?, ?, ?, ?)
                       ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name,
                           doc = excluded.doc""",
                    (kind, record_id, name, doc),
                )
            except sqlite3.IntegrityError:  # another record of the kind has the name
                return False
        return True

    @guarded
    async def get_record(self, kind: str, record_id: str) -> str | None:
        row = self._db.execute(
            "SELECT doc FROM records WHERE kind = ? AND id = ?", (kind, record_id)
        ).fetchone()
        return None if row is None else str(row[0])

    @guarded
    async def list_records(self, kind: str) -> list[str]:
        rows = self._db.execute(
            "SELECT doc FROM records WHERE kind = ? ORDER BY rowid", (kind,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    @guarded
    async def delete_record(self, kind: str, record_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))
        return cur.rowcount > 0

    @guarded
    async def get_setting(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    @guarded
    async def set_setting_if_absent(self, name: str, value: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)", (name, value)
            )
        return cur.rowcount > 0
