"""Fine-tuning on a tiny synthetic folder with a tiny base model (seeded, a few steps each)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from denoiser.core.model.file import ModelCard, load_model, save_model
from denoiser.core.model.network import ModelConfig, build_model
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
    from denoiser.core.model.registry import list_models
    from denoiser.core.training.finetune import finetune

    folder = make_folder(env)
    res = finetune(folder, mode="clean", name="my clean", steps=3, minutes=0, sigma=20, threads=1)
    assert res.steps == 3 and res.mode == "clean"
    model, card = load_model(res.path)
    assert card.config == TINY
    assert card.training["mode"] == "clean" and card.training["base_model"] == "default"
    assert card.training["folder"] == str(folder.resolve()) and card.training["steps"] == 3
    assert card.training["images"] == 6
    assert all(10 < card.metrics[k] < 60 for k in ("val_before", "val_after"))  # PSNRs in dB, not None or NaN
    base, _ = load_model(env / "res/models/default.safetensors")
    assert _moved(base, model) > 0  # the steps trained the weights
    assert res.path.with_suffix(".json").is_file()
    entry = {e.name: e for e in list_models()}["my clean"]
    assert not entry.builtin and "clean" in entry.origin


@pytest.mark.slow  # a real self-supervised fine-tune
def test_noisy_mode_self_supervised_run(env: Path) -> None:
    from denoiser.core.training.finetune import finetune

    folder = make_folder(env, noise=15)
    res = finetune(folder, mode="noisy", name="cam", steps=3, minutes=0, threads=1)
    _, card = load_model(res.path)
    assert card.training["mode"] == "noisy" and "self-distillation" in card.training["method"]
    assert card.metrics["validation"] == "val_matched_noise_psnr"
    assert 10 < card.metrics["val_after"] < 60
    # the level the model is fed is the folder's measured noise (Gaussian, std 15), not a default
    assert card.training["sigma_source"] == "folder estimate" and 12 < card.training["sigma"] < 18
    # the strength calibration looked at the folder's own photos (six at most) and is recorded with the model
    assert 1 <= len(card.training["calibration"]) <= 6
    model, _ = load_model(res.path)
    base, _ = load_model(env / "res/models/default.safetensors")
    assert _moved(base, model) > 0


def _moved(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest change of any weight between two models of one architecture."""
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return max(float((va - vb).abs().max()) for va, vb in pairs)


class CancelAfter(CancelToken):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.seen = steps, 0

    def report(self, fraction: float, message: str = "") -> None:
        if not message.startswith("step "):
            return  # set-up messages (reading, the noisy-mode noise measurement), not training steps
        self.seen += 1
        if self.seen >= self.steps:
            self.cancel()


@pytest.mark.slow  # three real fine-tunes
@pytest.mark.parametrize("mode", ["clean", "noisy"])
def test_cancel_then_resume_continues_the_same_run(env: Path, mode: str) -> None:
    from denoiser.core.training.finetune import discard_run, finetune, has_unfinished_run, run_folder

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
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k  # same steps, optimiser state and random draws
    discard_run("run")
    assert not run_folder("run").exists()


def test_a_damaged_base_noise_config_is_refused_not_replaced(env: Path) -> None:
    from denoiser.core.training.finetune import FinetuneError, finetune

    model, card = load_model(env / "res/models/default.safetensors")
    card.training = {"config": {"noise": {"sigma_min": 90.0, "sigma_max": 10.0}}}
    save_model(env / "odd.safetensors", model, card)
    with pytest.raises(FinetuneError, match="'default' has a damaged training noise config .*sigma_min <= sigma_max"):
        finetune(make_folder(env), mode="clean", name="x", steps=1, minutes=0, sigma=15,
                 base_model=str(env / "odd.safetensors"), threads=1)


