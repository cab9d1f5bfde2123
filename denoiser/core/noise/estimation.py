"""Noise-level estimation on a photo (inference): the classical PCA estimator."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORRELATED_RATIO = 1.6  # subsampled / full-resolution estimate above which the noise is taken as correlated
CORRELATED_BELOW = 2.0  # correlated noise collapses the full-resolution estimate below this (Nam25: 0.4-0.7)


class TooSmallToEstimate(ValueError):
    """A photo too small for its noise to be measured; the caller gives a strength instead."""


@dataclass(frozen=True)
class NoiseEstimate:
    sigma: float  # 0..255, per channel and pixel
    correlated: bool  # the spatially-correlated reading (subsampled) was used: real camera noise


def estimate_sigma(image: np.ndarray, patch: int = 7, max_patches: int = 60_000, seed: int = 0) -> float:
    """Noise std (0..255 units) of a float image in [0,1]; see estimate_noise."""
    return estimate_noise(image, patch, max_patches, seed).sigma


def estimate_noise(image: np.ndarray, patch: int = 7, max_patches: int = 60_000, seed: int = 0) -> NoiseEstimate:
    """Noise std (0..255 units, per channel and per pixel) of a float image in [0,1], HxW or HxWxC.

    PCA of overlapping patches (Chen, Zhu & Heng, ICCV 2015): the smallest eigenvalues of the patch
    covariance belong to noise alone; the largest set whose mean splits it evenly is the noise
    variance. Robust to texture, unlike gradient/MAD estimators that overestimate on detail.

    Colour: a joint RGB PCA is the most accurate for independent channel noise, but collapses to ~0
    when the channels' noise is correlated (4:2:0 JPEGs, demosaiced camera noise). For independent
    channel noise the luma estimate is ~0.67x the joint one, so a joint estimate below a quarter of the luma
    one reveals the collapse (it drops to ~0.1x); then the per-channel estimate is used.

    Spatially correlated noise (every real camera: demosaicing, in-camera noise reduction, JPEG) has
    little power in the high frequencies the smallest eigenvalues look at, so it reads several times
    low. Subsampling by 2 keeps each pixel's noise but shortens its correlation to half; when the
    per-channel estimate on the four subsampled phases is well above the full-resolution one (white
    noise: about equal), the noise is correlated and the subsampled figure is returned. Subsampling also
    aliases edges and fine texture into "noise", so there only weak-texture patches count (gradient energy
    below what 99 % of pure-noise patches at the first estimate stay under; Liu, Tanaka & Okutomi 2013,
    one pass: iterating drives a correlated-noise estimate down).
    """
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[0] < patch * 2 or img.shape[1] < patch * 2:
        raise TooSmallToEstimate(f"image too small to estimate noise: {img.shape}")
    rng = np.random.default_rng(seed)
    patches = _sample_patches(img, patch, max_patches, rng)
    c = img.shape[2]
    white = joint = _pca_noise(patches.reshape(len(patches), -1))
    if c > 1:
        luma = _pca_noise(patches @ np.array([0.299, 0.587, 0.114], np.float32))
        if joint < 0.25 * luma and luma >= 3.0:  # below ~3 the difference does not matter to the model
            white = max(_per_channel(patches), luma)
    if white >= CORRELATED_BELOW or min(img.shape[:2]) < patch * 4:
        return NoiseEstimate(white, False)
    planes = [(img[dy::2, dx::2], ch) for dy in (0, 1) for dx in (0, 1) for ch in range(c)]
    subsampled = float(np.mean([_weak_texture_noise(_sample_patches(q, patch, max_patches // 4, rng)[:, :, ch], patch)
                                for q, ch in planes]))
    if subsampled > CORRELATED_RATIO * white:
        return NoiseEstimate(subsampled, True)
    return NoiseEstimate(white, False)


def _sample_patches(img: np.ndarray, patch: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `count` random overlapping patch x patch windows of img (H,W,C), as (n, patch*patch, C) in 0..255."""
    h, w, _ = img.shape
    n_all = (h - patch + 1) * (w - patch + 1)
    n = min(count, n_all)
    idx = rng.choice(n_all, size=n, replace=False) if n < n_all else np.arange(n_all)
    ys, xs = np.divmod(idx, w - patch + 1)
    offs_y, offs_x = np.mgrid[0:patch, 0:patch]
    rows = ys[:, None] + offs_y.ravel()[None, :]
    cols = xs[:, None] + offs_x.ravel()[None, :]
    return img[rows, cols, :] * 255.0


_NOISE_GRADIENT_Q99: dict[int, float] = {}  # patch size -> 99th percentile of a unit white-noise patch's energy


def _gradient_energy(x: np.ndarray, patch: int) -> np.ndarray:
    q = x.reshape(-1, patch, patch)
    return ((q[:, :, 1:] - q[:, :, :-1]) ** 2).sum(axis=(1, 2)) + ((q[:, 1:, :] - q[:, :-1, :]) ** 2).sum(axis=(1, 2))


def _weak_texture_noise(x: np.ndarray, patch: int) -> float:
    """PCA noise estimate of single-channel patches (n, patch*patch), on the weakly textured ones only."""
    if patch not in _NOISE_GRADIENT_Q99:
        white = np.random.default_rng(12345).normal(size=(20_000, patch * patch))
        _NOISE_GRADIENT_Q99[patch] = float(np.percentile(_gradient_energy(white, patch), 99))
    first = _pca_noise(x)
    flat = x[_gradient_energy(x, patch) < _NOISE_GRADIENT_Q99[patch] * first * first]
    return _pca_noise(flat) if len(flat) >= 300 else first


def _per_channel(patches: np.ndarray) -> float:
    return float(np.mean([_pca_noise(patches[:, :, ch]) for ch in range(patches.shape[2])]))


def _pca_noise(x: np.ndarray) -> float:
    """Noise std from patches (n, d) by the eigenvalue-splitting rule."""
    x = x.astype(np.float64)
    x -= x.mean(axis=0)
    eig = np.clip(np.sort(np.linalg.eigvalsh(x.T @ x / max(len(x) - 1, 1))), 0, None)
    for count in range(eig.size, 0, -1):
        head = eig[:count]
        mean = head.mean()
        if np.sum(head > mean) == np.sum(head < mean):
            return float(np.sqrt(mean))
    return float(np.sqrt(eig[0]))
