"""Where Stable Diffusion 1.5 weights come from, decided without importing torch (the
CLI asks before it starts anything): the local Hugging Face cache, or the hub.

`auto` serves these weights or nothing: a worker asked for `auto` that finds none
refuses to start (models.ModelUnavailable) rather than serve random noise. Only `tiny`
and `sd15-random`, asked for by name, serve random weights.
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["NO_WEIGHTS", "SD15_REPO", "TINY_NOTE", "hub_answers", "sd15_available", "sd15_cached"]

SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
NO_WEIGHTS = (
    f"Model 'auto' found no Stable Diffusion 1.5 weights: {SD15_REPO} is not in the "
    "Hugging Face cache and the hub did not answer. Download them "
    f"(`hf download {SD15_REPO}`), set the endpoint's model to a diffusers folder, a "
    ".safetensors file or a repo id in the cache, or choose 'tiny' by name for a random "
    "model whose images are noise."
)
TINY_NOTE = (
    f"no Stable Diffusion 1.5 weights were found ({SD15_REPO} is not in the Hugging Face "
    "cache), so the endpoint serves the model 'tiny': random weights, every image is "
    f"noise. For real pictures: `hf download {SD15_REPO}`, then --model auto."
)


def sd15_cached(cache_dir: Path | None = None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(SD15_REPO, "model_index.json", cache_dir=cache_dir)
    return isinstance(found, str)


def hub_answers(timeout_s: float) -> bool:
    """True when the HF hub answers within `timeout_s` (a hard limit, DNS included)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    result: list[bool] = []

    def probe() -> None:
        import httpx

        try:
            url = f"{constants.ENDPOINT}/api/models/{SD15_REPO}"
            result.append(httpx.head(url, timeout=timeout_s).status_code < 500)
        except Exception:
            result.append(False)

    thread = threading.Thread(target=probe, name="hf-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def sd15_available(cache_dir: Path | None = None, timeout_s: float = 2.0) -> bool:
    """Whether `auto` would find weights: in the cache, or from a hub that answers."""
    return sd15_cached(cache_dir) or hub_answers(timeout_s)
