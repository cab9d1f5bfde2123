"""Strength calibration on a photo's own noise: how hard must *this* model be driven to remove it?

The model's level input was trained on the per-pixel std of synthetic noise. Real camera noise is
spatially correlated; the estimator reads it low, and the model, given that reading, leaves most of it
(on real photos the best strength is several times the estimate). Without any clean reference:
1. measure_noise: a strong run of the model leaves the noise behind in the flat areas of
   (noisy - denoised); their spatial spectrum and channel covariance make a NoiseModel;
2. calibrate_strength: that noise, re-synthesised onto the strong run's output, gives a pair with a known
   answer; the gain (x the estimated level) that restores it best is the gain for this noise.
Used by the engine's Auto strength when the estimator reports correlated noise, and by noisy-mode
fine-tuning (core.training.finetune, core.training.selfsup) over a folder.
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
    """Stationary Gaussian noise with a measured spatial spectrum and channel covariance (0..1 units).

    spectrum: (W, W) power spectrum of unit-variance noise (mean 1), averaged over channels;
    cov: (C, C) channel covariance of the noise (per-pixel variance on the diagonal).
    """

    spectrum: np.ndarray
    cov: np.ndarray

    @property
    def std(self) -> float:
        """Per-pixel std in 0..255 units."""
        return float(np.sqrt(np.trace(self.cov) / len(self.cov)) * 255)

    def to_dict(self) -> dict[str, Any]:
        return {"spectrum": np.round(self.spectrum, 5).tolist(), "cov": self.cov.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseModel:
        spectrum, cov = np.asarray(d["spectrum"], np.float64), np.asarray(d["cov"], np.float64)
        if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1] or cov.ndim != 2 or \
                cov.shape[0] != cov.shape[1] or not np.all(np.isfinite(spectrum)) or not np.all(np.isfinite(cov)):
            raise ValueError("bad noise model")
        return cls(spectrum, cov)

    @classmethod
    def average(cls, models: list[NoiseModel]) -> NoiseModel:
        return cls(np.mean([m.spectrum for m in models], axis=0), np.mean([m.cov for m in models], axis=0))

    def sample(self, shape: tuple[int, ...], gen: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
        """Noise (N, C, H, W) with this spectrum (resampled to H x W) and channel covariance."""
        n, c, h, w = shape
        spec = torch.from_numpy(np.fft.fftshift(self.spectrum)).float()[None, None]
        spec = F.interpolate(spec, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        amp = torch.fft.ifftshift(spec.clamp_min(0)).sqrt().to(device)
        z = torch.randn((n, c, h, w), generator=gen, device=device)
        x = torch.fft.ifft2(torch.fft.fft2(z) * amp).real
        x = x / x.flatten(2).std(dim=2).clamp_min(1e-8)[..., None, None]
        chol = torch.linalg.cholesky(torch.from_numpy(self.cov).double() + 1e-12 * torch.eye(c, dtype=torch.float64))
        return torch.einsum("ij,njhw->nihw", chol.float().to(device), x)


def measure_noise(noisy: np.ndarray, denoised: np.ndarray, window: int | None = None) -> NoiseModel:
    """The noise left in noisy - denoised (HxWxC in [0,1]) where the denoised photo is flattest (20 %)."""
    import cv2

    window = window or NOISE_WINDOW
    residual = (noisy - denoised).astype(np.float64)
    grey = denoised.mean(axis=2).astype(np.float32)
    energy = cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2
    h, w, c = residual.shape
    step = window // 2
    cells = [(float(energy[y:y + window, x:x + window].mean()), y, x)
             for y in range(0, h - window + 1, step) for x in range(0, w - window + 1, step)]
    if not cells:
        raise ValueError(f"image too small to measure its noise: {noisy.shape}")
    cells.sort()
    spectrum, cov = np.zeros((window, window)), np.zeros((c, c))
    chosen = cells[:max(8, len(cells) // 5)]
    for _, y, x in chosen:
        p = residual[y:y + window, x:x + window]
        p = p - p.mean(axis=(0, 1))
        power = np.abs(np.fft.fft2(p, axes=(0, 1))) ** 2  # (W, W, C)
        spectrum += (power / max(power.mean(), 1e-20)).mean(axis=2)
        q = p.reshape(-1, c)
        cov += q.T @ q / len(q)
    return NoiseModel(spectrum / len(chosen), cov / len(chosen))


def calibrate_strength(denoise: Callable[[np.ndarray, float], np.ndarray], images: list[np.ndarray],
                       estimate: Callable[[np.ndarray], float],
                       gains: tuple[float, ...] = CALIBRATION_GAINS,
                       ) -> tuple[float, NoiseModel, list[dict[str, float]]]:
    """How strongly (x the estimated level) the model must run to remove this folder's noise.

    For each photo: a strong base run exposes the noise in flat areas (measure_noise); that noise,
    re-synthesised onto the base run's output, makes a pair with a known answer; the gain whose output
    is closest to it wins. Returns (median gain, the folder's average noise model, per-photo details).
    No clean reference is used: everything comes from the noisy photos themselves.
    """
    if not images:
        raise ValueError("no photos to calibrate on")
    gen = torch.Generator().manual_seed(0)
    best, models, details = [], [], []
    for img in images:
        level = max(float(estimate(img)), 0.5)
        pseudo_clean = denoise(img, PSEUDO_CLEAN_GAIN * level)
        model = measure_noise(img, pseudo_clean)
        synth = pseudo_clean + model.sample((1, img.shape[2], *img.shape[:2]), gen)[0].permute(1, 2, 0).numpy()
        scores = [float(np.mean((denoise(synth.astype(np.float32), g * level) - pseudo_clean) ** 2)) for g in gains]
        gain = gains[int(np.argmin(scores))]
        best.append(gain)
        models.append(model)
        details.append({"level": round(level, 3), "noise_std": round(model.std, 3), "gain": gain})
    return float(np.median(best)), NoiseModel.average(models), details
