"""The one transaction and the one error guard of the SQLite store, shared by its roles
(jobs, workers, catalog, locks, logs, metrics): a failure of SQLite itself (disk full, I/O error,
locked for longer than the busy timeout, a damaged file) becomes StoreUnavailable naming
the cause, at the edge of each call; a broken invariant of ours (IntegrityError) stays a
bug."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from podium.clock import Clock
from podium.errors import StoreUnavailable
from podium.store.notify import Notifier

if TYPE_CHECKING:
    from podium.store.sqlite.logs import SQLiteWorkerLogs
    from podium.store.sqlite.metrics import SQLiteEndpointMetrics

__all__ = ["Connected", "Role", "guarded", "transaction"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Guarded(Protocol):
    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable: ...


_S = TypeVar("_S", bound=_Guarded)


def guarded(
    method: Callable[Concatenate[_S, _P], Awaitable[_R]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]]:
    """Turn a failure of SQLite itself into StoreUnavailable at the edge of each call."""

    @functools.wraps(method)
    async def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        except sqlite3.IntegrityError:
            raise  # a broken invariant of ours: a bug, not an outage
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    return wrapper


@contextmanager
def transaction(
    db: sqlite3.Connection, unavailable: Callable[[sqlite3.Error], StoreUnavailable]
) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE: the write lock at once), committed when
    the block ends, rolled back when it raises."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:  # disk gone, file locked for longer than the busy timeout
        raise unavailable(exc) from exc
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    else:
        db.execute("COMMIT")


class _OnConnection:
    """The connection and its transaction, as every role uses them."""

    _db: sqlite3.Connection
    _unavailable: Callable[[sqlite3.Error], StoreUnavailable]  # the error guard

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with transaction(self._db, self._unavailable) as db:
            yield db


class Connected(_OnConnection):
    """What every role of SQLiteStore works on: the one connection, the store's clock,
    its in-process notifier, and its worker logs and metrics."""

    clock: Clock
    where: str
    _notifier: Notifier
    logs: SQLiteWorkerLogs
    metrics: SQLiteEndpointMetrics

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(f"The SQLite store at {self.where} failed: {exc}.")


class Role(_OnConnection):
    """A role kept in an object of its own on the store (`store.logs`, `store.metrics`):
    the store's connection, clock and error guard; `_setup` makes its tables."""

    def __init__(
        self,
        db: sqlite3.Connection,
        clock: Clock,
        unavailable: Callable[[sqlite3.Error], StoreUnavailable],
    ) -> None:
        self._db = db
        self.clock = clock
        self._unavailable = unavailable
        self._setup()

    def _setup(self) -> None:
        """The role's tables (inside the store's set-up)."""