def test_the_run_settings_are_typed_and_a_damaged_file_is_refused_on_resume(env: Path) -> None:
    import json

    from denoiser.core.training.finetune import FinetuneError, finetune, run_folder
    from denoiser.core.training.finetune_run import FinetuneSpec
    from denoiser.core.training.trainer import TrainConfig

    folder = make_folder(env)
    with pytest.raises(Cancelled):
        finetune(folder, mode="clean", name="typed", steps=4, minutes=0, sigma=20, threads=1,
                 progress=CancelAfter(1))
    path = run_folder("typed") / "finetune.json"
    spec = FinetuneSpec.from_dict(json.loads(path.read_text()))
    assert isinstance(spec.config, TrainConfig) and spec.config.noise.sigma_min == pytest.approx(12.0)
    assert (spec.mode, spec.sigma, spec.sigma_source) == ("clean", 20.0, "user")
    path.write_text(json.dumps(spec.to_dict() | {"sigmaa": 3}))
    with pytest.raises(FinetuneError, match="cannot read the run settings .*unknown fine-tuning run settings "
                                            "keys: \\['sigmaa'\\]"):
        finetune(folder, name="typed", resume=True, threads=1)


def test_resume_without_a_run_is_a_clear_error(env: Path) -> None:
    from denoiser.core.training.finetune import FinetuneError, finetune

    with pytest.raises(FinetuneError, match="no unfinished fine-tuning run named 'nothing'"):
        finetune(env, name="nothing", resume=True)


