"""The catalog on Redis (store.base.Catalog): endpoints, API keys, templates and the
gateway-wide settings, each a JSON document in a hash."""

from __future__ import annotations

import logging
from typing import cast

from podium import codec
from podium.endpoints import Endpoint
from podium.errors import Conflict
from podium.keys import ApiKey
from podium.store.base import RECORD_KINDS
from podium.store.redis.db import Connected, guarded

__all__ = ["RedisCatalog"]


def _kind(kind: str) -> str:
    """The key part of a named-record kind: `{p}:rec:{kind}` (apart from endpoints, keys)."""
    if kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    return f"rec:{kind}"


log = logging.getLogger("podium.store.redis")


class RedisCatalog(Connected):
    # --- endpoints, keys, settings -----------------------------------------------------

    @guarded
    async def put_endpoint(self, endpoint: Endpoint) -> None:
        doc = codec.dumps_text(endpoint.to_doc())
        res = await self._run("put_doc", "endpoints", endpoint.id, endpoint.worker_token_hash, doc)
        if res[0] == "conflict":
            raise Conflict(f"Another endpoint already uses the worker token of {endpoint.id}.")

    @guarded
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        doc = await self._redis.hget(self._k("endpoints"), endpoint_id)
        return None if doc is None else Endpoint.from_doc(codec.loads_trusted(doc))

    @guarded
    async def list_endpoints(self) -> list[Endpoint]:
        [docs] = await self._run("list_docs", "endpoints")
        return [Endpoint.from_doc(codec.loads_trusted(d)) for d in docs if d]

    @guarded
    async def endpoint_by_token_hash(self, token_hash: str) -> Endpoint | None:
        res = await self._run("doc_by_lookup", "endpoints", token_hash)
        return Endpoint.from_doc(codec.loads_trusted(res[0])) if res and res[0] else None

    @guarded
    async def put_key(self, key: ApiKey) -> None:
        res = await self._run("put_doc", "keys", key.id, key.hash, key.to_doc())
        if res[0] == "conflict":
            raise Conflict(f"Another API key already has the hash of key {key.id}.")

    @guarded
    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        res = await self._run("doc_by_lookup", "keys", key_hash)
        return ApiKey.from_doc(res[0]) if res and res[0] else None

    @guarded
    async def list_keys(self) -> list[ApiKey]:
        [docs] = await self._run("list_docs", "keys")
        return [ApiKey.from_doc(d) for d in docs if d]

    @guarded
    async def put_record(self, kind: str, record_id: str, name: str, doc: str) -> bool:
        res = await self._run("put_doc", _kind(kind), record_id, name, doc)
        return bool(res[0] != "conflict")

    @guarded
    async def get_record(self, kind: str, record_id: str) -> str | None:
        doc = cast(str | None, await self._redis.hget(self._k(_kind(kind)), record_id))
        return doc

    @guarded
    async def list_records(self, kind: str) -> list[str]:
        [docs] = await self._run("list_docs", _kind(kind))
        return [str(d) for d in docs if d]

    @guarded
    async def delete_record(self, kind: str, record_id: str) -> bool:
        [existed] = await self._run("delete_doc", _kind(kind), record_id)
        return bool(existed)

    @guarded
    async def get_setting(self, name: str) -> str | None:
        # decode_responses=True: the value is str
        return cast(str | None, await self._redis.hget(self._k("settings"), name))

    @guarded
    async def set_setting_if_absent(self, name: str, value: str) -> bool:
        return bool(await self._redis.hsetnx(self._k("settings"), name, value))
