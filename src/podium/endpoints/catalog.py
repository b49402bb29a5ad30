"""Created templates, kept in the store through its gateway-wide settings.

The JobStore contract has no template documents yet, and its only write for settings is
`set_setting_if_absent` — atomic on every backend, so it is enough for an append-only
catalog that several gateways share:

    template:<id>            the template's JSON doc (templates never change once created)
    templates:<n>            the n-th created template's id (n = 0, 1, ...: the list)
    template:<id>:deleted    a tombstone

Listing reads the ids in order until the first missing number. When the contract gains
template documents, only this module changes.
"""

from __future__ import annotations

from podium.endpoints.templates import BUILTINS, Template
from podium.errors import BadRequest, Conflict, NotFound
from podium.store import JobStore

__all__ = ["TemplateCatalog"]

MAX_TEMPLATES = 10_000


class TemplateCatalog:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def _ids(self) -> list[str]:
        ids: list[str] = []
        for n in range(MAX_TEMPLATES):
            tid = await self.store.get_setting(f"templates:{n}")
            if tid is None:
                break
            ids.append(tid)
        return ids

    async def _load(self, template_id: str) -> Template | None:
        if await self.store.get_setting(f"template:{template_id}:deleted") is not None:
            return None
        doc = await self.store.get_setting(f"template:{template_id}")
        return None if doc is None else Template.from_doc(doc)

    async def created(self) -> list[Template]:
        """Created templates (not the built-ins), oldest first."""
        out = []
        for tid in await self._ids():
            t = await self._load(tid)
            if t is not None:
                out.append(t)
        return out

    async def all(self) -> list[Template]:
        return [*BUILTINS.values(), *await self.created()]

    async def get(self, template_id: str) -> Template | None:
        if template_id in BUILTINS:
            return BUILTINS[template_id]
        if not template_id.startswith("tpl_"):
            return None
        return await self._load(template_id)

    async def require(self, template_id: str) -> Template:
        template = await self.get(template_id)
        if template is None:
            raise NotFound(f"Template {template_id} does not exist; see GET /v1/templates.")
        return template

    async def add(self, template: Template) -> Template:
        template.validate()
        if any(t.name == template.name for t in await self.created()):
            raise Conflict(f"A template named {template.name!r} exists; pick another name.")
        if not await self.store.set_setting_if_absent(f"template:{template.id}", template.to_doc()):
            raise Conflict(f"Template id {template.id} is taken; try again.")
        n = len(await self._ids())
        while not await self.store.set_setting_if_absent(f"templates:{n}", template.id):
            n += 1  # another gateway appended meanwhile
            if n >= MAX_TEMPLATES:
                raise BadRequest(f"At most {MAX_TEMPLATES} templates can be created.")
        return template

    async def delete(self, template_id: str) -> None:
        if template_id in BUILTINS:
            raise BadRequest(f"{template_id} is a built-in template; it cannot be deleted.")
        await self.require(template_id)
        await self.store.set_setting_if_absent(f"template:{template_id}:deleted", "1")
