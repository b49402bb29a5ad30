"""The SD input contract (podium.sd.schema): pure, no torch."""

from __future__ import annotations

import math
from typing import Any

import pytest

from podium.errors import BadRequest
from podium.sd.schema import FIELDS, MAX_SEED, SCHEDULER_NAMES, SDRequest, json_schema, validate


def error_of(input: Any, **kw: Any) -> str:
    with pytest.raises(BadRequest) as info:
        validate(input, **kw)
    assert info.value.status == 400
    return info.value.message


def test_defaults() -> None:
    req = validate({"prompt": "a dog"})
    assert req == SDRequest(prompt="a dog")
    assert (req.width, req.height, req.num_outputs, req.num_inference_steps) == (512, 512, 1, 50)
    assert (req.prompt_strength, req.guidance_scale, req.scheduler) == (0.8, 7.5, "K-LMS")
    assert req.seed is None and req.negative_prompt is None and req.nsfw is False
    assert req.kind == "txt2img"


def test_request_is_frozen() -> None:
    req = validate({"prompt": "a dog"})
    with pytest.raises(AttributeError):
        req.prompt = "a cat"  # type: ignore[misc]


def test_every_field_accepted() -> None:
    req = validate(
        {
            "prompt": "a dog",
            "negative_prompt": "blurry",
            "width": 64,
            "height": 1024,
            "init_image": "aGVsbG8=",
            "mask": "data:image/png;base64,aGVsbG8=",
            "prompt_strength": 1,
            "num_outputs": 10,
            "num_inference_steps": 500,
            "guidance_scale": 0,
            "scheduler": "DPM++ 2M Karras",
            "seed": 0,
            "nsfw": True,
            "lora_scale": 0.5,
        }
    )
    assert req.kind == "inpaint"
    assert isinstance(req.prompt_strength, float) and isinstance(req.guidance_scale, float)
    assert (req.width, req.height, req.seed, req.scheduler) == (64, 1024, 0, "DPM++ 2M Karras")


def test_nulls_mean_defaults() -> None:
    req = validate({"prompt": "a", "width": None, "seed": None, "scheduler": None})
    assert (req.width, req.seed, req.scheduler) == (512, None, "K-LMS")


def test_kind() -> None:
    assert validate({"prompt": "a", "init_image": "aGVsbG8="}).kind == "img2img"


@pytest.mark.parametrize("input", [None, [], "a dog", 3])
def test_input_must_be_an_object(input: Any) -> None:
    assert error_of(input).startswith("The input must be a JSON object")


def test_unknown_key() -> None:
    assert error_of({"prompt": "a", "steps": 5}) == (
        "Unexpected input. steps is not a valid input option."
    )


@pytest.mark.parametrize(
    ("input", "message"),
    [
        ({}, "`prompt` is required."),
        ({"prompt": None}, "`prompt` is required."),
        ({"prompt": "   "}, "`prompt` must not be empty."),
        ({"prompt": 5}, "`prompt` must be a string, got an integer."),
        (
            {"prompt": "a", "negative_prompt": ["x"]},
            "`negative_prompt` must be a string, got an array.",
        ),
        (
            {"prompt": "a", "width": 500},
            "`width` must be a multiple of 8, got 500 (try 496 or 504).",
        ),
        (
            {"prompt": "a", "height": 1020},
            "`height` must be a multiple of 8, got 1020 (try 1016 or 1024).",
        ),
        ({"prompt": "a", "width": 32}, "`width` must be between 64 and 1024, got 32."),
        ({"prompt": "a", "height": 1032}, "`height` must be between 64 and 1024, got 1032."),
        ({"prompt": "a", "width": 512.0}, "`width` must be an integer, got a number."),
        ({"prompt": "a", "width": "512"}, "`width` must be an integer, got a string."),
        ({"prompt": "a", "width": True}, "`width` must be an integer, got a boolean."),
        (
            {"prompt": "a", "prompt_strength": 1.5},
            "`prompt_strength` must be between 0 and 1, got 1.5.",
        ),
        (
            {"prompt": "a", "prompt_strength": -0.1},
            "`prompt_strength` must be between 0 and 1, got -0.1.",
        ),
        ({"prompt": "a", "num_outputs": 0}, "`num_outputs` must be between 1 and 10, got 0."),
        ({"prompt": "a", "num_outputs": 11}, "`num_outputs` must be between 1 and 10, got 11."),
        (
            {"prompt": "a", "num_inference_steps": 0},
            "`num_inference_steps` must be between 1 and 500, got 0.",
        ),
        (
            {"prompt": "a", "num_inference_steps": 501},
            "`num_inference_steps` must be between 1 and 500, got 501.",
        ),
        (
            {"prompt": "a", "guidance_scale": 20.5},
            "`guidance_scale` must be between 0 and 20, got 20.5.",
        ),
        (
            {"prompt": "a", "guidance_scale": False},
            "`guidance_scale` must be a number, got a boolean.",
        ),
        (
            {"prompt": "a", "guidance_scale": math.nan},
            "`guidance_scale` must be a number, got nan (not finite).",
        ),
        (
            {"prompt": "a", "guidance_scale": "7"},
            "`guidance_scale` must be a number, got a string.",
        ),
        ({"prompt": "a", "seed": -1}, f"`seed` must be between 0 and {MAX_SEED}, got -1."),
        ({"prompt": "a", "seed": 2**32}, f"`seed` must be between 0 and {MAX_SEED}, got {2**32}."),
        ({"prompt": "a", "seed": 1.0}, "`seed` must be an integer, got a number."),
        ({"prompt": "a", "nsfw": 1}, "`nsfw` must be true or false, got an integer."),
        ({"prompt": "a", "lora_scale": 2}, "`lora_scale` must be between 0 and 1, got 2."),
        ({"prompt": "a", "lora": "x"}, "`lora` is not supported by this worker yet; remove it."),
        (
            {"prompt": "a", "seed": MAX_SEED, "num_outputs": 2},
            f"`seed` + `num_outputs` - 1 must be at most {MAX_SEED} (image i uses seed + i), "
            f"got {MAX_SEED} + 2 - 1.",
        ),
        (
            {"prompt": "a", "mask": "aGVsbG8="},
            "`mask` needs `init_image`: inpainting repaints part of init_image.",
        ),
    ],
)
def test_rule(input: dict[str, Any], message: str) -> None:
    assert error_of(input) == message


