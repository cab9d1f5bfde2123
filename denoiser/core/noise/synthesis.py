"""Synthetic camera-like noise (batched torch, runs on CPU or GPU) and noise-level estimation.

Every synthesiser returns (noisy, level) where level is the per-image standard deviation of the
added noise in 0..255 units: the value the model's noise-level input is trained to receive, and the
same quantity `estimate_sigma` measures on a real photo.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class NoiseConfig:
    """Mixture of noise models used in training; the probabilities are renormalised."""

    sigma_min: float = 0.0
    sigma_max: float = 55.0
    p_gaussian: float = 0.6
    p_poisson: float = 0.2
    p_correlated: float = 0.2
    p_jpeg: float = 0.0  # JPEG after the noise (CPU only: needs an encoder)
    jpeg_quality_min: int = 70
    jpeg_quality_max: int = 95

    def __post_init__(self) -> None:
        if not 0 <= self.sigma_min <= self.sigma_max <= 255:
            raise ValueError("need 0 <= sigma_min <= sigma_max <= 255")
        probs = (self.p_gaussian, self.p_poisson, self.p_correlated)
        if min(probs) < 0 or sum(probs) <= 0:
            raise ValueError("noise probabilities must be >= 0 and not all zero")
        if not 0 <= self.p_jpeg <= 1 or not 1 <= self.jpeg_quality_min <= self.jpeg_quality_max <= 100:
            raise ValueError("bad JPEG settings")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NoiseConfig":
        return cls(**d)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Extended sRGB encoding: odd-symmetric so negative (noisy) values survive."""
    a = x.abs()
    y = torch.where(a <= 0.0031308, a * 12.92, 1.055 * a.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return torch.sign(x) * y


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def gaussian(clean: torch.Tensor, sigma: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """i.i.d. Gaussian noise; sigma (N,) in 0..255 units."""
    noise = torch.randn(clean.shape, generator=gen, device=clean.device, dtype=clean.dtype)
    return clean + noise * (sigma / 255.0).view(-1, 1, 1, 1)


def poisson_gaussian(clean: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Signal-dependent noise in linear light (var = shot*signal + read^2), re-encoded to sRGB."""
    lin = srgb_to_linear(clean)
    std = torch.sqrt(shot.view(-1, 1, 1, 1) * lin + read.view(-1, 1, 1, 1) ** 2)
    noise = torch.randn(clean.shape, generator=gen, device=clean.device, dtype=clean.dtype)
    return linear_to_srgb(lin + std * noise)


def _blurred_noise(shape: tuple[int, ...], blur: torch.Tensor, gen: torch.Generator, device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """White noise blurred per image by a separable Gaussian of std `blur` (N,) pixels, unit std per image."""
    n, c, h, w = shape
    noise = torch.randn(shape, generator=gen, device=device, dtype=dtype)
    radius = int(min(8, max(1, np.ceil(3 * float(blur.max())))))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k1 = torch.exp(-0.5 * (t.view(1, -1) / blur.view(-1, 1).clamp_min(1e-3)) ** 2)
    k1 = k1 / k1.sum(dim=1, keepdim=True)  # (N, K)
    # separable per-image blur: fold the batch into channels and use groups
    x = noise.reshape(1, n * c, h, w)
    kh = k1.repeat_interleave(c, dim=0).view(n * c, 1, 1, -1)
    kv = k1.repeat_interleave(c, dim=0).view(n * c, 1, -1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kh, groups=n * c)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kv, groups=n * c)
    x = x.view(n, c, h, w)
    return x / x.flatten(1).std(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)


def correlated(clean: torch.Tensor, sigma: torch.Tensor, blur: torch.Tensor, mix: torch.Tensor,
               gen: torch.Generator, blur_wide: torch.Tensor | None = None,
               wide: torch.Tensor | None = None) -> torch.Tensor:
    """Channel- and spatially-correlated noise, as demosaicing, colour matrices and in-camera processing make it.

    blur: (N,) Gaussian std in pixels; mix: (N,) strength of channel cross-talk in [0, 1]. Optionally a
    second, wider component (blur_wide, (N,)) holding the fraction `wide` (N,) of the variance: real camera
    noise has a long correlation tail (Nam25: lag-1..4 correlation 0.72/0.43/0.28/0.19) that one Gaussian
    blur cannot give. The result is rescaled so each image's noise std is exactly sigma.
    """
    n, c, h, w = clean.shape
    noise = _blurred_noise(clean.shape, blur, gen, clean.device, clean.dtype)
    if blur_wide is not None and wide is not None:
        far = _blurred_noise(clean.shape, blur_wide, gen, clean.device, clean.dtype)
        f = wide.view(-1, 1, 1, 1)
        noise = torch.sqrt(1 - f) * noise + torch.sqrt(f) * far
    if c > 1:
        mean = noise.mean(dim=1, keepdim=True)
        m = mix.view(-1, 1, 1, 1)
        noise = (1 - m) * noise + m * mean
    noise = noise / noise.flatten(1).std(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
    return clean + noise * (sigma / 255.0).view(-1, 1, 1, 1)


def noise_std(noisy: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image std of the added noise, in 0..255 units."""
    return (noisy - clean).flatten(1).std(dim=1) * 255.0


def synthesize(clean: torch.Tensor, cfg: NoiseConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the configured mixture to a batch (N,C,H,W) in [0,1]; returns (noisy, level)."""
    n, dev = clean.shape[0], clean.device
    probs = torch.tensor([cfg.p_gaussian, cfg.p_poisson, cfg.p_correlated], device=dev)
    kind = torch.multinomial(probs / probs.sum(), n, replacement=True, generator=gen)
    sigma = _uniform(n, cfg.sigma_min, cfg.sigma_max, gen, dev)
    out = gaussian(clean, sigma, gen)
    if (kind == 1).any():
        # shot and read noise chosen so that the mid-grey std spans roughly the same 0..sigma_max range
        total = (sigma / 255.0) ** 2 / 0.214  # variance at linear 0.214 (sRGB 0.5) ~ sigma^2
        frac = _uniform(n, 0.5, 1.0, gen, dev)
        shot = total * frac
        read = torch.sqrt(total * (1 - frac) * 0.214)
        pg = poisson_gaussian(clean, shot, read, gen)
        out = torch.where((kind == 1).view(-1, 1, 1, 1), pg, out)
    if (kind == 2).any():
        blur = _uniform(n, 0.3, 1.2, gen, dev)
        mix = _uniform(n, 0.0, 0.7, gen, dev)
        co = correlated(clean, sigma, blur, mix, gen, _uniform(n, 1.2, 2.5, gen, dev), _uniform(n, 0.0, 0.7, gen, dev))
        out = torch.where((kind == 2).view(-1, 1, 1, 1), co, out)
    if cfg.p_jpeg > 0:
        out = _maybe_jpeg(out, cfg, gen)
    return out, noise_std(out, clean)


def _maybe_jpeg(noisy: torch.Tensor, cfg: NoiseConfig, gen: torch.Generator) -> torch.Tensor:
    import cv2

    pick = torch.rand(noisy.shape[0], generator=gen, device=noisy.device) < cfg.p_jpeg
    if not pick.any():
        return noisy
    qual = torch.randint(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1, (noisy.shape[0],), generator=gen,
                         device=noisy.device)
    out = noisy.clone()
    for i in torch.nonzero(pick).flatten().tolist():
        img = (noisy[i].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(qual[i])])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if dec.ndim == 2:
            dec = dec[..., None]
        out[i] = torch.from_numpy(dec.astype(np.float32) / 255.0).permute(2, 0, 1).to(noisy.device)
    return out


# ----------------------------------------------------------------------------------------------
# Noise-level estimation


CORRELATED_RATIO = 1.6  # subsampled / full-resolution estimate above which the noise is taken as correlated
CORRELATED_BELOW = 2.0  # correlated noise collapses the full-resolution estimate below this (Nam25: 0.4-0.7)


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
    one pass: iterating drives a correlated-noise estimate down). Measured: Nam25 reads ~0.5x its
    per-pixel std (was ~0.13x); clean photos read 0.6-5 instead of 1.3-24 without the texture check.
    """
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[0] < patch * 2 or img.shape[1] < patch * 2:
        raise ValueError(f"image too small to estimate noise: {img.shape}")
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
    subsampled = float(np.mean([_weak_texture_noise(_sample_patches(img[dy::2, dx::2], patch, max_patches // 4, rng)[:, :, ch],
                                                    patch)
                                for dy in (0, 1) for dx in (0, 1) for ch in range(c)]))
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
