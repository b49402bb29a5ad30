"""Loading the one Stable Diffusion model a worker serves, chosen by a string.

    tiny                   a tiny random-weight SD pipeline built here (no download), cached
                           as a diffusers folder in <data_dir>/models/tiny: the images are noise
    sd15-random            the full SD 1.5 architecture with random weights, built in memory
                           (~4 GB in fp32, not cached): real compute cost for benchmarks
    auto                   the HF cache's stable-diffusion-v1-5/stable-diffusion-v1-5 if present,
                           else the hub if it answers within ~2 s, else nothing: the worker
                           refuses to start (ModelUnavailable), never serving noise
    a folder               a local diffusers folder (with model_index.json)
    a .safetensors/.ckpt   a single-file checkpoint (StableDiffusionPipeline.from_single_file;
                           diffusers takes the matching config from the HF cache, or downloads
                           it where downloads are allowed)
    owner/name             a Hugging Face repo id, from the local HF cache unless downloads
                           are allowed

`load_pipeline` returns the txt2img pipeline, on its device and dtype, and a description:
{"model", "kind", "source", "warning", "device", "dtype"}. img2img and inpainting pipelines
are built per call from its `components`, so all three share one set of weights (see
generate.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from podium.errors import ModelUnavailable
from podium.sd.weights import NO_WEIGHTS, SD15_REPO, hub_answers, sd15_cached

__all__ = [
    "SD15_REPO",
    "LoadOptions",
    "ModelUnavailable",
    "build_sd15_random",
    "build_tiny",
    "byte_level_tokenizer",
    "load_pipeline",
    "resolve_dtype",
]

log = logging.getLogger(__name__)

# diffusers' type information shows the classes imported above as placeholders: constructors
# and loaders without annotations (calls to them carry `type: ignore[no-untyped-call]`), and
# pipelines without attributes (a pipeline registers its modules, e.g. `unet`, at run time).

TINY_WARNING = (
    "Model 'tiny' has random weights: every image is noise. It exists to try Podium "
    "offline; serve a real model with --model / PODIUM_SD_MODEL (e.g. " + SD15_REPO + ")."
)
SD15_RANDOM_WARNING = "Model 'sd15-random' has random weights: the images are noise."

_TINY_RECIPE = 3  # bump when build_tiny changes, so cached copies are rebuilt
_NO_SAFETY = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}

# SD 1.5's own scheduler config (PNDM, as published with the weights).
_SD15_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "clip_sample": False,  # not a PNDM setting: kept for DDIM/DDPM made from this config
}

_DTYPES = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
}


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How to load. device/dtype None: cuda + float16 when available, else cpu + float32."""

    data_dir: Path
    device: str | None = None
    dtype: str | None = None
    compile: bool = False
    allow_download: bool = False
    hf_cache_dir: Path | None = None  # None: huggingface_hub's default
    hub_probe_timeout_s: float = 2.0


def load_pipeline(
    model: str, options: LoadOptions
) -> tuple[StableDiffusionPipeline, dict[str, Any]]:
    """Load `model` (see the module docstring) ready to run on the chosen device."""
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_dtype(options.dtype, device)
    loaded = _load(model, options, device, dtype)
    _place(loaded.pipe, device, compile=options.compile)
    loaded.pipe.set_progress_bar_config(disable=True)  # type: ignore[attr-defined]
    if loaded.warning:
        log.warning("!!! %s", loaded.warning)
    description = {
        "model": model,
        "kind": loaded.kind,
        "source": loaded.source,
        "warning": loaded.warning,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
    }
    return loaded.pipe, description


class _Loaded(NamedTuple):
    pipe: StableDiffusionPipeline
    kind: str  # tiny | sd15-random | hub | folder | single-file
    source: str  # where the weights came from: a repo id, a path, or "built in memory"
    warning: str | None = None


def _load(model: str, options: LoadOptions, device: str, dtype: torch.dtype) -> _Loaded:
    if model == "tiny":
        return _load_tiny(options.data_dir, dtype)
    if model == "sd15-random":
        pipe = build_sd15_random(device=device, dtype=dtype)
        return _Loaded(pipe, "sd15-random", "built in memory", SD15_RANDOM_WARNING)
    if model == "auto":
        return _load_auto(options, dtype)
    path = Path(model).expanduser()
    if path.suffix in (".safetensors", ".ckpt") and path.is_file():
        pipe = StableDiffusionPipeline.from_single_file(
            str(path), dtype=dtype, local_files_only=not options.allow_download, **_NO_SAFETY
        )
        return _Loaded(pipe, "single-file", str(path))
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{path} is a folder but not a diffusers model (no model_index.json).")
        return _Loaded(_from_pretrained(str(path), dtype, local_only=True), "folder", str(path))
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        pipe = _from_pretrained(
            model,
            dtype,
            local_only=not options.allow_download,
            cache_dir=options.hf_cache_dir,
        )
        return _Loaded(pipe, "hub", model)
    raise ValueError(
        f"Unknown model {model!r}: use tiny, sd15-random, auto, a Hugging Face repo id "
        "(owner/name), a diffusers folder, or a .safetensors/.ckpt file."
    )


