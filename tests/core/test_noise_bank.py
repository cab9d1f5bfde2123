"""The bank of real noise that noisy-mode fine-tuning cuts from the user's photos (tiny synthetic images)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from denoiser.core.training.noise_bank import OPS, NoiseBank, symmetries
from tests.core.test_finetune import env, make_folder  # noqa: F401  (the tiny shipped model and photos)

SIDE = 32


def _constant_map(level: float):
    return lambda img: np.full(((img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2), level, np.float32)


def _blur(img: np.ndarray, _level: np.ndarray) -> np.ndarray:
    """A stand-in denoiser that also removes detail (so a textured area's residual holds detail)."""
    return cv2.GaussianBlur(img, (0, 0), 2.0)


def _half_textured(rng: np.random.Generator, side: int = 256, sigma: float = 8.0) -> np.ndarray:
    """Flat grey on the left half, fine high-contrast stripes on the right, white noise of std `sigma` (0..255)."""
    img = np.full((side, side, 3), 0.5, np.float32)
    stripes = (np.arange(side // 2) // 8 % 2).astype(np.float32) * 0.6 + 0.2
    img[:, side // 2:] = stripes[None, :, None]
    return (img + rng.normal(0, sigma / 255, img.shape)).astype(np.float32)


def test_the_bank_holds_noise_from_flat_areas_only() -> None:
    """Crops come from the flat half only, and hold the noise (relative std ~1 at a map equal to its std), not the
    stripes the blur removed on the other half."""
    rng = np.random.default_rng(0)
    photos = [_half_textured(rng) for _ in range(3)]
    bank = NoiseBank.build(photos, _blur, _constant_map(8.0), capacity=40, side=SIDE)
    assert len(bank.crops) > 0
    assert all(x + SIDE <= 128 for _, _, x in bank.sources)  # never a crop reaching into the stripes
    assert 0.8 < bank.std < 1.1  # the blur's residual keeps most of white noise; stripes would give ~10
    assert float(bank.crops.mean(dim=(2, 3)).abs().max()) < 1e-5  # each crop's colour offset removed


def test_the_bank_is_bounded_and_spread_over_the_photos() -> None:
    rng = np.random.default_rng(1)
    photos = [(0.5 + rng.normal(0, 4 / 255, (160, 160, 3))).astype(np.float32) for _ in range(6)]
    bank = NoiseBank.build(photos, _blur, _constant_map(4.0), capacity=12, side=SIDE)
    assert len(bank.crops) <= 12 and bank.nbytes <= 12 * 3 * SIDE * SIDE * 4
    assert len({photo for photo, _, _ in bank.sources}) == 6  # every photo gives its share
    for photo in range(6):  # crops of one photo never overlap (the same noise twice)
        cut = [(y, x) for p, y, x in bank.sources if p == photo]
        assert all(abs(a[0] - b[0]) >= SIDE or abs(a[1] - b[1]) >= SIDE
                   for i, a in enumerate(cut) for b in cut[i + 1:])
    with pytest.raises(ValueError, match="at least 64 px"):
        NoiseBank.build([photos[0][:40, :40]], _blur, _constant_map(4.0), side=64)


def test_drawn_noise_follows_the_level_map() -> None:
    """Noise relative to the map where it was cut, drawn at a map that is 4 on the left and 12 on the right:
    three times stronger on the right, each side at its map times the bank's relative std."""
    rng = np.random.default_rng(2)
    photos = [(0.5 + rng.normal(0, 6 / 255, (192, 192, 3))).astype(np.float32) for _ in range(4)]
    bank = NoiseBank.build(photos, lambda img, level: np.full_like(img, 0.5), _constant_map(6.0), side=SIDE)
    assert abs(bank.std - 1.0) < 0.05  # the noise's own std over the map it was read at
    side = 128
    level = torch.full((2, 1, side, side), 4.0)
    level[..., side // 2:] = 12.0
    noise = bank.sample((2, 3, side, side), torch.Generator().manual_seed(0), level) * 255
    left, right = float(noise[..., :side // 2].std()), float(noise[..., side // 2:].std())
    assert abs(left - 4.0 * bank.std) < 0.4 and abs(right - 12.0 * bank.std) < 1.2
    with pytest.raises(ValueError, match="3-channel"):
        bank.sample((1, 1, 32, 32), torch.Generator(), level[:1, :, :32, :32])


def _correlated_along_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, S, S, 3) noise correlated with its left neighbour only (as a row-wise camera artefact)."""
    z = rng.normal(0, 1, (count, SIDE, SIDE + 1, 3))
    return (z[:, :, 1:] + z[:, :, :-1]).astype(np.float32)


def test_flips_and_turns_are_allowed_only_where_they_keep_the_correlation() -> None:
    rng = np.random.default_rng(3)
    assert set(symmetries(rng.normal(0, 1, (64, SIDE, SIDE, 3)).astype(np.float32))) == set(OPS)
    rows = _correlated_along_rows(rng, 64)
    allowed = symmetries(rows)
    assert (2, False) in allowed and (0, True) in allowed  # a half turn and a mirror keep it
    assert (1, False) not in allowed and (3, False) not in allowed  # a quarter turn makes it column-wise
    bank = NoiseBank(torch.from_numpy(rows).permute(0, 3, 1, 2).contiguous(), [], allowed)
    drawn = bank.sample((4, 3, 96, 96), torch.Generator().manual_seed(0), torch.full((4, 1, 96, 96), 255.0))
    along = float((drawn[..., :, 1:] * drawn[..., :, :-1]).mean() / drawn.var())
    across = float((drawn[..., 1:, :] * drawn[..., :-1, :]).mean() / drawn.var())
    assert along > 0.4 and abs(across) < 0.1  # tiles keep the camera's direction


@pytest.mark.slow  # a real self-supervised fine-tune (one step)
def test_real_noise_pairs_add_the_banks_noise_at_the_map_unscaled_by_the_gain(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """noise_source "real": the restoring term's input is the target plus the bank's noise at the crop's map
    (std = map x the bank's relative std), not divided by the synthetic noise's gain; the card says so."""
    import denoiser.core.training.finetune as ft
    import denoiser.core.training.finetune_modes as modes
    from denoiser.core.model.file import load_model
    from denoiser.core.model.network import UNetDenoiser
    from denoiser.core.training.calibration import NoiseModel

    monkeypatch.setattr(modes, "auto_map", _constant_map(6.0))
    monkeypatch.setattr(modes.NoisyFinetuneTrainer, "noise_source", "real")
    white = NoiseModel(np.ones((16, 16)), np.eye(3), relative=True)
    monkeypatch.setattr(ft, "calibrate_folder", lambda files, base, progress=None: {
        "strength_gain": 2.0, "noise_model": white.to_dict(), "calibration": []})
    banks: list[NoiseBank] = []
    build = modes.NoisyFinetuneTrainer._build_bank
    monkeypatch.setattr(modes.NoisyFinetuneTrainer, "_build_bank", lambda self: banks.append(build(self)) or banks[0])
    calls: list[tuple[bool, torch.Tensor, torch.Tensor]] = []
    forward = UNetDenoiser.forward

    def spy(self: UNetDenoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        out = forward(self, x, sigma)
        calls.append((self.training, x.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(UNetDenoiser, "forward", spy)
    res = ft.finetune(make_folder(env, count=4, noise=6), mode="noisy", name="real", steps=1, minutes=0, threads=1)
    first = next(i for i, c in enumerate(calls) if c[0])
    target, fresh = calls[first - 1][2], calls[first][1]  # the base, then the step's one forward
    noise_std = float((fresh - target).std()) * 255
    assert abs(noise_std - 6.0 * banks[0].std) < 0.15 * 6.0 * banks[0].std
    assert "crops of the folder's own noise" in load_model(res.path)[1].training["method"]
