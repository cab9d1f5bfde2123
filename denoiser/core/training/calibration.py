"""Strength calibration on a photo's own noise: how hard must *this* model be driven to remove it?

The model's level input was trained on the per-pixel std of synthetic noise. Real camera noise is
spatially correlated; the estimator reads it low, and the model, given that reading, leaves most of it
(on real photos the best strength is several times the estimate). Without any clean reference:
1. measure_noise: a strong run of the model leaves the noise behind in the flat areas of
   (noisy - denoised); their spatial spectrum and channel covariance make a NoiseModel;
2. calibrate_strength: that noise, re-synthesised onto the strong run's output, gives a pair with a known
   answer; the gain (x the estimated level) that restores it best is the gain for this noise.
Given Auto's noise map instead of one number, the noise is measured relative to the map (camera noise grows
with brightness, and the map follows it), and the gain scales the map: noisy-mode fine-tuning
(core.training.finetune, core.training.selfsup) calibrates a folder this way.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# px: residual windows for the spectrum (camera noise is still correlated at 4-6 px; 16 lost more of it)
NOISE_WINDOW = 32
CALIBRATION_GAINS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)  # strength / estimated level, tried in calibration
CALIBRATION_SIDE = 512  # px: centre crop a photo's calibration looks at
PSEUDO_CLEAN_GAIN = 3.0  # strength (x estimate) of the base run whose flat areas expose the noise


@dataclass
class NoiseModel:
    """Gaussian noise with a measured spatial spectrum and channel covariance.

    spectrum: (W, W) power spectrum of unit-variance noise (mean 1), averaged over channels;
    cov: (C, C) channel covariance of the noise (per-pixel variance on the diagonal), in 0..1 units, or, for a
    `relative` model, of the noise divided by the local level (Auto's map / 255): such noise is sampled at a
    level map, so it is as much stronger in bright areas as the map says.
    """

    spectrum: np.ndarray
    cov: np.ndarray
    relative: bool = False

    @property
    def std(self) -> float:
        """Per-pixel std in 0..255 units (a relative model: the noise std over the level, 1 = as Auto reads)."""
        return float(np.sqrt(np.trace(self.cov) / len(self.cov)) * (1 if self.relative else 255))

    def to_dict(self) -> dict[str, Any]:
        return {"spectrum": np.round(self.spectrum, 5).tolist(), "cov": self.cov.tolist(), "relative": self.relative}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseModel:
        spectrum, cov = np.asarray(d["spectrum"], np.float64), np.asarray(d["cov"], np.float64)
        if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1] or cov.ndim != 2 or \
                cov.shape[0] != cov.shape[1] or not np.all(np.isfinite(spectrum)) or not np.all(np.isfinite(cov)):
            raise ValueError("bad noise model")
        return cls(spectrum, cov, bool(d.get("relative", False)))

    @classmethod
    def average(cls, models: list[NoiseModel]) -> NoiseModel:
        if len({m.relative for m in models}) > 1:
            raise ValueError("cannot average relative and absolute noise models")
        return cls(np.mean([m.spectrum for m in models], axis=0), np.mean([m.cov for m in models], axis=0),
                   models[0].relative)

    def sample(self, shape: tuple[int, ...], gen: torch.Generator, device: torch.device | str = "cpu",
               level: torch.Tensor | None = None) -> torch.Tensor:
        """Noise (N, C, H, W) with this spectrum (resampled to H x W) and channel covariance; a relative model
        needs the level map (N, 1, H, W) in 0..255 units it is sampled at."""
        n, c, h, w = shape
        if self.relative and level is None:
            raise ValueError("a relative noise model is sampled at a level map")
        spec = torch.from_numpy(np.fft.fftshift(self.spectrum)).float()[None, None]
        spec = F.interpolate(spec, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        amp = torch.fft.ifftshift(spec.clamp_min(0)).sqrt().to(device)
        z = torch.randn((n, c, h, w), generator=gen, device=device)
        x = torch.fft.ifft2(torch.fft.fft2(z) * amp).real
        x = x / x.flatten(2).std(dim=2).clamp_min(1e-8)[..., None, None]
        chol = torch.linalg.cholesky(torch.from_numpy(self.cov).double() + 1e-12 * torch.eye(c, dtype=torch.float64))
        noise = torch.einsum("ij,njhw->nihw", chol.float().to(device), x)
        return noise * level.to(noise) / 255 if self.relative and level is not None else noise


def full_map(level: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Auto's half-resolution map (0..255) spread over the photo's H x W pixels."""
    return np.repeat(np.repeat(level, 2, axis=0), 2, axis=1)[:shape[0], :shape[1]]


def relative_residual(noisy: np.ndarray, denoised: np.ndarray, level: np.ndarray | None = None) -> np.ndarray:
    """noisy - denoised (HxWxC, float64); with Auto's map `level` (half resolution, 0..255 units), divided by it
    (in 0..1 units): noise relative to the level the map reads there, which a level map scales back."""
    residual = (noisy - denoised).astype(np.float64)
    if level is not None:
        residual /= np.maximum(full_map(level, residual.shape[:2]), 0.5)[..., None] / 255
    return residual


def flat_windows(denoised: np.ndarray, window: int, step: int) -> list[tuple[float, int, int]]:
    """(gradient energy, y, x) of every window x window cell of the denoised photo (HxWxC), flattest first:
    where noisy - denoised holds noise rather than removed detail."""
    import cv2

    grey = denoised.mean(axis=2).astype(np.float32)
    energy = cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2
    h, w = grey.shape
    cells = [(float(energy[y:y + window, x:x + window].mean()), y, x)
             for y in range(0, h - window + 1, step) for x in range(0, w - window + 1, step)]
    return sorted(cells)


def measure_noise(noisy: np.ndarray, denoised: np.ndarray, window: int | None = None,
                  level: np.ndarray | None = None) -> NoiseModel:
    """The noise left in noisy - denoised (HxWxC in [0,1]) where the denoised photo is flattest (20 %); with
    Auto's map `level` (half resolution, 0..255 units), the noise relative to it (a relative NoiseModel)."""
    window = window or NOISE_WINDOW
    residual = relative_residual(noisy, denoised, level)
    c = residual.shape[2]
    cells = flat_windows(denoised, window, window // 2)
    if not cells:
        raise ValueError(f"image too small to measure its noise: {noisy.shape}")
    spectrum, cov = np.zeros((window, window)), np.zeros((c, c))
    chosen = cells[:max(8, len(cells) // 5)]
    for _, y, x in chosen:
        p = residual[y:y + window, x:x + window]
        p = p - p.mean(axis=(0, 1))
        power = np.abs(np.fft.fft2(p, axes=(0, 1))) ** 2  # (W, W, C)
        spectrum += (power / max(power.mean(), 1e-20)).mean(axis=2)
        q = p.reshape(-1, c)
        cov += q.T @ q / len(q)
    return NoiseModel(spectrum / len(chosen), cov / len(chosen), level is not None)


def calibrate_strength(denoise: Callable[[np.ndarray, Any], np.ndarray], images: list[np.ndarray],
                       estimate: Callable[[np.ndarray], float | np.ndarray],
                       gains: tuple[float, ...] = CALIBRATION_GAINS,
                       ) -> tuple[float, NoiseModel, list[dict[str, float]]]:
    """How strongly (x the estimated level) the model must run to remove this folder's noise.

    For each photo: a strong base run exposes the noise in flat areas (measure_noise); that noise,
    re-synthesised onto the base run's output, makes a pair with a known answer; the gain whose output
    is closest to it wins. Returns (median gain, the folder's average noise model, per-photo details).
    `estimate` gives one level per photo (`denoise` then gets a float), or Auto's map (the noise model is then
    relative to the map and `denoise` gets the map times the gain). No clean reference is used: everything
    comes from the noisy photos themselves.
    """
    if not images:
        raise ValueError("no photos to calibrate on")
    gen = torch.Generator().manual_seed(0)
    best, models, details = [], [], []
    for img in images:
        estimated = estimate(img)
        level: float | np.ndarray
        if isinstance(estimated, np.ndarray) and estimated.ndim == 2:
            level_map = np.maximum(estimated, np.float32(0.5))
            level, at = level_map, torch.from_numpy(full_map(level_map, img.shape[:2]))[None, None].float()
        else:
            level, at = max(float(estimated), 0.5), None
        pseudo_clean = denoise(img, PSEUDO_CLEAN_GAIN * level)
        model = measure_noise(img, pseudo_clean, level=level if isinstance(level, np.ndarray) else None)
        noise = model.sample((1, img.shape[2], *img.shape[:2]), gen, level=at)
        synth = pseudo_clean + noise[0].permute(1, 2, 0).numpy()
        scores = [float(np.mean((denoise(synth.astype(np.float32), g * level) - pseudo_clean) ** 2)) for g in gains]
        gain = gains[int(np.argmin(scores))]
        best.append(gain)
        models.append(model)
        details.append({"level": round(float(np.mean(level)), 3), "noise_std": round(model.std, 3), "gain": gain})
    return float(np.median(best)), NoiseModel.average(models), details
