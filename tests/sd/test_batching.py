"""Which requests share a pipeline call (podium.sd.batching): pure."""

from __future__ import annotations

from typing import Any

from podium.sd.batching import group_key, plan
from podium.sd.schema import SDRequest, validate


def req(**kw: Any) -> SDRequest:
    return validate({"prompt": "a dog", **kw})


def test_prompts_seeds_and_counts_do_not_split_a_group() -> None:
    base = group_key(req())
    assert group_key(req(prompt="a cat", negative_prompt="x", seed=3, num_outputs=4)) == base
    assert group_key(req(nsfw=True, guidance_scale=7.5)) == base


def test_key_fields() -> None:
    assert group_key(req(width=256, height=128, num_inference_steps=20, scheduler="DDIM")) == (
        "txt2img",
        256,
        128,
        20,
        "DDIM",
        7.5,
        None,
    )


def test_aliases_share_a_group() -> None:
    assert group_key(req(scheduler="K_LMS")) == group_key(req(scheduler="K-LMS"))


def test_int_and_float_guidance_share_a_group() -> None:
    assert group_key(req(guidance_scale=7)) == group_key(req(guidance_scale=7.0))


def test_each_shared_setting_splits_groups() -> None:
    base = group_key(req())
    for kw in (
        {"width": 256},
        {"height": 256},
        {"num_inference_steps": 20},
        {"scheduler": "DDIM"},
        {"guidance_scale": 1},
        {"init_image": "aGVsbG8="},
    ):
        assert group_key(req(**kw)) != base, kw


def test_strength_matters_only_with_a_source_image() -> None:
    assert group_key(req(prompt_strength=0.3)) == group_key(req(prompt_strength=0.9))
    img = {"init_image": "aGVsbG8="}
    assert group_key(req(prompt_strength=0.3, **img)) != group_key(req(prompt_strength=0.9, **img))
    assert group_key(req(**img))[0] == "img2img"
    assert group_key(req(mask="aGVsbG8=", **img))[0] == "inpaint"
    assert group_key(req(mask="aGVsbG8=", **img)) != group_key(req(**img))


def test_plan_groups_in_order_of_first_appearance() -> None:
    reqs = [req(), req(width=256), req(prompt="b"), req(width=256, seed=1), req(scheduler="DDIM")]
    assert plan(reqs, max_images=16) == [[0, 2], [1, 3], [4]]


def test_plan_caps_images_per_call() -> None:
    reqs = [req(num_outputs=3), req(num_outputs=2), req(num_outputs=1), req(num_outputs=4)]
    assert plan(reqs, max_images=4) == [[0], [1, 2], [3]]
    assert plan(reqs, max_images=6) == [[0, 1, 2], [3]]


def test_plan_never_splits_a_job() -> None:
    assert plan([req(num_outputs=10), req()], max_images=4) == [[0], [1]]


def test_plan_empty() -> None:
    assert plan([], max_images=4) == []
