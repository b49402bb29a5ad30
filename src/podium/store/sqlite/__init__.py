"""The embedded store: one SQLite file (store.py says how it is kept)."""

from podium.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
