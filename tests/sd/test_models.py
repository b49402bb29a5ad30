"""Model loading (podium.sd.models) and the scheduler table (podium.sd.schedulers)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.sd

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from podium.sd import models  # noqa: E402
from podium.sd.schedulers import SCHEDULERS, make_scheduler  # noqa: E402
from podium.sd.schema import SCHEDULER_NAMES  # noqa: E402


def test_byte_level_tokenizer_encodes_any_text() -> None:
    tok = models.byte_level_tokenizer()
    assert len(tok) == 514
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 1)
    ids = tok(["a cat", "ü 🐕"], padding="max_length", max_length=77).input_ids
    assert all(len(row) == 77 for row in ids)
    expected = ["<|startoftext|>", "a</w>", "c", "a", "t</w>", "<|endoftext|>"]
    assert ids[0][:6] == tok.convert_tokens_to_ids(expected)
    assert max(max(row) for row in ids) < 514


def test_tiny_is_cached_on_disk_and_rebuilt_if_missing(tmp_path: Path) -> None:
    options = models.LoadOptions(data_dir=tmp_path, device="cpu")
    pipe, info = models.load_pipeline("tiny", options)
    folder = tmp_path / "models" / "tiny"
    assert (folder / "model_index.json").is_file()
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 1_000_000
    assert info == {
        "model": "tiny",
        "kind": "tiny",
        "source": str(folder),
        "warning": models.TINY_WARNING,
        "device": "cpu",
        "dtype": "float32",
    }
    assert pipe.safety_checker is None and pipe.feature_extractor is None
    weights = {k: v.clone() for k, v in pipe.unet.state_dict().items()}

    (folder / "model_index.json").unlink()  # a broken cache is rebuilt, identically
    (folder / "podium.json").unlink()
    again, _ = models.load_pipeline("tiny", options)
    assert (folder / "model_index.json").is_file()
    for k, v in again.unet.state_dict().items():
        assert torch.equal(v, weights[k]), k


def test_tiny_weights_are_deterministic() -> None:
    a, b = models.build_tiny(), models.build_tiny()
    for part in ("unet", "vae", "text_encoder"):
        wa, wb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), (part, k)


def test_auto_without_weights_refuses_never_serves_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[float] = []
    monkeypatch.setattr(models, "hub_answers", lambda timeout: probes.append(timeout) or False)
    options = models.LoadOptions(data_dir=tmp_path, device="cpu", hf_cache_dir=tmp_path / "hf")
    with pytest.raises(models.ModelUnavailable) as refused:
        models.load_pipeline("auto", options)
    assert probes == [2.0]
    assert "found no Stable Diffusion 1.5 weights" in str(refused.value)
    assert "hf download" in str(refused.value) and "'tiny' by name" in str(refused.value)


def test_hub_probe_respects_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from podium.sd.weights import hub_answers

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_answers(0.1) is False


def test_repo_id_not_in_cache_says_how_to_fix(tmp_path: Path) -> None:
    options = models.LoadOptions(data_dir=tmp_path, device="cpu", hf_cache_dir=tmp_path / "hf")
    with pytest.raises(OSError, match="not in the local Hugging Face cache and downloads are off"):
        models.load_pipeline("someone/some-model", options)


def test_local_folder(tmp_path: Path, sd_data_dir: Path) -> None:
    models.load_pipeline("tiny", models.LoadOptions(data_dir=sd_data_dir, device="cpu"))
    folder = sd_data_dir / "models" / "tiny"
    pipe, info = models.load_pipeline(str(folder), models.LoadOptions(data_dir=tmp_path))
    assert info["kind"] == "folder" and info["warning"] is None
    assert pipe.unet.config.block_out_channels == [4, 8]


def test_unknown_model_and_folder(tmp_path: Path) -> None:
    options = models.LoadOptions(data_dir=tmp_path, device="cpu")
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        models.load_pipeline("nope", options)
    with pytest.raises(ValueError, match=r"no model_index\.json"):
        models.load_pipeline(str(tmp_path), options)
    with pytest.raises(ValueError, match="Unknown dtype 'int8'"):
        models.load_pipeline("tiny", models.LoadOptions(data_dir=tmp_path, dtype="int8"))


def test_scheduler_tables_agree() -> None:
    assert set(SCHEDULERS) == set(SCHEDULER_NAMES.values())


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_make_scheduler_gives_fresh_objects(name: str) -> None:
    base = models.build_tiny().scheduler
    a, b = make_scheduler(name, base.config), make_scheduler(name, base.config)
    cls, overrides = SCHEDULERS[name]
    assert type(a) is cls and a is not b
    for key, value in overrides.items():
        assert a.config[key] == value
    a.set_timesteps(5)
    b.set_timesteps(7)
    assert len(a.timesteps) != len(b.timesteps)
