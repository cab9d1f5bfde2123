"""Fine-tuning on a tiny synthetic folder with a tiny base model (seeded, a few steps each)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from denoiser.core.checkpoint import ModelCard, load_model, save_model
from denoiser.core.model import ModelConfig, build_model
from denoiser.core.progress import Cancelled, CancelToken

TINY = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)


def make_photo(rng: np.random.Generator, side: int = 160, noise: float = 0.0) -> np.ndarray:
    """Smooth gradients and a few discs: clean-looking content; `noise` adds Gaussian std (0..255)."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    img = np.stack([xx, yy, 0.5 + 0.3 * np.sin(6 * xx + 3 * yy)], axis=-1) * 200 + 20
    for _ in range(4):
        cy, cx, r = rng.integers(0, side, 2).tolist() + [int(rng.integers(8, 30))]
        img[(yy * side - cy) ** 2 + (xx * side - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    img = img + rng.normal(0, noise, img.shape) if noise else img
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated user data folder and a tiny shipped 'default' model."""
    monkeypatch.setenv("DENOISER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DENOISER_RESOURCES", str(tmp_path / "res"))
    torch.manual_seed(0)
    model = build_model(TINY)
    with torch.no_grad():  # a non-trivial tail so the base is not an identity map
        model.tail.weight.normal_(0, 0.01)
    save_model(tmp_path / "res/models/default.safetensors", model, ModelCard(name="default", config=TINY))
    return tmp_path


def make_folder(root: Path, count: int = 6, noise: float = 0.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / f"photos-{seed}-{noise:g}"
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(make_photo(rng, noise=noise)).save(folder / f"img{i:02d}.png")
    return folder


def test_clean_mode_makes_a_loadable_named_model(env: Path) -> None:
    from denoiser.core.finetune import finetune
    from denoiser.core.registry import list_models

    folder = make_folder(env)
    res = finetune(folder, mode="clean", name="my clean", steps=3, minutes=0, sigma=20, threads=1)
    assert res.steps == 3 and res.mode == "clean"
    model, card = load_model(res.path)
    assert card.config == TINY
    assert card.training["mode"] == "clean" and card.training["base_model"] == "default"
    assert card.training["folder"] == str(folder.resolve()) and card.training["steps"] == 3
    assert card.training["images"] == 6
    assert card.metrics["val_before"] is not None and card.metrics["val_after"] is not None
    assert res.path.with_suffix(".json").is_file()
    entry = {e.name: e for e in list_models()}["my clean"]
    assert not entry.builtin and "clean" in entry.origin


def test_noisy_mode_self_supervised_run(env: Path) -> None:
    from denoiser.core.finetune import finetune

    folder = make_folder(env, noise=15)
    res = finetune(folder, mode="noisy", name="cam", steps=3, minutes=0, threads=1)
    _, card = load_model(res.path)
    assert card.training["mode"] == "noisy" and "Neighbor2Neighbor" in card.training["method"]
    assert card.metrics["validation"] == "val_neighbour_psnr_pd2"
    assert np.isfinite(card.metrics["val_after"])
    assert card.training["sigma_source"] == "folder estimate"


class CancelAfter(CancelToken):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.seen = steps, 0

    def report(self, fraction: float, message: str = "") -> None:
        self.seen += 1
        if self.seen >= self.steps:
            self.cancel()


@pytest.mark.parametrize("mode", ["clean", "noisy"])
def test_cancel_then_resume_continues_the_same_run(env: Path, mode: str) -> None:
    from denoiser.core.finetune import discard_run, finetune, has_unfinished_run, run_folder

    folder = make_folder(env, noise=10)
    kw = dict(mode=mode, steps=5, minutes=0, sigma=20 if mode == "clean" else None, threads=1)
    with pytest.raises(Cancelled):
        finetune(folder, name="run", progress=CancelAfter(2), **kw)
    assert has_unfinished_run("run")
    state = torch.load(run_folder("run") / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    resumed = finetune(folder, name="run", resume=True, threads=1)
    assert resumed.steps == 5 and not has_unfinished_run("run")
    straight = finetune(folder, name="straight", **kw)
    a, _ = load_model(resumed.path)
    b, _ = load_model(straight.path)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-6), k  # same steps, optimiser state and random draws
    discard_run("run")
    assert not run_folder("run").exists()


def test_resume_without_a_run_is_a_clear_error(env: Path) -> None:
    from denoiser.core.finetune import FinetuneError, finetune

    with pytest.raises(FinetuneError, match="no unfinished fine-tuning run named 'nothing'"):
        finetune(env, name="nothing", resume=True)


def test_unreadable_images_are_skipped_and_listed(env: Path) -> None:
    from denoiser.core.finetune import finetune

    folder = make_folder(env, count=4)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    good = (folder / "img00.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    res = finetune(folder, mode="clean", name="skips", steps=2, minutes=0, sigma=15, threads=1)
    assert str(folder / "broken.jpg") in res.skipped
    assert any("truncated.png" in k for k in res.skipped)
    assert load_model(res.path)[1].training["skipped_images"] >= 1


def test_empty_and_imageless_folders_error_clearly(env: Path) -> None:
    from denoiser.core.finetune import FinetuneError, finetune

    empty = env / "empty"
    empty.mkdir()
    with pytest.raises(FinetuneError, match="no images found"):
        finetune(empty, mode="clean", name="x", steps=1, minutes=0)
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(FinetuneError, match="no images found"):
        finetune(empty, mode="clean", name="x", steps=1, minutes=0)
    with pytest.raises(FinetuneError, match="not found"):
        finetune(env / "missing", mode="clean", name="x", steps=1, minutes=0)
    bad = env / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"garbage")
    with pytest.raises(FinetuneError, match="none of the 1 images could be read"):
        finetune(bad, mode="clean", name="x", steps=1, minutes=0)


def test_bad_names_and_clashes_are_refused(env: Path) -> None:
    from denoiser.core.finetune import finetune
    from denoiser.core.model_store import ModelStoreError

    folder = make_folder(env, count=2)
    for name in ("", "a/b", "..", "default"):
        with pytest.raises(ModelStoreError):
            finetune(folder, mode="clean", name=name, steps=1, minutes=0)
    finetune(folder, mode="clean", name="mine", steps=1, minutes=0, threads=1)
    with pytest.raises(ModelStoreError, match="already exists"):
        finetune(folder, mode="clean", name="mine", steps=1, minutes=0)


def test_mode_suggestion_follows_the_noise_level(env: Path) -> None:
    from denoiser.core.finetune import finetune, suggest_mode

    noisy = suggest_mode(make_folder(env, count=3, noise=30, seed=1))
    clean = suggest_mode(make_folder(env, count=3, noise=0, seed=2))
    assert noisy.mode == "noisy" and noisy.sigma > 20
    assert clean.mode == "clean" and clean.sigma < 3
    res = finetune(env / "photos-1-30", mode="auto", name="auto", steps=1, minutes=0, threads=1)
    assert res.mode == "noisy"


def test_sigma_from_a_sample_noisy_photo(env: Path) -> None:
    from denoiser.core.finetune import FinetuneError, finetune

    folder = make_folder(env, count=2)
    sample = env / "sample.png"
    Image.fromarray(make_photo(np.random.default_rng(5), side=256, noise=20)).save(sample)
    res = finetune(folder, mode="clean", name="s", steps=1, minutes=0, noisy_sample=sample, threads=1)
    card = load_model(res.path)[1]
    assert 12 < card.training["sigma"] < 28 and card.training["sigma_source"] == str(sample)
    with pytest.raises(FinetuneError, match="sample noisy photo"):
        finetune(folder, mode="clean", name="t", steps=1, minutes=0, noisy_sample=env / "nope.png")


def test_noisy_mode_can_learn_a_chosen_strength(env: Path) -> None:
    from denoiser.core.finetune import finetune

    folder = make_folder(env, count=3, noise=12)
    res = finetune(folder, mode="noisy", name="strong", steps=2, minutes=0, sigma=10, threads=1)
    card = load_model(res.path)[1]
    assert card.training["target_sigma"] == 10 and "at the strength target" in card.training["method"]
    # the level fed to the model stays the engine's own estimate of the folder (white noise of std 12)
    assert abs(card.training["sigma"] - 12) < 3 and card.training["sigma_source"] == "folder estimate"
