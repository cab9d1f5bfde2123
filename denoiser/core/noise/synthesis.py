"""Synthetic noise for training (batched torch; the camera pipeline runs on the CPU).

`synthesize` returns (noisy, level). level is what the model's noise-level input is trained to receive, in
0..255 units: for stationary noise (Gaussian, correlated) the per-image std of the added noise, (N,); with
`level_map` on, signal-dependent noise (Poisson-Gaussian, camera pipeline) gets a map (N, 1, H/2, W/2) of
the local noise std instead (`local_std_map`): the quantity the learned estimator predicts on a photo.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.colour import linear_to_srgb, srgb_to_linear
from denoiser.core.config import from_plain


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
    p_camera: float = 0.0  # camera-pipeline noise (noise.camera): raw shot/read noise, demosaic, ISP, JPEG
    level_map: bool = False  # signal-dependent kinds get a local-std map as their level (see local_std_map)

    def __post_init__(self) -> None:
        if not 0 <= self.sigma_min <= self.sigma_max <= 255:
            raise ValueError("need 0 <= sigma_min <= sigma_max <= 255")
        probs = (self.p_gaussian, self.p_poisson, self.p_correlated, self.p_camera)
        if min(probs) < 0 or sum(probs) <= 0:
            raise ValueError("noise probabilities must be >= 0 and not all zero")
        if not 0 <= self.p_jpeg <= 1 or not 1 <= self.jpeg_quality_min <= self.jpeg_quality_max <= 100:
            raise ValueError("bad JPEG settings")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseConfig:
        return from_plain(cls, d, "noise config")


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


MAP_BLUR = 4.0  # px: std of the Gaussian window over which a level map measures the local noise std


def local_std_map(noise: torch.Tensor, blur: float = MAP_BLUR) -> torch.Tensor:
    """Local noise std (N, 1, H/2, W/2) in 0..255 units of a noise batch (N, C, H, W): the channel-mean
    noise power in a Gaussian window, at the model's level-map resolution."""
    n, _, h, w = noise.shape
    power = (noise.float() ** 2).mean(dim=1, keepdim=True)
    radius = int(np.ceil(3 * blur))
    t = torch.arange(-radius, radius + 1, device=noise.device, dtype=power.dtype)
    k = torch.exp(-0.5 * (t / blur) ** 2)
    k = k / k.sum()
    pad_mode = "reflect" if min(h, w) > radius else "replicate"
    x = F.conv2d(F.pad(power, (radius, radius, 0, 0), mode=pad_mode), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode=pad_mode), k.view(1, 1, -1, 1))
    return F.avg_pool2d(x, 2, ceil_mode=True).clamp_min(0).sqrt() * 255.0


def synthesize(clean: torch.Tensor, cfg: NoiseConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the configured mixture to a batch (N,C,H,W) in [0,1]; returns (noisy, level), see the module doc."""
    n, dev = clean.shape[0], clean.device
    probs = torch.tensor([cfg.p_gaussian, cfg.p_poisson, cfg.p_correlated, cfg.p_camera], device=dev)
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
    camera = kind == 3
    if camera.any():
        from denoiser.core.noise.camera import camera_noise

        idx = torch.nonzero(camera).flatten()
        out = out.clone()
        out[idx] = camera_noise(clean[idx], gen)
    if cfg.p_jpeg > 0:
        out = _maybe_jpeg(out, cfg, gen, skip=camera)  # the camera pipeline has its own JPEG step
    level = noise_std(out, clean)
    if not cfg.level_map:
        return out, level
    h, w = clean.shape[-2:]
    const = level.view(-1, 1, 1, 1).expand(n, 1, (h + 1) // 2, (w + 1) // 2)
    varying = ((kind == 1) | camera).view(-1, 1, 1, 1)
    return out, torch.where(varying, local_std_map(out - clean), const)


def _maybe_jpeg(noisy: torch.Tensor, cfg: NoiseConfig, gen: torch.Generator,
                skip: torch.Tensor | None = None) -> torch.Tensor:
    import cv2

    pick = torch.rand(noisy.shape[0], generator=gen, device=noisy.device) < cfg.p_jpeg
    if skip is not None:
        pick &= ~skip
    if not pick.any():
        return noisy
    qual = torch.randint(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1, (noisy.shape[0],), generator=gen,
                         device=noisy.device)
    out = noisy.clone()
    for i in torch.nonzero(pick).flatten().tolist():
        img = (noisy[i].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(qual[i])])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if not ok or dec is None:
            raise RuntimeError("JPEG round trip failed")
        if dec.ndim == 2:
            dec = dec[..., None]
        out[i] = torch.from_numpy(dec.astype(np.float32) / 255.0).permute(2, 0, 1).to(noisy.device)
    return out
