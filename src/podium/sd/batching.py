"""Which requests can share one pipeline call. Pure: no I/O.

One diffusers call runs one kind of pipeline at one size, step count, scheduler, guidance
scale and (for img2img/inpainting) strength; prompts, negative prompts, seeds and source
images may differ per image. `group_key` names that shared part, and `plan` splits a batch
of requests into calls of at most `max_images` images each.
"""

from __future__ import annotations

from collections.abc import Sequence

from podium.sd.schema import Kind, SDRequest

__all__ = ["GroupKey", "group_key", "plan"]

GroupKey = tuple[Kind, int, int, int, str, float, float | None]


def group_key(req: SDRequest) -> GroupKey:
    """(kind, width, height, steps, scheduler, guidance, strength or None for txt2img)."""
    strength = None if req.kind == "txt2img" else req.prompt_strength
    return (
        req.kind,
        req.width,
        req.height,
        req.num_inference_steps,
        req.scheduler,
        req.guidance_scale,
        strength,
    )


def plan(requests: Sequence[SDRequest], max_images: int) -> list[list[int]]:
    """Indices of `requests`, grouped into pipeline calls.

    Requests with equal `group_key`s share calls, in order of first appearance; a call
    holds at most `max_images` images unless one request alone asks for more. A request's
    outputs are never split across calls.
    """
    groups: dict[GroupKey, list[int]] = {}
    for i, req in enumerate(requests):
        groups.setdefault(group_key(req), []).append(i)
    calls: list[list[int]] = []
    for members in groups.values():
        current: list[int] = []
        images = 0
        for i in members:
            n = requests[i].num_outputs
            if current and images + n > max_images:
                calls.append(current)
                current, images = [], 0
            current.append(i)
            images += n
        calls.append(current)
    return calls
