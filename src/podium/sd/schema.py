"""The SD worker's input contract (RunPod's SD v1 worker, see docs/SD_WORKER.md). Pure: no I/O.

`validate(input)` checks one job's `input` dict and returns a frozen `SDRequest`, or raises
`BadRequest` with every problem of the request in one message (joined with "; ").
`json_schema()` describes the same contract as JSON Schema for the gateway.

Choices that differ from RunPod's worker, on purpose:
- `width` and `height` may be any multiple of 8 from 64 to 1024 (RunPod: 128…768 in steps of
  64, plus 448). 8 is what the SD VAE needs (one latent pixel per 8×8 block); above 1024 an
  SD 1.5 image repeats itself and the memory cost grows fast. With `init_image` the size
  comes from the image instead (see images.py), and these two fields are ignored.
- JSON `null` for an optional field means "use the default".
- Scheduler names are matched exactly, as in RunPod's worker and the JSON schema's enum.
- `seed` must fit in 32 bits (0 ≤ seed ≤ 4294967295); image i uses seed + i.
- `lora` is accepted by name but refused with a message: LoRA loading is not implemented yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from podium.errors import BadRequest

__all__ = [
    "FIELDS",
    "MAX_SEED",
    "SCHEDULER_NAMES",
    "Field",
    "Kind",
    "SDRequest",
    "json_schema",
    "validate",
]

Kind = Literal["txt2img", "img2img", "inpaint"]

MAX_SEED = 2**32 - 1

# Every accepted scheduler name -> its canonical name (the first name of its row in
# SD_WORKER.md). schedulers.py maps the canonical names to diffusers classes.
SCHEDULER_NAMES: dict[str, str] = {
    "DDIM": "DDIM",
    "DDPM": "DDPM",
    "PNDM": "PNDM",
    "K-LMS": "K-LMS",
    "KLMS": "K-LMS",
    "K_LMS": "K-LMS",
    "EULER-D": "EULER-D",
    "K_EULER": "EULER-D",
    "EULER-A": "EULER-A",
    "K_EULER_ANCESTRAL": "EULER-A",
    "HEUN": "HEUN",
    "K_HEUN": "HEUN",
    "KDPM2-D": "KDPM2-D",
    "K_DPM_2": "KDPM2-D",
    "KDPM2-A": "KDPM2-A",
    "K_DPM_2_ANCESTRAL": "KDPM2-A",
    "DPM-M": "DPM-M",
    "DPMSolverMultistep": "DPM-M",
    "DPM++ 2M": "DPM-M",
    "DPM++ 2M Karras": "DPM++ 2M Karras",
    "DPM-S": "DPM-S",
    "IPNDM": "IPNDM",
    "UniPC": "UniPC",
}

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Field:
    """One input field: its Python type, default and allowed range."""

    type: type
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: int | None = None
    required: bool = False


FIELDS: dict[str, Field] = {
    "prompt": Field(str, None, "What to draw.", required=True),
    "negative_prompt": Field(str, None, "What not to draw."),
    "width": Field(int, 512, "Image width in pixels.", 64, 1024, 8),
    "height": Field(int, 512, "Image height in pixels.", 64, 1024, 8),
    "init_image": Field(
        str, None, "Image-to-image source: base64, a data: URL, or an http(s) URL if enabled."
    ),
    "mask": Field(str, None, "Inpainting mask (white = repaint), same forms as init_image."),
    "prompt_strength": Field(float, 0.8, "How much to change init_image (img2img).", 0, 1),
    "num_outputs": Field(int, 1, "Number of images.", 1, 10),
    "num_inference_steps": Field(int, 50, "Denoising steps.", 1, 500),
    "guidance_scale": Field(float, 7.5, "Classifier-free guidance scale.", 0, 20),
    "scheduler": Field(str, "K-LMS", "Sampler name."),
    "seed": Field(int, None, "Seed of the first image; image i uses seed + i.", 0, MAX_SEED),
    "nsfw": Field(bool, False, "Accepted for compatibility; no safety checker is loaded."),
    "lora": Field(str, None, "Not supported yet."),
    "lora_scale": Field(float, 1.0, "LoRA weight (LoRA is not supported yet).", 0, 1),
}


@dataclass(frozen=True, slots=True)
class SDRequest:
    """One validated job input. `scheduler` holds the canonical name."""

    prompt: str
    negative_prompt: str | None = None
    width: int = 512
    height: int = 512
    init_image: str | None = None
    mask: str | None = None
    prompt_strength: float = 0.8
    num_outputs: int = 1
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    scheduler: str = "K-LMS"
    seed: int | None = None
    nsfw: bool = False
    lora: str | None = None
    lora_scale: float = 1.0

    @property
    def kind(self) -> Kind:
        if self.mask is not None:
            return "inpaint"
        if self.init_image is not None:
            return "img2img"
        return "txt2img"


def validate(input: Any, *, allow_urls: bool = False) -> SDRequest:
    """Check one job's input; raise BadRequest listing every problem at once."""
    if not isinstance(input, dict):
        raise BadRequest(
            f'The input must be a JSON object like {{"prompt": "a dog"}}, got {_json_type(input)}.'
        )
    errors = [
        f"Unexpected input. {key} is not a valid input option."
        for key in input
        if key not in FIELDS
    ]
    values: dict[str, Any] = {}
    for name, field in FIELDS.items():
        value = input.get(name)
        if value is None:
            if field.required:
                errors.append(f"`{name}` is required.")
            values[name] = field.default
            continue
        error = _check(name, field, value)
        if error is not None:
            errors.append(error)
            values[name] = field.default
        else:
            values[name] = float(value) if field.type is float else value
    errors.extend(_check_cross_field(values, input, allow_urls))
    if errors:
        raise BadRequest("; ".join(errors))
    values["scheduler"] = SCHEDULER_NAMES[values["scheduler"]]
    return SDRequest(**values)


