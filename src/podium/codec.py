"""The one JSON codec of the whole path: HTTP edge, stores, worker API, webhooks. Pure.

Every JSON document that enters Podium from outside (a client's body, a worker's result
or stream chunk, an admin request) is decoded by `loads`, which enforces the limits
below and answers BadRequest naming the limit. Everything Podium stores was admitted by
`loads`, so stores keep it as JSON text and hand it on without parsing it again
(`fragment` splices stored text into a response or a job object unchanged).

Limits (docs/api.md, "Limits"):
- nesting: at most MAX_DEPTH levels of arrays/objects (the top level counts as 1);
- integers: within 64 bits (INT_MIN … INT_MAX). Larger ones would silently turn into
  floats in most JSON libraries (orjson, JavaScript), so they are refused rather than
  changed: send them as strings;
- no NaN or Infinity, and no number that overflows a double (`1e400`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from podium.errors import BadRequest

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "ascii_digits",
    "dumps",
    "dumps_text",
    "fragment",
    "loads",
    "loads_trusted",
    "split",
]

MAX_DEPTH = 100
REST_MAX_BYTES = 1024 * 1024  # what `split` leaves beside the field it takes out
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
# orjson turns an integer literal outside 64 bits into a float; a float that large is
# the sign that the text may have held such an integer (checked exactly, then).
_BIG = 2.0**63


def ascii_digits(text: str) -> bool:
    """Whether `text` is a non-empty run of the digits 0-9 (a whole number in a query
    string or header). `str.isdigit` also accepts "²" and other Unicode digits, which
    `int()` then refuses or reads as another number."""
    return text.isascii() and text.isdigit()


def loads(data: bytes | str, what: str = "The request body") -> Any:
    """Decode untrusted JSON; BadRequest (naming `what` and the limit) when it is not
    valid JSON or passes a limit."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}.") from None
    if _walk(value, what):
        _check_integers(data, what)
    return value


def split(
    data: bytes | str,
    key: str,
    what: str = "The request body",
    check_value: Callable[[Any], None] | None = None,
) -> tuple[Any, str | None]:
    """Decode a document whose top level should be an object and take `key` out of it as
    compact JSON text: (the rest, the text or None when absent). The rest is bounded by
    REST_MAX_BYTES. `check_value` (picklable: large bodies are split in another
    process) may refuse the taken value by raising BadRequest."""
    value = loads(data, what)
    if type(value) is not dict or key not in value:
        return value, None
    inner = value.pop(key)
    if len(data) > REST_MAX_BYTES and len(dumps(value)) > REST_MAX_BYTES:
        raise BadRequest(
            f"{what} holds over {REST_MAX_BYTES} bytes beside `{key}`; the limit is "
            f"{REST_MAX_BYTES} bytes."
        )
    if check_value is not None:
        check_value(inner)
    return value, dumps_text(inner)


def loads_trusted(data: bytes | str) -> Any:
    """Decode JSON that Podium stored itself (it passed `loads` on its way in)."""
    return orjson.loads(data)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes; `fragment`s are spliced in as they are."""
    return orjson.dumps(value)


def dumps_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def fragment(text: str | bytes) -> orjson.Fragment:
    """Stored JSON text, to be placed inside a document without parsing it."""
    return orjson.Fragment(text)


# --- internals -----------------------------------------------------------------------


def _depth_message(what: str) -> str:
    return (
        f"{what} is nested more than {MAX_DEPTH} levels deep (arrays and objects); "
        f"the limit is {MAX_DEPTH}."
    )


def _int_message(what: str, value: Any) -> str:
    text = str(value)
    shown = text if len(text) <= 40 else text[:20] + "…" + text[-8:]
    return (
        f"{what} holds the integer {shown}, outside the 64-bit range JSON numbers keep "
        f"exactly ({INT_MIN} to {INT_MAX}); send it as a string."
    )


def _walk(value: Any, what: str) -> bool:
    """Check the nesting depth without recursion. True when a float large enough to
    have been an out-of-range integer was seen."""
    if type(value) is not dict and type(value) is not list:
        return type(value) is float and (value >= _BIG or value <= -_BIG)
    suspect = False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(_depth_message(what))
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is float and (child >= _BIG or child <= -_BIG):
                suspect = True
    return suspect


def _check_integers(data: bytes | str, what: str) -> None:
    """The exact (slow) check, run only when a huge float was seen: the standard
    library keeps integer literals exact, so the text's own integers can be compared."""

    def parse_int(text: str) -> int:
        # More than 20 digits is out of range; int() of a very long text would refuse.
        number = int(text) if len(text) <= 21 else None
        if number is None or not INT_MIN <= number <= INT_MAX:
            raise BadRequest(_int_message(what, text))
        return number

    json.loads(data, parse_int=parse_int)
