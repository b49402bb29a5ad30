"""The one JSON codec: its limits, named in every refusal."""

from __future__ import annotations

import pytest

from podium import codec
from podium.errors import BadRequest


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_depth_limit_is_exact():
    assert codec.loads(nested(codec.MAX_DEPTH)) is not None
    with pytest.raises(BadRequest, match=f"the limit is {codec.MAX_DEPTH}"):
        codec.loads(nested(codec.MAX_DEPTH + 1))
    with pytest.raises(BadRequest, match="nested more than"):
        codec.loads('{"a": {"b": ' + nested(codec.MAX_DEPTH) + "}}")


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",
        "-9223372036854775809",
        '{"n": [1, 123456789012345678901234567890]}',
        "[" + "9" * 30 + "]",
    ],
)
def test_integers_past_64_bits_are_refused(text):
    with pytest.raises(BadRequest, match="64-bit range"):
        codec.loads(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("18446744073709551615", 2**64 - 1),
        ("-9223372036854775808", -(2**63)),
        ("1e19", 1e19),  # a float written as one stays a float
        ('{"id": "123456789012345678901234567890"}', {"id": "123456789012345678901234567890"}),
    ],
)
def test_numbers_inside_the_limits_are_exact(text, value):
    assert codec.loads(text) == value


@pytest.mark.parametrize("text", ["1e400", "NaN", "Infinity", "-Infinity", "[1,]", "", "{"])
def test_not_json_is_refused(text):
    with pytest.raises(BadRequest, match="is not valid JSON"):
        codec.loads(text, "The body")


def test_split_takes_the_field_out_as_text():
    rest, text = codec.split(b'{"input": {"a": [1, 2.5, "x"]}, "policy": {"ttl": 5}}', "input")
    assert rest == {"policy": {"ttl": 5}}
    assert text == '{"a":[1,2.5,"x"]}'
    assert codec.split(b'{"other": 1}', "input") == ({"other": 1}, None)
    assert codec.split(b"[1]", "input") == ([1], None)
    assert codec.split(b'{"input": null}', "input") == ({}, "null")


def test_split_runs_the_check_on_the_taken_value():
    def refuse(value):
        raise BadRequest(f"no {value}")

    with pytest.raises(BadRequest, match="no 5"):
        codec.split(b'{"input": 5}', "input", check_value=refuse)


def test_fragments_are_spliced_unparsed():
    assert codec.dumps({"output": codec.fragment('{"a":1}')}) == b'{"output":{"a":1}}'


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("123", True),
        ("", False),
        ("²", False),
        ("١٢", False),
        ("1_0", False),
        ("-1", False),
        (" 1", False),
    ],
)
def test_ascii_digits_are_0_to_9_only(text, digits):
    assert codec.ascii_digits(text) is digits
