"""Templates as the gateway shows them: the built-ins (sd15, custom) and the created ones,
records of the store's catalog (store.base.Catalog). The gateway's routes and the fleet
both read them through TemplateCatalog.

Before templates were records, a created template lived in the gateway-wide settings
(`template:<id>` its doc, `templates:<n>` the n-th id, `template:<id>:deleted` a
tombstone). `migrate_legacy` copies those into records once (bootstrap runs it on every
start; it is a no-op after the first).
"""

from __future__ import annotations

from podium.endpoints.templates import BUILTINS, Template
from podium.errors import BadRequest, Conflict, NotFound
from podium.store.base import JobStore

__all__ = ["MAX_TEMPLATES", "TemplateCatalog"]

MAX_TEMPLATES = 10_000
_MIGRATED = "templates:records"  # the setting that says the legacy ones were copied


class TemplateCatalog:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def created(self) -> list[Template]:
        """Created templates (not the built-ins), oldest first."""
        return await self.store.list_templates()

    async def all(self) -> list[Template]:
        return [*BUILTINS.values(), *await self.created()]

    async def get(self, template_id: str) -> Template | None:
        if template_id in BUILTINS:
            return BUILTINS[template_id]
        if not template_id.startswith("tpl_"):
            return None
        return await self.store.get_template(template_id)

    async def require(self, template_id: str) -> Template:
        template = await self.get(template_id)
        if template is None:
            raise NotFound(f"Template {template_id} does not exist; see GET /v1/templates.")
        return template

    async def add(self, template: Template) -> Template:
        template.validate()
        if len(await self.created()) >= MAX_TEMPLATES:
            raise BadRequest(f"At most {MAX_TEMPLATES} templates can be created.")
        if await self.store.get_template(template.id) is not None:
            raise Conflict(f"Template id {template.id} is taken; try again.")
        if not await self.store.put_template(template):
            raise Conflict(f"A template named {template.name!r} exists; pick another name.")
        return template

    async def delete(self, template_id: str) -> None:
        if template_id in BUILTINS:
            raise BadRequest(f"{template_id} is a built-in template; it cannot be deleted.")
        await self.require(template_id)
        await self.store.delete_template(template_id)

    async def migrate_legacy(self) -> int:
        """Copy templates kept in the settings by an older version into records; how
        many were copied (0 once done)."""
        if await self.store.get_setting(_MIGRATED) is not None:
            return 0
        copied = 0
        for n in range(MAX_TEMPLATES):
            tid = await self.store.get_setting(f"templates:{n}")
            if tid is None:
                break
            if await self.store.get_setting(f"template:{tid}:deleted") is not None:
                continue
            doc = await self.store.get_setting(f"template:{tid}")
            if doc is None or await self.store.get_template(tid) is not None:
                continue
            if await self.store.put_template(Template.from_doc(doc)):
                copied += 1
        await self.store.set_setting_if_absent(_MIGRATED, "1")
        return copied
