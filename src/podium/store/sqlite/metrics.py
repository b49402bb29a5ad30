"""An endpoint's metrics buckets in the SQLite file (store.base.EndpointMetrics, podium.series),
on the store's connection (its transaction and error guard: db.py).

    metric_buckets   (endpoint, tier width, bucket start, field) -> value; a count is
                     added to (UPSERT value + n), a sample keeps the larger (max)

A write is one transaction for all the deltas a gateway drained; a read is one range
of the primary key (a few hundred buckets at most, whatever the number of jobs); expiry
drops each tier's buckets older than it keeps.
"""

from __future__ import annotations

import sqlite3

from podium.series import TIERS, Delta, kept_since, placements, readable
from podium.store.sqlite.db import Role, guarded

__all__ = ["SQLiteEndpointMetrics"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_buckets (
    endpoint_id TEXT NOT NULL,
    width INTEGER NOT NULL,
    start INTEGER NOT NULL,
    field TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, width, start, field)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metric_buckets_age ON metric_buckets (width, start);
"""
_ADD = """INSERT INTO metric_buckets (endpoint_id, width, start, field, value)
VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = value + excluded.value"""
_PEAK = """INSERT INTO metric_buckets (endpoint_id, width, start, field, value)
VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = max(value, excluded.value)"""


class SQLiteEndpointMetrics(Role):
    def _setup(self) -> None:
        self._db.executescript(_SCHEMA)

    @guarded
    async def record(self, deltas: list[Delta]) -> None:
        now = self.clock.now()
        adds: list[tuple[str, int, int, str, int]] = []
        peaks: list[tuple[str, int, int, str, int]] = []
        for d in deltas:
            for tier, start, _ in placements(d.minute, now):
                ep, w = d.endpoint_id, tier.width_s
                adds += [(ep, w, start, k, n) for k, n in d.add.items()]
                peaks += [(ep, w, start, k, n) for k, n in d.peak.items()]
        if not adds and not peaks:
            return
        with self._tx() as db:
            db.executemany(_ADD, adds)
            db.executemany(_PEAK, peaks)

    @guarded
    async def read(
        self, endpoint_id: str, width_s: int, start: int, end: int
    ) -> dict[int, dict[str, int]]:
        start, end = readable(width_s, start, end, self.clock.now())
        out: dict[int, dict[str, int]] = {}
        cur = self._db.cursor()
        cur.row_factory = None  # plain tuples: thousands of rows, no sqlite3.Row each
        rows = cur.execute(
            """SELECT start, field, value FROM metric_buckets
               WHERE endpoint_id = ? AND width = ? AND start >= ? AND start < ?""",
            (endpoint_id, width_s, start, end),
        )
        for at, name, value in rows:
            out.setdefault(int(at), {})[name] = int(value)
        return out

    @guarded
    async def expire(self, now: float) -> int:
        gone = 0
        with self._tx() as db:
            for tier in TIERS:
                cur = db.execute(
                    "DELETE FROM metric_buckets WHERE width = ? AND start < ?",
                    (tier.width_s, kept_since(tier.width_s, now)),
                )
                gone += cur.rowcount
        return gone

    def delete_endpoint(self, db: sqlite3.Connection, endpoint_id: str) -> None:
        """Inside SQLiteStore.delete_endpoint's transaction."""
        db.execute("DELETE FROM metric_buckets WHERE endpoint_id = ?", (endpoint_id,))