def test_ints_accepted_for_floats() -> None:
    req = validate({"prompt": "a", "guidance_scale": 7, "prompt_strength": 0})
    assert req.guidance_scale == 7.0 and type(req.guidance_scale) is float
    assert req.prompt_strength == 0.0 and type(req.prompt_strength) is float


def test_unknown_scheduler_lists_the_valid_names() -> None:
    message = error_of({"prompt": "a", "scheduler": "euler"})
    assert message.startswith("`scheduler` 'euler' is not supported; use one of: DDIM, DDPM,")
    for name in SCHEDULER_NAMES:
        assert name in message


@pytest.mark.parametrize(("name", "canonical"), list(SCHEDULER_NAMES.items()))
def test_scheduler_aliases(name: str, canonical: str) -> None:
    assert validate({"prompt": "a", "scheduler": name}).scheduler == canonical


def test_scheduler_table_matches_the_docs() -> None:
    assert set(SCHEDULER_NAMES.values()) == {
        "DDIM", "DDPM", "PNDM", "K-LMS", "EULER-D", "EULER-A", "HEUN", "KDPM2-D",
        "KDPM2-A", "DPM-M", "DPM++ 2M Karras", "DPM-S", "IPNDM", "UniPC",
    }  # fmt: skip
    assert len(SCHEDULER_NAMES) == 23


def test_all_errors_reported_together() -> None:
    message = error_of(
        {"width": 500, "num_outputs": 0, "mask": "aGVsbG8=", "colour": "red", "seed": "x"}
    )
    assert message.split("; ") == [
        "Unexpected input. colour is not a valid input option.",
        "`prompt` is required.",
        "`width` must be a multiple of 8, got 500 (try 496 or 504).",
        "`num_outputs` must be between 1 and 10, got 0.",
        "`seed` must be an integer, got a string.",
        "`mask` needs `init_image`: inpainting repaints part of init_image.",
    ]


@pytest.mark.parametrize("field", ["init_image", "mask"])
def test_urls_refused_unless_enabled(field: str) -> None:
    input = {"prompt": "a", "init_image": "aGVsbG8=", field: "https://example.com/a.png"}
    assert error_of(input) == (
        f"`{field}` is a URL, but this worker does not fetch URLs; "
        "send the image as base64 or a data: URL."
    )
    assert getattr(validate(input, allow_urls=True), field) == "https://example.com/a.png"


def test_other_schemes_refused() -> None:
    assert error_of({"prompt": "a", "init_image": "file:///etc/passwd"}) == (
        "`init_image` must be base64, a data: URL or an http(s) URL, got a file:// URL."
    )
    assert error_of({"prompt": "a", "init_image": "data:image/png,abc"}) == (
        "`init_image` is a data: URL without ';base64,'; send base64 data."
    )


def test_json_schema_mirrors_the_fields() -> None:
    schema = json_schema()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["prompt"]
    props = schema["properties"]
    assert set(props) == set(FIELDS)
    assert props["prompt"]["type"] == "string"
    assert props["width"] == {
        "type": ["integer", "null"],
        "description": "Image width in pixels.",
        "default": 512,
        "minimum": 64,
        "maximum": 1024,
        "multipleOf": 8,
    }
    assert props["guidance_scale"]["type"] == ["number", "null"]
    assert props["nsfw"]["type"] == ["boolean", "null"]
    assert set(props["scheduler"]["enum"]) == {*SCHEDULER_NAMES, None}
    assert props["scheduler"]["default"] == "K-LMS"
    # Every declared default is what validate() fills in.
    defaults = validate({"prompt": "a"})
    for name, prop in props.items():
        if "default" in prop:
            assert getattr(defaults, name) == prop["default"], name


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.maximum is not None])
def test_json_schema_bounds_are_the_validated_bounds(name: str) -> None:
    prop = json_schema()["properties"][name]
    lo, hi = prop["minimum"], prop["maximum"]
    extra = {"init_image": "aGVsbG8="} if name == "prompt_strength" else {}
    for ok in (lo, hi):
        validate({"prompt": "a", name: ok, **extra})
    step = 1 if prop["type"][0] == "integer" else 0.5
    for bad in (lo - step, hi + step):
        with pytest.raises(BadRequest):
            validate({"prompt": "a", name: bad, **extra})