def json_schema() -> dict[str, Any]:
    """The input contract as a JSON Schema (draft 2020-12) object."""
    properties: dict[str, Any] = {}
    for name, field in FIELDS.items():
        json_type = _JSON_TYPES[field.type]
        prop: dict[str, Any] = {
            "type": json_type if field.required else [json_type, "null"],
            "description": field.description,
        }
        if field.default is not None:
            prop["default"] = field.default
        if field.minimum is not None:
            prop["minimum"] = field.minimum
        if field.maximum is not None:
            prop["maximum"] = field.maximum
        if field.multiple_of is not None:
            prop["multipleOf"] = field.multiple_of
        properties[name] = prop
    properties["prompt"]["pattern"] = r"\S"
    properties["scheduler"]["enum"] = [*SCHEDULER_NAMES, None]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Stable Diffusion v1.5 input",
        "type": "object",
        "properties": properties,
        "required": [name for name, field in FIELDS.items() if field.required],
        "additionalProperties": False,
    }


# --- checks --------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _type_ok(field: Field, value: Any) -> bool:
    if field.type is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int subclass; true is not 1 here
        return False
    if field.type is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, field.type)


def _check(name: str, field: Field, value: Any) -> str | None:
    if not _type_ok(field, value):
        wanted = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
        finite = not isinstance(value, float) or math.isfinite(value)
        got = _json_type(value) if finite else f"{value} (not finite)"
        return f"`{name}` must be {wanted[field.type]}, got {got}."
    lo, hi = field.minimum, field.maximum
    if lo is not None and hi is not None and not lo <= value <= hi:
        return f"`{name}` must be between {_num(lo)} and {_num(hi)}, got {value}."
    step = field.multiple_of
    if step is not None and value % step:
        below = value - value % step
        return (
            f"`{name}` must be a multiple of {step}, got {value} "
            f"(try {max(below, int(lo or step))} or {min(below + step, int(hi or value))})."
        )
    if name == "prompt" and not value.strip():
        return "`prompt` must not be empty."
    if name == "scheduler" and value not in SCHEDULER_NAMES:
        return f"`scheduler` {value!r} is not supported; use one of: {', '.join(SCHEDULER_NAMES)}."
    return None


def _check_cross_field(values: dict[str, Any], raw: dict[str, Any], allow_urls: bool) -> list[str]:
    errors = []
    if values["mask"] is not None and raw.get("init_image") is None:
        errors.append("`mask` needs `init_image`: inpainting repaints part of init_image.")
    seed, n = values["seed"], values["num_outputs"]
    if isinstance(seed, int) and isinstance(n, int) and seed <= MAX_SEED < seed + n - 1:
        errors.append(
            f"`seed` + `num_outputs` - 1 must be at most {MAX_SEED} (image i uses seed + i), "
            f"got {seed} + {n} - 1."
        )
    if values["lora"] is not None:
        errors.append("`lora` is not supported by this worker yet; remove it.")
    for name in ("init_image", "mask"):
        source = values[name]
        if not isinstance(source, str):
            continue
        if source.startswith(("http://", "https://")):
            if not allow_urls:
                errors.append(
                    f"`{name}` is a URL, but this worker does not fetch URLs; "
                    "send the image as base64 or a data: URL."
                )
        elif source.startswith("data:") and ";base64," not in source[:100]:
            errors.append(f"`{name}` is a data: URL without ';base64,'; send base64 data.")
        elif "://" in source[:12]:
            errors.append(
                f"`{name}` must be base64, a data: URL or an http(s) URL, "
                f"got a {source.split('://', 1)[0]}:// URL."
            )
    return errors


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