def _from_pretrained(
    name: str, dtype: torch.dtype, *, local_only: bool, cache_dir: Path | None = None
) -> StableDiffusionPipeline:
    try:
        pipe = StableDiffusionPipeline.from_pretrained(  # type: ignore[no-untyped-call]
            name, dtype=dtype, local_files_only=local_only, cache_dir=cache_dir, **_NO_SAFETY
        )
        return cast(StableDiffusionPipeline, pipe)
    except OSError as exc:
        if not local_only:
            raise
        raise OSError(
            f"{name} is not in the local Hugging Face cache and downloads are off; "
            "download it first (hf download ...) or allow downloads."
        ) from exc


def _load_auto(options: LoadOptions, dtype: torch.dtype) -> _Loaded:
    if sd15_cached(options.hf_cache_dir):
        try:
            pipe = _from_pretrained(
                SD15_REPO, dtype, local_only=True, cache_dir=options.hf_cache_dir
            )
            return _Loaded(pipe, "hub", SD15_REPO)
        except OSError as exc:  # an incomplete cache: try the hub
            log.warning("The cached %s could not be loaded: %s", SD15_REPO, exc)
    if hub_answers(options.hub_probe_timeout_s):
        pipe = _from_pretrained(SD15_REPO, dtype, local_only=False, cache_dir=options.hf_cache_dir)
        return _Loaded(pipe, "hub", SD15_REPO)
    raise ModelUnavailable(NO_WEIGHTS)


# --- device, dtype, speed-ups ---------------------------------------------------------------


def resolve_dtype(name: str | None, device: str) -> torch.dtype:
    """A dtype name (float16/fp16, bfloat16/bf16, float32/fp32), or the device's default."""
    if name is None:
        return torch.float16 if device.startswith("cuda") else torch.float32
    try:
        return _DTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown dtype {name!r}: use float16, bfloat16 or float32.") from None


def _place(pipe: Any, device: str, *, compile: bool) -> None:
    """Move to device; on CUDA, channels_last UNet and optionally torch.compile.

    `pipe` is Any: diffusers' type information knows none of a pipeline's attributes.

    Attention already uses PyTorch's scaled_dot_product_attention (diffusers' default
    AttnProcessor2_0), which picks flash / memory-efficient kernels on CUDA.
    """
    pipe.to(device)  # dtype was set at load time: casting later makes diffusers warn
    if device.startswith("cuda"):
        pipe.unet.to(memory_format=torch.channels_last)
    if compile:
        # In place, so the pipeline still sees a UNet2DConditionModel. Compiling takes about
        # a minute on first use; the first shape gets a static graph, and a second batch
        # size or image size triggers one more compile into a graph with dynamic sizes that
        # serves all later shapes (torch.compile's default, dynamic=None).
        pipe.unet.compile()