def test_unreadable_images_are_skipped_and_listed(env: Path) -> None:
    from denoiser.core.training.finetune import finetune

    folder = make_folder(env, count=4)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    good = (folder / "img00.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    res = finetune(folder, mode="clean", name="skips", steps=2, minutes=0, sigma=15, threads=1)
    assert str(folder / "broken.jpg") in res.skipped
    assert any("truncated.png" in k for k in res.skipped)
    assert load_model(res.path)[1].training["skipped_images"] >= 1


def test_prescan_refuses_by_the_megapixel_limit_not_by_pillows_global(env: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.core.training.finetune as ft
    from denoiser.core.model.file import ModelFileError

    folder = make_folder(env, count=2)
    files = sorted(folder.glob("*.png"))
    assert ft.prescan(files) == {}
    assert Image.MAX_IMAGE_PIXELS is None  # set once when the decoders load; no decode changes it
    monkeypatch.setattr(ft, "TRAIN_MAX_MEGAPIXELS", 0.02)  # the 160 x 160 test photos are 0.0256 MP
    bad = ft.prescan(files)
    assert set(bad) == {str(f) for f in files}
    assert all("exceeds the limit of 0.02 MP" in reason for reason in bad.values())
    with pytest.raises(ModelFileError, match="no model named 'nosuch'"):  # checked before the folder is scanned
        ft.finetune(folder, mode="clean", name="big", steps=1, minutes=0, sigma=15, base_model="nosuch", threads=1)


def test_empty_and_imageless_folders_error_clearly(env: Path) -> None:
    from denoiser.core.training.finetune import FinetuneError, finetune

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
    from denoiser.core.model.store import ModelStoreError
    from denoiser.core.training.finetune import finetune

    folder = make_folder(env, count=2)
    for name in ("", "a/b", "..", "default"):
        with pytest.raises(ModelStoreError):
            finetune(folder, mode="clean", name=name, steps=1, minutes=0)
    finetune(folder, mode="clean", name="mine", steps=1, minutes=0, threads=1)
    with pytest.raises(ModelStoreError, match="already exists"):
        finetune(folder, mode="clean", name="mine", steps=1, minutes=0)


@pytest.mark.slow  # a real fine-tune in auto mode
def test_mode_suggestion_follows_the_noise_level(env: Path) -> None:
    from denoiser.core.training.finetune import finetune, suggest_mode

    noisy = suggest_mode(make_folder(env, count=3, noise=30, seed=1))
    clean = suggest_mode(make_folder(env, count=3, noise=0, seed=2))
    assert noisy.mode == "noisy" and noisy.sigma > 20
    assert clean.mode == "clean" and clean.sigma < 3
    res = finetune(env / "photos-1-30", mode="auto", name="auto", steps=1, minutes=0, threads=1)
    assert res.mode == "noisy"


def test_sigma_from_a_sample_noisy_photo(env: Path) -> None:
    from denoiser.core.training.finetune import FinetuneError, finetune

    folder = make_folder(env, count=2)
    sample = env / "sample.png"
    Image.fromarray(make_photo(np.random.default_rng(5), side=256, noise=20)).save(sample)
    res = finetune(folder, mode="clean", name="s", steps=1, minutes=0, noisy_sample=sample, threads=1)
    card = load_model(res.path)[1]
    assert 12 < card.training["sigma"] < 28 and card.training["sigma_source"] == str(sample)
    with pytest.raises(FinetuneError, match="sample noisy photo"):
        finetune(folder, mode="clean", name="t", steps=1, minutes=0, noisy_sample=env / "nope.png")


@pytest.mark.slow  # a real self-supervised fine-tune
def test_noisy_mode_can_learn_a_chosen_strength(env: Path) -> None:
    from denoiser.core.training.finetune import finetune

    folder = make_folder(env, count=3, noise=12)
    res = finetune(folder, mode="noisy", name="strong", steps=2, minutes=0, sigma=10, threads=1)
    card = load_model(res.path)[1]
    assert card.training["target_sigma"] == 10 and "at the strength target" in card.training["method"]
    # the level fed to the model stays the engine's own estimate of the folder (white noise of std 12)
    assert abs(card.training["sigma"] - 12) < 3 and card.training["sigma_source"] == "folder estimate"


def test_measured_noise_model_reproduces_the_noise_it_saw() -> None:
    """A residual of correlated noise gives back its std and correlation; samples match both."""
    import torch

    from denoiser.core import noise as N
    from denoiser.core.training.calibration import NoiseModel, measure_noise

    gen = torch.Generator().manual_seed(0)
    clean = torch.full((1, 3, 256, 256), 0.5)
    noisy = N.correlated(clean, torch.tensor([6.0]), torch.tensor([1.0]), torch.tensor([0.3]), gen)
    img, ref = noisy[0].permute(1, 2, 0).numpy(), clean[0].permute(1, 2, 0).numpy()
    model = measure_noise(img, ref)
    assert abs(model.std - 6.0) < 0.6
    again = NoiseModel.from_dict(model.to_dict())
    sample = again.sample((1, 3, 128, 128), torch.Generator().manual_seed(1))[0] * 255
    assert abs(float(sample.std()) - 6.0) < 0.6
    def lag1(n: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([n[0, :, :-1].flatten(), n[0, :, 1:].flatten()]))[0, 1])

    real = (noisy - clean)[0] * 255
    assert abs(lag1(sample) - lag1(real)) < 0.15 and lag1(real) > 0.4  # correlated, and reproduced as such
    white = NoiseModel(np.ones((16, 16)), np.eye(3) * (6 / 255) ** 2).sample((1, 3, 128, 128), gen)[0] * 255
    assert abs(lag1(white)) < 0.05
    with pytest.raises(ValueError):
        NoiseModel.from_dict({"spectrum": [1, 2], "cov": [[1]]})


def test_strength_calibration_finds_the_gain_that_restores_the_pairs() -> None:
    """With a stand-in 'model' whose strength acts like a blur, the calibration picks a gain that best
    undoes synthetic noise of the measured kind - and a stronger noise needs no smaller gain."""
    import cv2

    from denoiser.core.training.calibration import calibrate_strength

    rng = np.random.default_rng(0)
    clean = make_photo(rng, side=192).astype(np.float32) / 255

    def blur(img, s):  # strength s (0..255 units) -> Gaussian blur of std s/4 px
        return cv2.GaussianBlur(img, (0, 0), max(s / 4, 0.05))

    def photo(std):
        return (clean + rng.normal(0, std / 255, clean.shape)).astype(np.float32)

    gain_low, model_low, details = calibrate_strength(blur, [photo(4)], lambda img: 4.0)
    gain_high, model_high, _ = calibrate_strength(blur, [photo(12)], lambda img: 4.0)
    assert details[0]["level"] == 4.0 and details[0]["gain"] == gain_low
    assert model_high.std > model_low.std
    assert gain_high > gain_low
    # a folder's gain is the median of its photos' gains: the majority wins wherever the odd photo stands
    # (neither the mean, the first nor the last photo's gain gives this for both folders)
    for odd, rest, expected in ((4, 12, gain_high), (12, 4, gain_low)):
        gain, model, details = calibrate_strength(blur, [photo(odd), photo(rest), photo(rest)], lambda img: 4.0)
        assert [d["gain"] for d in details] == [gain_low if odd == 4 else gain_high] + [expected] * 2
        assert gain == expected and model_low.std < model.std < model_high.std
