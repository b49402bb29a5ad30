"""SDHandler on the tiny model: outputs, seeds, batching, schedulers, img2img, inpainting,
progress and cancellation. 64×64 (or so) images, a few steps each."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.sd

pytest.importorskip("diffusers")

from podium.sd import handler as handler_module  # noqa: E402
from podium.sd.generate import CANCELLED_ERROR  # noqa: E402
from podium.sd.handler import SDHandler, build  # noqa: E402
from podium.sd.schedulers import SCHEDULERS  # noqa: E402
from podium.worker.api import BatchHandler, JobContext  # noqa: E402
from tests.sd.pngs import data_url, decode, pixels, png_b64  # noqa: E402

MakeContext = Callable[[str], tuple[JobContext, list[Any]]]


def job(job_id: str = "job", **input: Any) -> dict[str, Any]:
    return {"id": job_id, "input": {"width": 64, "height": 64, "num_inference_steps": 2, **input}}


def outputs(result: Any) -> list[dict[str, Any]]:
    assert isinstance(result, list), result
    return result


def close(a: str, b: str) -> bool:
    """Same image up to ±1 per channel (batched float math differs in the last bits)."""
    return bool(np.abs(pixels(a) - pixels(b)).max() <= 1)


def test_is_a_batch_handler(tiny: SDHandler) -> None:
    assert isinstance(tiny, BatchHandler)
    assert (tiny.max_batch, tiny.max_wait_s) == (4, 0.05)


def test_info_says_the_images_are_noise(tiny: SDHandler) -> None:
    info = tiny.info()
    assert info["model"] == "tiny" and info["kind"] == "tiny" and info["noise"] is True
    assert "noise" in info["warning"]


def test_txt2img_returns_a_png_of_the_requested_size(tiny: SDHandler) -> None:
    [out] = outputs(tiny(job(prompt="a dog", width=96, height=64, seed=40264)))
    assert set(out) == {"image", "seed"}
    assert out["seed"] == 40264
    assert not out["image"].startswith("data:")
    image = decode(out["image"])
    assert image.size == (96, 64) and image.mode == "RGB"


def test_same_seed_same_bytes(tiny: SDHandler) -> None:
    a = outputs(tiny(job(prompt="a dog", seed=7)))
    b = outputs(tiny(job(prompt="a dog", seed=7)))
    c = outputs(tiny(job(prompt="a dog", seed=8)))
    assert a == b
    assert a[0]["image"] != c[0]["image"]


def test_random_seed_is_reported_and_reproduces(tiny: SDHandler) -> None:
    [first] = outputs(tiny(job(prompt="a dog")))
    assert isinstance(first["seed"], int)
    [again] = outputs(tiny(job(prompt="a dog", seed=first["seed"])))
    assert again == first


def test_each_output_seed_reproduces_its_image_alone(tiny: SDHandler) -> None:
    many = outputs(tiny(job(prompt="a dog", num_outputs=3, seed=100)))
    assert [o["seed"] for o in many] == [100, 101, 102]
    assert len({o["image"] for o in many}) == 3
    for out in many:
        [alone] = outputs(tiny(job(prompt="a dog", seed=out["seed"])))
        assert close(alone["image"], out["image"])


def test_a_batch_equals_each_job_run_alone(tiny: SDHandler) -> None:
    jobs = [
        job("a", prompt="a dog", seed=1),
        job("b", prompt="a cat on a mat", negative_prompt="blurry", seed=2, num_outputs=2),
        job("c", prompt="a red fox", seed=3),
    ]
    batched = tiny.handle_batch(jobs)
    for j, result in zip(jobs, batched, strict=True):
        alone = outputs(tiny(j))
        assert [o["seed"] for o in outputs(result)] == [o["seed"] for o in alone]
        for x, y in zip(outputs(result), alone, strict=True):
            assert close(x["image"], y["image"])


def test_a_call_cap_splits_the_batch_without_changing_images(
    tiny: SDHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [job(str(i), prompt=f"dog {i}", seed=i, num_outputs=2) for i in range(3)]
    together = tiny.handle_batch(jobs)
    monkeypatch.setattr(tiny, "max_images_per_call", 2)
    split = tiny.handle_batch(jobs)
    for x, y in zip(together, split, strict=True):
        for a, b in zip(outputs(x), outputs(y), strict=True):
            assert close(a["image"], b["image"])


def test_mixed_batch_keeps_job_order_and_fails_bad_jobs_alone(tiny: SDHandler) -> None:
    results = tiny.handle_batch(
        [
            job("a", prompt="a", width=128),
            job("b", prompt=""),
            job("c", prompt="c", scheduler="DDIM"),
            {"id": "d"},
            job("e", prompt="e", width=128, seed=5),
        ]
    )
    assert decode(outputs(results[0])[0]["image"]).size == (128, 64)
    assert results[1] == {"error": "`prompt` must not be empty."}
    assert decode(outputs(results[2])[0]["image"]).size == (64, 64)
    assert results[3] == {"error": 'The job has no "input"; send {"input": {"prompt": ...}}.'}
    assert outputs(results[4])[0]["seed"] == 5


def test_all_validation_errors_come_back_together(tiny: SDHandler) -> None:
    result = tiny(job(prompt="a", width=500, colour="red"))
    assert result == {
        "error": "Unexpected input. colour is not a valid input option.; "
        "`width` must be a multiple of 8, got 500 (try 496 or 504)."
    }


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_runs(tiny: SDHandler, scheduler: str) -> None:
    a = outputs(tiny(job(prompt="a dog", scheduler=scheduler, seed=1)))
    b = outputs(tiny(job(prompt="a dog", scheduler=scheduler, seed=1)))
    assert decode(a[0]["image"]).size == (64, 64)
    assert a == b


@pytest.mark.parametrize("source", [png_b64(90, 70), data_url(90, 70)], ids=["base64", "data-url"])
def test_img2img(tiny: SDHandler, source: str) -> None:
    result = tiny(
        job(prompt="a dog", init_image=source, prompt_strength=0.5, seed=4, num_outputs=2)
    )
    images = [decode(o["image"]) for o in outputs(result)]
    assert [im.size for im in images] == [(88, 64), (88, 64)]  # center-cropped to multiples of 8


@pytest.mark.parametrize(
    ("image", "mask"),
    [(png_b64(64, 64), png_b64(64, 64, "L")), (data_url(64, 80), data_url(32, 40, "L"))],
    ids=["base64", "data-url"],
)
def test_inpainting(tiny: SDHandler, image: str, mask: str) -> None:
    result = tiny(job(prompt="a dog", init_image=image, mask=mask, seed=4))
    [out] = outputs(result)
    assert decode(out["image"]).size == decode(image.split(",")[-1]).size


def test_img2img_and_txt2img_share_the_weights(tiny: SDHandler) -> None:
    unet = tiny.pipe.unet
    tiny(job(prompt="a", init_image=png_b64(64, 64)))
    tiny(job(prompt="a", init_image=png_b64(64, 64), mask=png_b64(64, 64, "L")))
    assert tiny.pipe.unet is unet


def test_bad_source_images_fail_their_job_only(tiny: SDHandler) -> None:
    results = tiny.handle_batch(
        [
            job("a", prompt="a", init_image="bm90IGFuIGltYWdl", mask="!!"),
            job("b", prompt="b", init_image=png_b64(32, 64)),
            job("c", prompt="c", init_image=png_b64(1100, 64)),
            job("d", prompt="d"),
        ]
    )
    assert results[0]["error"].startswith("`init_image` is not an image PIL can read")
    assert "; `mask` is not valid base64" in results[0]["error"]
    assert results[1] == {"error": "`init_image` is 32×64; both sides must be at least 64."}
    assert "the largest side this worker accepts is 1024" in results[2]["error"]
    assert len(outputs(results[3])) == 1


def test_urls_refused_when_disabled(tiny: SDHandler) -> None:
    result = tiny(job(prompt="a", init_image="http://127.0.0.1/x.png"))
    assert result == {
        "error": "`init_image` is a URL, but this worker does not fetch URLs; "
        "send the image as base64 or a data: URL."
    }


def test_private_urls_refused_when_enabled(
    tiny: SDHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tiny, "allow_urls", True)
    result = tiny(job(prompt="a", init_image="http://127.0.0.1/x.png"))
    assert "'127.0.0.1' is a private, loopback or link-local address" in result["error"]


def test_progress_reports_step_and_steps(tiny: SDHandler, job_context: MakeContext) -> None:
    _, events = job_context("p1")
    tiny(job("p1", prompt="a dog", num_inference_steps=3))
    assert events == [{"step": 1, "steps": 3}, {"step": 2, "steps": 3}, {"step": 3, "steps": 3}]


def test_progress_counts_steps_not_model_calls(tiny: SDHandler, job_context: MakeContext) -> None:
    _, heun = job_context("p2")
    tiny(job("p2", prompt="a", num_inference_steps=3, scheduler="HEUN"))  # 2 timesteps a step
    assert heun[-1] == {"step": 3, "steps": 3}
    assert [e["step"] for e in heun] == sorted(e["step"] for e in heun)
    _, img2img = job_context("p3")
    tiny(
        job(
            "p3", prompt="a", init_image=png_b64(64, 64), num_inference_steps=4, prompt_strength=0.5
        )
    )
    assert img2img == [{"step": 1, "steps": 2}, {"step": 2, "steps": 2}]


def test_cancel_mid_generation_stops_promptly(tiny: SDHandler, job_context: MakeContext) -> None:
    ctx, events = job_context("c1")

    def cancel_at_first_step(progress: Any) -> None:
        events.append(progress)
        ctx.cancelled.set()

    ctx.send_progress = cancel_at_first_step
    result = tiny(job("c1", prompt="a dog", num_inference_steps=50))
    assert result == {"error": CANCELLED_ERROR}
    assert events == [{"step": 1, "steps": 50}]  # no step ran after the cancel


def test_cancelling_one_job_of_a_batch_keeps_the_others(
    tiny: SDHandler, job_context: MakeContext
) -> None:
    ctx, _ = job_context("c2")
    _, kept_events = job_context("c3")

    def cancel_at_step_2(progress: Any) -> None:
        if progress["step"] == 2:
            ctx.cancelled.set()

    ctx.send_progress = cancel_at_step_2
    kept = job("c3", prompt="a cat", seed=9, num_inference_steps=4)
    results = tiny.handle_batch([job("c2", prompt="a dog", num_inference_steps=4), kept])
    assert results[0] == {"error": CANCELLED_ERROR}
    assert [e["step"] for e in kept_events] == [1, 2, 3, 4]
    [alone] = outputs(tiny({**kept, "id": "c4"}))
    assert close(outputs(results[1])[0]["image"], alone["image"])


def test_a_job_cancelled_before_it_starts_does_not_run(
    tiny: SDHandler, job_context: MakeContext
) -> None:
    ctx, events = job_context("c5")
    ctx.cancelled.set()
    assert tiny(job("c5", prompt="a")) == {"error": CANCELLED_ERROR}
    assert events == []


def test_a_failing_call_fails_its_jobs(tiny: SDHandler, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(handler_module, "generate", boom)
    results = tiny.handle_batch([job("a", prompt="a"), job("b", prompt="")])
    assert results == [
        {"error": "Generation failed: RuntimeError: out of memory"},
        {"error": "`prompt` must not be empty."},
    ]


def test_concurrent_batches_are_safe(tiny: SDHandler) -> None:
    jobs = [job(str(i), prompt=f"dog {i}", seed=i, scheduler="DPM-M") for i in range(4)]
    expected = [outputs(tiny(j)) for j in jobs]
    got: dict[int, Any] = {}

    def run(i: int) -> None:
        got[i] = tiny.handle_batch([jobs[i]])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert close(outputs(got[i])[0]["image"], expected[i][0]["image"])


def test_build_reads_the_environment(monkeypatch: pytest.MonkeyPatch, sd_data_dir: Any) -> None:
    monkeypatch.setenv("PODIUM_SD_MODEL", "tiny")
    monkeypatch.setenv("PODIUM_DATA_DIR", str(sd_data_dir))
    handler = build(device="cpu", max_batch=2)
    assert handler.info()["kind"] == "tiny" and handler.max_batch == 2
    assert (sd_data_dir / "models" / "tiny" / "model_index.json").is_file()
