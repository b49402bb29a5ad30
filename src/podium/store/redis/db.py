"""The one error guard of the Redis store, and what every role of it works on."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.clock import Clock
from podium.errors import Conflict, NotFound, StoreUnavailable
from podium.store.redis.records import TTL_GRACE_MS, _num

if TYPE_CHECKING:
    from podium.store.redis.events import RedisEvents
    from podium.store.redis.logs import RedisWorkerLogs
    from podium.store.redis.metrics import RedisEndpointMetrics

__all__ = ["Connected", "Role", "guarded"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Guarded(Protocol):
    def _unavailable(self, exc: RedisError) -> StoreUnavailable: ...


_S = TypeVar("_S", bound=_Guarded)


def guarded(
    method: Callable[Concatenate[_S, _P], Awaitable[_R]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]]:
    """Turn every Redis failure into StoreUnavailable, naming the cause, at the edge of
    each call (every role's, the worker logs' too)."""

    @functools.wraps(method)
    async def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    return wrapper


def failure(where: str, exc: RedisError) -> StoreUnavailable:
    """Name the cause of a Redis failure (docs/deployment.md, "When the store fails")."""
    text = str(exc).rstrip(".")
    if isinstance(exc, AuthenticationError):
        why = f"refused the credentials ({text}); fix the user or password in the store URL"
    elif isinstance(exc, BusyLoadingError):
        why = "is loading its data set into memory; retry in a moment"
    elif isinstance(exc, RedisConnectionError | RedisTimeoutError):
        why = (
            f"cannot be reached ({text}); check that Redis is running and that the store URL "
            "points at it"
        )
    elif isinstance(exc, ReadOnlyError):
        why = "is a read-only replica; point the store URL at the primary"
    elif isinstance(exc, OutOfMemoryError) or text.startswith("OOM"):
        why = (
            f"is out of memory ({text}); raise its maxmemory or free memory — Podium needs "
            "the noeviction policy, so Redis refuses writes instead of dropping jobs"
        )
    elif text.startswith("MISCONF"):
        why = f"refuses writes because it cannot persist ({text})"
    else:
        why = f"answered an error ({type(exc).__name__}: {text})"
    return StoreUnavailable(f"The Redis store at {where} {why}.")


class Connected:
    """What every role of RedisStore works on: the client, the key prefix, the store's
    clock, its scripts and its event subscriber."""

    _redis: aioredis.Redis
    prefix: str
    clock: Clock
    where: str
    _scripts: dict[str, AsyncScript]
    _events: RedisEvents
    _poll_s: float  # the fallback poll of waiters (a lost subscription)
    logs: RedisWorkerLogs
    metrics: RedisEndpointMetrics

    # --- helpers -----------------------------------------------------------------------

    def _unavailable(self, exc: RedisError) -> StoreUnavailable:
        return failure(self.where, exc)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, name: str, *args: str, now: float | None = None) -> list[Any]:
        """Run one script; notify locally what it published; return its reply."""
        when = self.clock.now() if now is None else now
        res = await self._scripts[name](
            args=[self.prefix, self._events.origin, _num(when), str(TTL_GRACE_MS), *args]
        )
        for key in res[0]:
            self._events.notify(key)
        return list(res[1:])

    @staticmethod
    def _check(res: list[Any], job_id: str, worker_id: str | None = None) -> None:
        """Raise what a script's 'notfound' / 'conflict' (worker guard) reply means."""
        if res[0] == "notfound":
            raise NotFound(f"Job {job_id} does not exist (or its retention ran out).")
        if res[0] == "conflict" and worker_id is not None:
            raise Conflict(f"Worker {worker_id} does not hold job {job_id}.")


class Role:
    """A role kept in an object of its own on the store (`store.logs`, `store.metrics`):
    the store's client, key prefix, clock and error guard; `_setup` registers its
    scripts."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        clock: Clock,
        unavailable: Callable[[RedisError], StoreUnavailable],
    ) -> None:
        self._redis = client
        self.prefix = prefix
        self.clock = clock
        self._unavailable = unavailable
        self._setup()

    def _setup(self) -> None:
        """The role's scripts."""
