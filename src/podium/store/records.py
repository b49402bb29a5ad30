"""Named records of the catalog as the gateway and the fleet read them: templates (the
built-ins and the created ones), network volumes and registries (store.base.Catalog keeps
each as a JSON doc, names unique within a kind).

Before templates were records, a created template lived in the gateway-wide settings
(`template:<id>` its doc, `templates:<n>` the n-th id, `template:<id>:deleted` a
tombstone). `TemplateCatalog.migrate_legacy` copies those into records once (bootstrap runs
it on every start; it is a no-op after the first).

A registry's password is write-only: `RegistryPasswords` keeps it in a 0600 file of the
data dir (never in the store: a store may be shared, backed up, or read by other tools).

`LbLoads`: what each gateway has in flight on load-balancing endpoints' workers.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from podium.endpoints.templates import BUILTINS, Template
from podium.endpoints.volumes import NetworkVolume, Registry
from podium.errors import BadRequest, Conflict, NotFound
from podium.store.base import JobStore

__all__ = [
    "LOAD_FRESH_S",
    "MAX_RECORDS",
    "LbLoad",
    "LbLoads",
    "RegistryPasswords",
    "TemplateCatalog",
    "registries",
    "volumes",
]

MAX_RECORDS = 10_000  # of one kind
_MIGRATED = "templates:records"  # the setting that says the legacy templates were copied


class _Record(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    def validate(self) -> None: ...
    def to_doc(self) -> str: ...


R = TypeVar("R", bound=_Record)


class Records(Generic[R]):
    """The records of one kind, with the errors routes answer."""

    def __init__(self, store: JobStore, kind: str, load: Callable[[str], R], what: str) -> None:
        self.store = store
        self.kind = kind
        self.load = load
        self.what = what  # "template", "network volume", "registry"

    async def all(self) -> list[R]:
        return [self.load(doc) for doc in await self.store.list_records(self.kind)]

    async def get(self, record_id: str) -> R | None:
        doc = await self.store.get_record(self.kind, record_id)
        return None if doc is None else self.load(doc)

    async def require(self, record_id: str) -> R:
        found = await self.get(record_id)
        if found is None:
            raise NotFound(f"The {self.what} {record_id[:200]} does not exist.")
        return found

    async def add(self, record: R) -> R:
        record.validate()
        if len(await self.store.list_records(self.kind)) >= MAX_RECORDS:
            raise BadRequest(f"At most {MAX_RECORDS} {self.what}s can be created.")
        if await self.get(record.id) is not None:
            raise Conflict(f"The {self.what} id {record.id} is taken; try again.")
        return await self.replace(record)

    async def replace(self, record: R) -> R:
        record.validate()
        if not await self.store.put_record(self.kind, record.id, record.name, record.to_doc()):
            raise Conflict(f"A {self.what} named {record.name!r} exists; pick another name.")
        return record

    async def delete(self, record_id: str) -> None:
        if not await self.store.delete_record(self.kind, record_id):
            raise NotFound(f"The {self.what} {record_id[:200]} does not exist.")


def volumes(store: JobStore) -> Records[NetworkVolume]:
    return Records(store, "volumes", NetworkVolume.from_doc, "network volume")


def registries(store: JobStore) -> Records[Registry]:
    return Records(store, "registries", Registry.from_doc, "registry")


class TemplateCatalog:
    """The built-in templates and the created ones (records)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.records: Records[Template] = Records(store, "templates", Template.from_doc, "template")

    async def created(self) -> list[Template]:
        """Created templates (not the built-ins), oldest first."""
        return await self.records.all()

    async def all(self) -> list[Template]:
        return [*BUILTINS.values(), *await self.created()]

    async def get(self, template_id: str) -> Template | None:
        if template_id in BUILTINS:
            return BUILTINS[template_id]
        if not template_id.startswith("tpl_"):
            return None
        return await self.records.get(template_id)

    async def require(self, template_id: str) -> Template:
        template = await self.get(template_id)
        if template is None:
            raise NotFound(f"Template {template_id} does not exist; see GET /v1/templates.")
        return template

    async def add(self, template: Template) -> Template:
        return await self.records.add(template)

    async def replace(self, template: Template) -> Template:
        return await self.records.replace(template)

    async def delete(self, template_id: str) -> None:
        if template_id in BUILTINS:
            raise BadRequest(f"{template_id} is a built-in template; it cannot be deleted.")
        await self.require(template_id)
        await self.records.delete(template_id)

    async def migrate_legacy(self) -> int:
        """Copy templates kept in the settings by an older version into records; how
        many were copied (0 once done)."""
        if await self.store.get_setting(_MIGRATED) is not None:
            return 0
        copied = 0
        for n in range(MAX_RECORDS):
            tid = await self.store.get_setting(f"templates:{n}")
            if tid is None:
                break
            if await self.store.get_setting(f"template:{tid}:deleted") is not None:
                continue
            doc = await self.store.get_setting(f"template:{tid}")
            if doc is None or await self.records.get(tid) is not None:
                continue
            template = Template.from_doc(doc)
            if await self.store.put_record("templates", tid, template.name, template.to_doc()):
                copied += 1
        await self.store.set_setting_if_absent(_MIGRATED, "1")
        return copied


