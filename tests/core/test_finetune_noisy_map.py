"""Noisy-mode fine-tuning works at Auto's noise map, as the app runs the model (tiny synthetic data, one thread)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.core.test_finetune import env, make_folder  # noqa: F401  (the tiny shipped model and photos)


def _two_level_map(side: int, dark: float, bright: float) -> np.ndarray:
    """A half-resolution map (0..255 units): `dark` on the left half, `bright` on the right."""
    m = np.full((side // 2, side // 2), dark, np.float32)
    m[:, side // 4:] = bright
    return m


def test_a_relative_noise_model_follows_the_level_map() -> None:
    """Noise 1.5x a level map that triples from left to right: measured relative to the map, the model
    gives the ratio back, and its samples at that map are three times stronger on the right, as the photo's."""
    from denoiser.core import noise as N
    from denoiser.core.training.calibration import NoiseModel, full_map, measure_noise

    side = 256
    level = _two_level_map(side, 4.0, 12.0)
    gen = torch.Generator().manual_seed(0)
    unit = N.correlated(torch.zeros(1, 3, side, side), torch.tensor([255.0]), torch.tensor([1.0]),
                        torch.tensor([0.3]), gen)[0].permute(1, 2, 0).numpy()
    unit = unit / unit.std()
    clean = np.full((side, side, 3), 0.5, np.float32)
    noisy = clean + 1.5 * unit * full_map(level, (side, side))[..., None] / 255
    model = measure_noise(noisy, clean, level=level)
    assert model.relative and abs(model.std - 1.5) < 0.2
    absolute = measure_noise(noisy, clean)
    assert not absolute.relative
    again = NoiseModel.from_dict(model.to_dict())
    assert again.relative
    at = torch.from_numpy(full_map(level, (side, side)))[None, None]
    sample = again.sample((1, 3, side, side), torch.Generator().manual_seed(1), level=at)[0] * 255
    left, right = float(sample[:, :, :side // 2].std()), float(sample[:, :, side // 2:].std())
    assert abs(left - 6.0) < 1.0 and abs(right - 18.0) < 2.5
    flat = absolute.sample((1, 3, side, side), torch.Generator().manual_seed(1))[0]  # one std everywhere
    assert float(flat[:, :, side // 2:].std()) / float(flat[:, :, :side // 2].std()) < 1.3
    with pytest.raises(ValueError, match="level map"):
        again.sample((1, 3, 32, 32), gen)


def test_calibration_on_a_map_scales_the_map() -> None:
    """Given Auto's map, the calibration drives the model with gain x that map (never one number) and
    measures the noise relative to it."""
    from denoiser.core.training.calibration import CALIBRATION_GAINS, PSEUDO_CLEAN_GAIN, calibrate_strength

    rng = np.random.default_rng(0)
    side = 128
    level = _two_level_map(side, 3.0, 9.0)
    img = (0.5 + rng.normal(0, 1, (side, side, 3)) * 6 / 255).astype(np.float32)
    seen: list[np.ndarray] = []

    def denoise(x: np.ndarray, strength: np.ndarray) -> np.ndarray:
        seen.append(np.asarray(strength))
        return np.full_like(x, 0.5)

    gain, model, details = calibrate_strength(denoise, [img], lambda _: level)
    assert model.relative and details[0]["level"] == pytest.approx(6.0)
    assert all(s.shape == level.shape for s in seen)
    ratios = [float(s[0, -1] / s[0, 0]) for s in seen]
    assert ratios == pytest.approx([3.0] * len(seen))  # the map's shape, scaled: not a constant strength
    assert [float(s[0, 0]) / 3.0 for s in seen] == pytest.approx([PSEUDO_CLEAN_GAIN, *CALIBRATION_GAINS])
    assert gain in CALIBRATION_GAINS


@pytest.mark.slow  # a real self-supervised fine-tune (two steps)
def test_noisy_training_feeds_the_model_each_crops_own_map(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The level the fine-tuned model learns at is the map Auto measures on each crop (here a stand-in that
    follows brightness), jittered by one factor per crop, never the folder's single number."""
    import denoiser.core.training.finetune_modes as modes
    from denoiser.core.model.network import UNetDenoiser
    from denoiser.core.training.finetune import finetune

    def brightness_map(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        grey = img.mean(axis=2)[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return (2.0 + 30.0 * grey).astype(np.float32)

    monkeypatch.setattr(modes, "auto_map", brightness_map)
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    forward = UNetDenoiser.forward

    def spy(self: UNetDenoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.training:
            calls.append((x.detach().clone(), sigma.detach().clone()))
        return forward(self, x, sigma)

    monkeypatch.setattr(UNetDenoiser, "forward", spy)
    batches: list[tuple[torch.Tensor, torch.Tensor]] = []  # the real crops of each step, with the level they get
    pseudo_clean = modes.NoisyFinetuneTrainer._pseudo_clean

    def recording(self: modes.NoisyFinetuneTrainer, noisy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        batches.append((noisy.detach().clone(), level.detach().clone()))
        return pseudo_clean(self, noisy, level)

    monkeypatch.setattr(modes.NoisyFinetuneTrainer, "_pseudo_clean", recording)
    folder = make_folder(env, count=4, noise=8)
    finetune(folder, mode="noisy", name="mapped", steps=2, minutes=0, threads=1)
    # the real crops of a training step: those whose level the model then trains at (validation has its own)
    trained = [(x, level) for x, level in batches if any(torch.equal(level, s) for _, s in calls)]
    assert calls and trained
    x, sigma = trained[0]
    assert sigma.dim() == 4 and sigma.shape[-2:] == (x.shape[-2] // 2, x.shape[-1] // 2)
    expected = torch.from_numpy(np.stack([brightness_map(c.permute(1, 2, 0).numpy()) for c in x]))[:, None]
    ratio = sigma / expected
    per_crop = ratio.flatten(1)
    assert torch.allclose(per_crop, per_crop[:, :1].expand_as(per_crop), rtol=1e-4)  # one factor per crop
    assert float(per_crop.min()) > 0.77 and float(per_crop.max()) < 1.29  # the level jitter, no more
    assert float(expected.flatten(1).std(dim=1).max()) > 0.5  # the stand-in map does vary within a crop


@pytest.mark.slow  # a real self-supervised fine-tune (one step)
def test_the_target_stays_at_auto_and_the_synthetic_noise_is_scaled_by_the_gain(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A calibrated gain of 2 halves the synthetic noise (std 6 at a map of 6 becomes 3); the base that makes
    the target runs at the map the model trains at, not at twice it."""
    import denoiser.core.training.finetune as ft
    import denoiser.core.training.finetune_modes as modes
    from denoiser.core.model.network import UNetDenoiser
    from denoiser.core.training.calibration import NoiseModel

    monkeypatch.setattr(modes, "auto_map", lambda img: np.full(((img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2),
                                                              6.0, np.float32))
    monkeypatch.setattr(modes.NoisyFinetuneTrainer, "noise_source", "synthetic")
    white = NoiseModel(np.ones((16, 16)), np.eye(3), relative=True)  # noise std = the map, per channel
    monkeypatch.setattr(ft, "calibrate_folder", lambda files, base, progress=None: {
        "strength_gain": 2.0, "noise_model": white.to_dict(), "calibration": []})
    calls: list[tuple[bool, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    forward = UNetDenoiser.forward

    def spy(self: UNetDenoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        out = forward(self, x, sigma)
        calls.append((self.training, x.detach().clone(), sigma.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(UNetDenoiser, "forward", spy)
    ft.finetune(make_folder(env, count=3, noise=6), mode="noisy", name="scaled", steps=1, minutes=0, threads=1)
    first = next(i for i, c in enumerate(calls) if c[0])
    _, _, base_sigma, target = calls[first - 1]  # the frozen base making the target, just before the step
    _, fresh, level, _ = calls[first]  # the step's one forward (the matching term at weight 0 is skipped)
    assert torch.allclose(base_sigma, level)  # the target is the base at the model's own level (Auto's map)
    noise_std = float((fresh - target).std()) * 255
    assert abs(noise_std - 3.0) < 0.4  # 6 / the gain of 2
