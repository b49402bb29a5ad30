"""Refuse a bad `input` at /run with 400 when the endpoint declares its input schema.

An extension RunPod lacks: the worker still validates (it has the last word), but a
request that can never succeed is refused before it is queued. Endpoints with the
`sd15` template use the SD worker's schema (podium.sd.schema, pure: no torch import)
unless they set `inputSchema` themselves.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from podium.endpoints import TEMPLATE_SD15, Endpoint
from podium.errors import BadRequest

__all__ = ["check_input", "schema_for", "validate_schema"]


@functools.cache
def _template_schema(template_id: str) -> str | None:
    if template_id == TEMPLATE_SD15:
        from podium.sd.schema import json_schema

        return json.dumps(json_schema(), sort_keys=True)
    return None


def schema_for(endpoint: Endpoint) -> str | None:
    """The endpoint's input schema as canonical JSON text (a cache key), or None."""
    if endpoint.spec.input_schema is not None:
        return json.dumps(endpoint.spec.input_schema, sort_keys=True)
    if endpoint.spec.template_id:
        return _template_schema(endpoint.spec.template_id)
    return None


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


def validate_schema(schema: dict[str, Any]) -> None:
    """BadRequest when `schema` is not a valid JSON Schema (draft 2020-12)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(f"`inputSchema` is not a valid JSON Schema: {exc.message}.") from None


def _describe(error: Any) -> str:
    if error.validator == "additionalProperties" and not error.path:
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "; ".join(f"Unexpected input. {k} is not a valid input option." for k in extra)
    where = ".".join(str(p) for p in error.path)
    return f"{where}: {error.message}" if where else error.message


def check_input(schema_text: str, value: Any) -> None:
    """Raise BadRequest listing every problem of `value` against the schema."""
    errors = sorted(_validator(schema_text).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        raise BadRequest("Invalid input: " + "; ".join(_describe(e) for e in errors))
