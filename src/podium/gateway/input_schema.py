"""Refuse a bad `input` at /run with 400 when the endpoint declares its input schema.

An extension RunPod lacks: the worker still validates (it has the last word), but a
request that can never succeed is refused before it is queued. Endpoints with the
`sd15` template use the SD worker's schema (podium.sd.schema, pure: no torch import)
unless they set `inputSchema` themselves.

A schema comes from an admin and an input from any key that may run: both are hostile
until checked. Validation uses jsonschema-rs (JSON Schema 2020-12, in Rust), built so
that no schema can make the gateway wait:
- no retrieval: a `$ref` resolves inside the schema or not at all (no `http://`, no
  `file://`: the gateway never fetches what a schema names, SSRF); one that does not
  resolve is refused when the schema is set (PATCH / POST, 400);
- `pattern` and `patternProperties` run on Rust's `regex` engine, whose matching time is
  linear in the input (no catastrophic backtracking, so no ReDoS): it has no lookaround
  and no backreferences, and a pattern that uses them is refused when the schema is set;
- an answer names at most MAX_ERRORS problems, each cut to MESSAGE_MAX characters.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema_rs

from podium.endpoints import TEMPLATE_SD15, Endpoint
from podium.errors import BadRequest

__all__ = ["check_input", "schema_for", "validate_schema"]

MAX_ERRORS = 20
MESSAGE_MAX = 300
_PATTERNS = jsonschema_rs.RegexOptions(size_limit=1 << 20, dfa_size_limit=4 << 20)


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


def _cut(text: str) -> str:
    first = text.split("\n", 1)[0]  # the rest repeats the schema and the instance
    return first if len(first) <= MESSAGE_MAX else first[: MESSAGE_MAX - 1] + "…"


def _build(schema: Any) -> jsonschema_rs.Validator:
    """A validator for `schema`, or BadRequest saying why it cannot be one."""
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(str(p) for p in exc.instance_path)
        raise BadRequest(
            f"`inputSchema` is not a valid JSON Schema (draft 2020-12): "
            f"{_cut(exc.message)}{f' (at {where})' if where else ''}."
        ) from None
    try:
        return jsonschema_rs.Draft202012Validator(schema, offline=True, pattern_options=_PATTERNS)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        message = _cut(getattr(exc, "message", None) or str(exc))
        hint = ""
        if "retriev" in message.lower() or "does not exist" in message:
            hint = (
                " A `$ref` must point inside the schema (e.g. #/$defs/name): the gateway "
                "fetches nothing."
            )
        elif "regex" in message.lower():
            hint = (
                " Patterns run on a linear-time regex engine without lookaround or backreferences."
            )
        raise BadRequest(f"`inputSchema` cannot be used: {message}.{hint}") from None


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> jsonschema_rs.Validator:
    return _build(json.loads(schema_text))


def validate_schema(schema: dict[str, Any]) -> None:
    """BadRequest when `schema` is not a JSON Schema (draft 2020-12) this gateway can run:
    invalid, a `$ref` that does not resolve inside it, or a pattern the regex engine lacks."""
    _build(schema)


def _describe(error: jsonschema_rs.ValidationError) -> str:
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) and not list(
        error.instance_path
    ):
        return "; ".join(
            f"Unexpected input. {k} is not a valid input option." for k in sorted(kind.unexpected)
        )
    where = ".".join(str(p) for p in error.instance_path)
    message = _cut(error.message)
    return f"{where}: {message}" if where else message


def check_input(schema_text: str, value: Any) -> None:
    """Raise BadRequest listing the problems of `value` against the schema (at most
    MAX_ERRORS of them). The schema was checked when it was set; one stored before the
    checks existed that cannot be used is a 400 naming why, never a 500."""
    validator = _validator(schema_text)
    errors: list[jsonschema_rs.ValidationError] = []
    for error in validator.iter_errors(value):
        errors.append(error)
        if len(errors) > MAX_ERRORS:
            break
    if not errors:
        return
    errors.sort(key=lambda e: [str(p) for p in e.instance_path])
    shown = [_describe(e) for e in errors[:MAX_ERRORS]]
    more = f"; and more ({MAX_ERRORS} shown)" if len(errors) > MAX_ERRORS else ""
    raise BadRequest("Invalid input: " + "; ".join(shown) + more)