# --- the offline builders -------------------------------------------------------------------


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable character table, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def byte_level_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A CLIP tokenizer built offline: 2 special tokens + 256 bytes + 256 `</w>` forms, no merges.

    Ids: <|startoftext|> 0, <|endoftext|> 1 (also padding), then bytes. Any text encodes
    (one token per UTF-8 byte), so it fits any text encoder with a vocabulary of ≥ 514.
    """
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    chars = _bytes_to_unicode()
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build_tiny(seed: int = 0) -> StableDiffusionPipeline:
    """A tiny SD pipeline (~250 KB) with deterministic random weights, in float32 on CPU.

    The VAE downsamples by 8 (four blocks) like SD 1.5's, so a 512×512 request works on a
    64×64 latent and the tutorial's default size takes a second, not minutes.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(  # type: ignore[no-untyped-call]
            block_out_channels=(4, 8),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=8,
            attention_head_dim=2,
            norm_num_groups=2,
        )
        vae = AutoencoderKL(  # type: ignore[no-untyped-call]
            block_out_channels=(4, 8, 8, 8),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            norm_num_groups=2,
            sample_size=64,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=8,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                vocab_size=1000,
                max_position_embeddings=77,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
    return StableDiffusionPipeline(  # type: ignore[no-untyped-call]
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=byte_level_tokenizer(),
        unet=unet,
        scheduler=PNDMScheduler.from_config(_SD15_SCHEDULER),  # type: ignore[no-untyped-call]
        **_NO_SAFETY,
    )


def _load_tiny(data_dir: Path, dtype: torch.dtype) -> _Loaded:
    """Load the cached tiny model, building and saving it first if missing or outdated."""
    folder = data_dir / "models" / "tiny"
    marker = folder / "podium.json"
    if not _is_recipe(marker):
        tmp = folder.with_name(f"tiny.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        build_tiny().save_pretrained(tmp)  # type: ignore[attr-defined]
        (tmp / "podium.json").write_text(json.dumps({"recipe": _TINY_RECIPE}))
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("Built the tiny model in %s", folder)
    pipe = StableDiffusionPipeline.from_pretrained(  # type: ignore[no-untyped-call]
        folder, dtype=dtype, **_NO_SAFETY
    )
    return _Loaded(pipe, "tiny", str(folder), TINY_WARNING)


def _is_recipe(marker: Path) -> bool:
    try:
        recipe: object = json.loads(marker.read_text()).get("recipe")
        return recipe == _TINY_RECIPE
    except (OSError, ValueError):
        return False


def build_sd15_random(
    device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> StableDiffusionPipeline:
    """SD 1.5's architecture (UNet 860M, CLIP ViT-L/14 text tower, VAE) with random weights.

    The UNet and VAE are created on the meta device and filled on `device` with tiled
    noise (see _fill_random_): PyTorch's own init of 860M parameters takes ~12 s on CPU.
    """
    generator = torch.Generator().manual_seed(seed)
    unet = _random_module(
        lambda: UNet2DConditionModel(  # type: ignore[no-untyped-call]
            cross_attention_dim=768, attention_head_dim=8, sample_size=64
        ),
        device,
        dtype,
        generator,
    )
    vae = _random_module(
        lambda: AutoencoderKL(  # type: ignore[no-untyped-call]
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
            scaling_factor=0.18215,
        ),
        device,
        dtype,
        generator,
    )
    cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda), torch.device(device):
        torch.manual_seed(seed)
        # Typed as nn.Module for `.to`: transformers decorates PreTrainedModel.to with
        # functools.wraps, which mypy does not bind to the instance (dtype would be `self`).
        text_encoder: torch.nn.Module = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                vocab_size=49408,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                projection_dim=768,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        text_encoder = text_encoder.to(dtype)
    return StableDiffusionPipeline(  # type: ignore[no-untyped-call]
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=byte_level_tokenizer(),
        unet=unet,
        scheduler=PNDMScheduler.from_config(_SD15_SCHEDULER),  # type: ignore[no-untyped-call]
        **_NO_SAFETY,
    )


def _random_module(
    make: Callable[[], Any], device: str, dtype: torch.dtype, generator: torch.Generator
) -> torch.nn.Module:
    with torch.device("meta"):
        module: torch.nn.Module = make()
    if any(True for _ in module.buffers()):  # to_empty would leave buffers as garbage
        with torch.device(device):
            fresh: torch.nn.Module = make()
            return torch.nn.Module.to(fresh, dtype=dtype)
    # nn.Module.to, not ModelMixin.to: the latter warns about casting (nothing to keep here).
    module = torch.nn.Module.to(module, dtype=dtype).to_empty(device=device)
    _fill_random_(module, generator)
    return module


@torch.no_grad()
def _fill_random_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Weights ~ U(±1/√fan_in) like PyTorch's defaults, biases 0, norm scales 1.

    The noise comes from one pool of ~4M values, tiled from a varying offset: drawing
    fresh numbers for every parameter is what makes default init slow, and a benchmark
    only needs realistic magnitudes.
    """
    pool_size = 4_194_301  # prime, so that tiles do not line up with tensor rows
    first = next(module.parameters())
    pool = (torch.rand(pool_size, generator=generator) * 2 - 1).to(first.device, first.dtype)
    offset = 0
    for name, param in module.named_parameters():
        if param.ndim < 2:
            param.fill_(1.0 if name.endswith("weight") else 0.0)
            continue
        bound = 1.0 / math.sqrt(param[0].numel())
        flat = param.view(-1)
        offset = (offset + 7919) % pool_size
        start = 0
        while start < flat.numel():
            n = min(pool_size - offset, flat.numel() - start)
            torch.mul(pool[offset : offset + n], bound, out=flat[start : start + n])
            start += n
            offset = (offset + n) % pool_size
