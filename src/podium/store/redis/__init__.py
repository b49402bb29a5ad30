"""The distributed store: one Redis server (store.py says how it is kept)."""

from podium.store.redis.store import RedisStore

__all__ = ["RedisStore"]
