"""The heavy-noise expert beside a model (core.model.experts, core.inference.heavy_expert): the model's result
below the ramp, the expert's above it, a per-pixel blend between, loaded only when a tile reaches the ramp."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.core.inference.engine import Denoiser
from denoiser.core.model.experts import HEAVY_RAMP, LevelRamp, heavy_expert_path, is_expert_file
from denoiser.core.noise.level import NoiseLevel
from tests.conftest import make_tiny_model


def save(path: Path, seed: int) -> Path:
    from denoiser.core.model.file import ModelCard, save_model

    model = make_tiny_model(seed)
    save_model(path, model, ModelCard(name=path.stem, config=model.config), half=False)
    return path


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path, Path]:
    """(a model with an expert beside it, the same model alone elsewhere, the expert alone elsewhere)."""
    (tmp_path / "pair").mkdir()
    (tmp_path / "alone").mkdir()
    model = save(tmp_path / "pair" / "m.safetensors", 0)
    save(heavy_expert_path(model), 1)
    base = shutil.copy(model, tmp_path / "alone" / "m.safetensors")
    expert = shutil.copy(heavy_expert_path(model), tmp_path / "alone" / "e.safetensors")
    return model, Path(base), Path(expert)


BELOW, ABOVE = max(1.0, HEAVY_RAMP.start - 10), HEAVY_RAMP.full + 10  # levels either side of the shipped ramp
QUARTER = HEAVY_RAMP.start + 0.25 * (HEAVY_RAMP.full - HEAVY_RAMP.start)  # a quarter of the way up it


def photo(seed: int = 0, side: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).random((side, side, 3), dtype=np.float32)


def test_the_ramp_gives_the_expert_nothing_below_its_start_all_above_its_end_and_a_line_between():
    ramp = LevelRamp(50, 70)
    np.testing.assert_allclose(ramp.weight(torch.tensor([0.0, 50.0, 55.0, 60.0, 70.0, 120.0])).numpy(),
                               [0, 0, 0.25, 0.5, 1, 1])
    for start, full in ((70, 50), (60, 60), (-1, 10), (10, 300)):
        with pytest.raises(ValueError, match="level ramp"):
            LevelRamp(start, full)
    assert HEAVY_RAMP.start < HEAVY_RAMP.full


def test_below_the_ramp_the_result_is_the_models_own_and_the_expert_is_never_loaded(pair):
    model, base, _ = pair
    engine = Denoiser.from_file(model, device="cpu")
    assert engine.heavy is not None and engine.heavy.path == heavy_expert_path(model)
    x = photo()
    np.testing.assert_array_equal(engine.denoise(x, BELOW), Denoiser.from_file(base, device="cpu").denoise(x, BELOW))
    assert not engine.heavy.loaded  # no tile reached the ramp: nothing loaded


def test_above_the_ramp_the_result_is_the_experts_and_between_a_blend(pair):
    model, base, expert = pair
    engine = Denoiser.from_file(model, device="cpu")
    alone, heavy = Denoiser.from_file(base, device="cpu"), Denoiser.from_file(expert, device="cpu")
    assert heavy.heavy is None  # an expert file elsewhere is an ordinary model
    x = torch.from_numpy(photo(1)).permute(2, 0, 1)[None]
    np.testing.assert_allclose(engine.denoise_tensor(x, ABOVE), heavy.denoise_tensor(x, ABOVE), atol=1e-6)
    assert engine.heavy is not None and engine.heavy.loaded
    a, b = alone.denoise_tensor(x, QUARTER), heavy.denoise_tensor(x, QUARTER)
    assert (a - b).abs().mean() > 1e-3  # the two networks differ, so the blend is not trivially either
    np.testing.assert_allclose(engine.denoise_tensor(x, QUARTER), 0.75 * a + 0.25 * b, atol=1e-5)


def test_with_autos_map_each_pixel_follows_its_own_level(pair):
    model, base, expert = pair
    engine = Denoiser.from_file(model, device="cpu")
    level_map = np.full((32, 32), BELOW, np.float32)
    level_map[:, 16:] = ABOVE  # the right half of the photo is far noisier
    level = NoiseLevel.auto(level_map)
    x = photo(2)
    out = engine.denoise(x, level)
    alone = Denoiser.from_file(base, device="cpu").denoise(x, level)
    heavy = Denoiser.from_file(expert, device="cpu").denoise(x, level)
    np.testing.assert_allclose(out[:, :32], alone[:, :32], atol=1e-6)
    np.testing.assert_allclose(out[:, 32:], heavy[:, 32:], atol=1e-6)
    assert np.abs(alone[:, 32:] - heavy[:, 32:]).mean() > 1e-3


def test_a_damaged_expert_leaves_the_model_alone_with_a_notice(pair):
    model, base, _ = pair
    heavy_expert_path(model).write_bytes(b"not a model")
    engine = Denoiser.from_file(model, device="cpu")
    x = photo(3)
    np.testing.assert_array_equal(engine.denoise(x, ABOVE), Denoiser.from_file(base, device="cpu").denoise(x, ABOVE))
    assert any("heavy-noise expert is off" in n and "m.heavy.safetensors" in n for n in engine.notices)
    engine.denoise(x, ABOVE)
    assert sum("heavy-noise expert" in n for n in engine.notices) == 1  # said once, not per tile


def test_an_expert_of_another_architecture_is_refused_before_its_weights_are_read(pair, monkeypatch):
    from denoiser.core.inference import heavy_expert
    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.network import ModelConfig, build_model
    from tests.conftest import TINY

    model, base, _ = pair
    wider = ModelConfig(**{**TINY, "widths": [w * 2 for w in TINY["widths"]]})
    save_model(heavy_expert_path(model), build_model(wider), ModelCard(name="wide", config=wider), half=False)
    loads: list[Path] = []
    monkeypatch.setattr(heavy_expert, "load_model", lambda path: loads.append(path))
    engine = Denoiser.from_file(model, device="cpu")
    x = photo(5)
    np.testing.assert_array_equal(engine.denoise(x, ABOVE), Denoiser.from_file(base, device="cpu").denoise(x, ABOVE))
    assert loads == [] and any("architecture differs" in n for n in engine.notices)


def test_int8_without_the_experts_own_build_runs_the_model_alone_and_says_why(pair):
    pytest.importorskip("onnxruntime")
    from denoiser.core.inference.quantized import build_int8, int8_path
    from tests.core.test_quantized import smooth_crops

    model, _, _ = pair
    build_int8(model, smooth_crops(4), int8_path(model))
    engine = Denoiser.from_file(model, device="cpu", precision="int8")
    x = photo(4)
    out = engine.denoise(x, ABOVE)
    engine.heavy = None
    np.testing.assert_array_equal(out, engine.denoise(x, ABOVE))
    assert any("heavy-noise expert is off" in n and "no INT8 build" in n for n in engine.notices)


def test_the_model_list_does_not_offer_an_expert_as_a_model_of_its_own(tiny_install):
    from denoiser.core.model.registry import list_models

    default = tiny_install / "res" / "models" / "default.safetensors"
    save(heavy_expert_path(default), 1)
    save(tiny_install / "res" / "models" / "other.heavy.safetensors", 2)  # no "other" model: an ordinary model
    assert is_expert_file(heavy_expert_path(default))
    assert [e.name for e in list_models()] == ["default", "other.heavy"]


def _tuned(name: str, base: str, seed: int = 2) -> Path:
    """A user model whose card says it was fine-tuned from `base` (as core.training.finetune writes it)."""
    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.registry import user_models_dir

    model = make_tiny_model(seed)
    path = user_models_dir() / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, model, ModelCard(name=name, config=model.config,
                                      training={"mode": "noisy", "base_model": base}), half=False)
    return path


def test_a_fine_tuned_model_runs_with_its_bases_expert(tiny_install):
    """Above the ramp a fine-tuned model's result is its base's expert's; the cluster's identity says so; a
    model with an expert of its own keeps that one."""
    from denoiser.core.batch.cluster_worker import expert_digest

    default = tiny_install / "res" / "models" / "default.safetensors"
    expert = save(heavy_expert_path(default), 1)
    tuned = _tuned("mine", "default")
    engine = Denoiser.from_name("mine", device="cpu")
    assert engine.heavy is not None and engine.heavy.path == expert
    x = torch.from_numpy(photo(2)).permute(2, 0, 1)[None]
    alone = Denoiser.from_file(expert, device="cpu")  # the expert file as an ordinary model
    assert alone.heavy is None
    np.testing.assert_allclose(engine.denoise_tensor(x, ABOVE), alone.denoise_tensor(x, ABOVE), atol=1e-6)
    below = Denoiser.from_file(tuned, device="cpu")
    assert below.heavy is not None
    below.heavy = None
    np.testing.assert_array_equal(engine.denoise(photo(3), BELOW), below.denoise(photo(3), BELOW))
    assert expert_digest("mine") == expert_digest("default") != "none"
    from denoiser.core.model.registry import find_model
    from denoiser.core.model.store import describe

    assert describe(find_model("mine"))["heavy_expert"] == str(expert)  # the model list and manager say so
    own = save(heavy_expert_path(tuned), 3)
    engine = Denoiser.from_name("mine", device="cpu")
    assert engine.heavy is not None and engine.heavy.path == own
    assert expert_digest("mine") != expert_digest("default")


def test_a_fine_tuned_model_whose_base_is_gone_or_has_no_expert_runs_alone(tiny_install):
    from denoiser.core.batch.cluster_worker import expert_digest

    default = tiny_install / "res" / "models" / "default.safetensors"
    _tuned("orphan", "deleted-model")
    _tuned("plain", "default")
    _tuned("chain", "plain", seed=4)  # fine-tuned from a fine-tuned model: the expert is found up the chain
    for name in ("orphan", "plain", "chain"):
        assert Denoiser.from_name(name, device="cpu").heavy is None
        assert expert_digest(name) == "none"
    expert = save(heavy_expert_path(default), 1)
    chained = Denoiser.from_name("chain", device="cpu").heavy
    assert chained is not None and chained.path == expert
    assert Denoiser.from_name("orphan", device="cpu").heavy is None
    # a card naming a file instead of an installed model is not followed, even where an expert lies beside it
    elsewhere = save(tiny_install / "elsewhere.safetensors", 5)
    save(heavy_expert_path(elsewhere), 6)
    for base in (str(elsewhere), "../elsewhere", "elsewhere.safetensors"):
        _tuned("pointer", base)
        assert Denoiser.from_name("pointer", device="cpu").heavy is None, base