class RegistryPasswords:
    """Registry passwords in DATA_DIR/registries/<id>.json (0600, the directory 0700)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "registries"

    def _path(self, registry_id: str) -> Path:
        if "/" in registry_id or registry_id.startswith("."):
            raise BadRequest(f"{registry_id[:80]!r} is not a registry id.")
        return self.dir / f"{registry_id}.json"

    def put(self, registry_id: str, username: str, password: str) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        path = self._path(registry_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"username": username, "password": password}, fh)

    def get(self, registry_id: str) -> tuple[str, str] | None:
        """(username, password), or None when this data dir has none for the id."""
        try:
            found = json.loads(self._path(registry_id).read_text())
        except (OSError, ValueError):
            return None
        return str(found["username"]), str(found["password"])

    def delete(self, registry_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(registry_id).unlink()


LOAD_FRESH_S = 10.0  # a gateway's load record older than this is ignored (it stopped)
LOAD_SWEEP_S = 3600.0  # and one older than this is deleted


@dataclass(frozen=True, slots=True)
class LbLoad:
    """What one gateway has on one load-balancing endpoint: requests waiting for a worker
    and requests in flight on each worker."""

    waiting: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)


class LbLoads:
    """Each gateway's load on each load-balancing endpoint, one `lbload` record per
    (endpoint, gateway), so that any gateway balances by every gateway's requests in
    flight and the fleet scales by all of them (REQUEST_COUNT)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def publish(self, endpoint_id: str, gateway: str, load: LbLoad, now: float) -> None:
        record_id = f"{endpoint_id}/{gateway}"
        doc = {
            "endpoint": endpoint_id,
            "gateway": gateway,
            "at": now,
            "waiting": load.waiting,
            "inFlight": {w: n for w, n in load.in_flight.items() if n > 0},
        }
        await self.store.put_record("lbload", record_id, record_id, json.dumps(doc))

    async def read(
        self, now: float, endpoint_id: str | None = None, but: str | None = None
    ) -> dict[str, LbLoad]:
        """The summed fresh load by endpoint (only `endpoint_id`'s when given), leaving out
        gateway `but`'s (its own, which it knows exactly)."""
        out: dict[str, LbLoad] = {}
        for raw in await self.store.list_records("lbload"):
            doc = json.loads(raw)
            ep = str(doc["endpoint"])
            if (endpoint_id is not None and ep != endpoint_id) or doc["gateway"] == but:
                continue
            if float(doc["at"]) < now - LOAD_FRESH_S:
                continue
            prior = out.get(ep, LbLoad())
            flights = dict(prior.in_flight)
            for worker, n in dict(doc["inFlight"]).items():
                flights[worker] = flights.get(worker, 0) + int(n)
            out[ep] = LbLoad(prior.waiting + int(doc["waiting"]), flights)
        return out

    async def sweep(self, now: float) -> int:
        """Delete the records of gateways gone for an hour."""
        gone = 0
        for raw in await self.store.list_records("lbload"):
            doc = json.loads(raw)
            if float(doc["at"]) < now - LOAD_SWEEP_S:
                record_id = f"{doc['endpoint']}/{doc['gateway']}"
                gone += await self.store.delete_record("lbload", record_id)
        return gone
