"""Synthetic noisy raws from clean sRGB photos: the training and benchmark data of the joint raw model.

Each clean photo is unprocessed (noise.camera.unprocess: inverse tone curve, sRGB -> linear, inverse colour
matrix, inverse white balance) with its own random colour matrix and white balance, mosaicked at RGGB and given
heteroscedastic sensor noise, variance = shot * signal + read per photosite, with (shot, read) on the log-linear
relation of real sensors (noise.camera.sample_shot_read). The shot range spans ISO 100 of a full-frame sensor to
ISO 25600 of a phone sensor (SENSORS). The target is the clean white-balanced linear camera RGB at full
resolution; the network sees the noisy mosaic white-balanced and its noise std map scaled by the same gains.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.noise.camera import (
    add_sensor_noise,
    mosaic,
    random_cam2rgb,
    random_wb,
    read_for_shot,
    sample_shot_read,
    unprocess,
)
from denoiser.core.noise.sensor import SensorNoise


@dataclass(frozen=True)
class SensorModel:
    """A sensor at unity gain: ISO 100 fills `full_well` electrons at white (normalised signal 1)."""

    name: str
    full_well: float  # electrons at white at ISO 100

    def shot(self, iso: float) -> float:
        """Shot-noise gain a (variance a * signal in normalised units) at this ISO."""
        return iso / 100.0 / self.full_well

    def read(self, iso: float) -> float:
        """Read-noise variance b on the log-linear relation of real sensors."""
        return read_for_shot(self.shot(iso))


# A 24 MP full-frame sensor (~6 um pixels, ~50,000 e- full well at base ISO) and a phone sensor (~1.2 um pixels,
# ~5,000 e-); published full-well figures of such sensors (DxOMark / photonstophotos measurements).
FULL_FRAME = SensorModel("full-frame", 50_000.0)
PHONE = SensorModel("phone", 5_000.0)
SENSORS = (FULL_FRAME, PHONE)
SHOT_RANGE = (FULL_FRAME.shot(100), PHONE.shot(25600))  # 2e-5 .. 5.1e-2
EXPOSURE_RANGE = (0.3, 1.0)  # a random exposure factor on half the crops, so dark scenes are represented


@dataclass
class RawBatch:
    """A batch of synthetic raws; tensors are (N, C, H, W) float32, mosaics packed RGGB at half resolution."""

    noisy: torch.Tensor  # (N, 4, H/2, W/2) noisy mosaic, white-balanced
    std: torch.Tensor  # (N, 4, H/2, W/2) noise std of each photosite, white-balanced
    target: torch.Tensor  # (N, 3, H, W) clean linear camera RGB, white-balanced
    clean: torch.Tensor  # (N, 4, H/2, W/2) clean mosaic, not white-balanced
    shot: np.ndarray  # (N,) shot gain a of each raw (not white-balanced)
    read: np.ndarray  # (N,) read variance b
    wb: np.ndarray  # (N, 3) white-balance gains


def pack(cfa: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) RGGB mosaic -> (N, 4, H/2, W/2) planes R, G(0,1), G(1,0), B."""
    return F.pixel_unshuffle(cfa, 2)


def unpack(planes: torch.Tensor) -> torch.Tensor:
    """Inverse of pack."""
    return F.pixel_shuffle(planes, 2)


def site_gains(wb: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """White-balance gain of each packed RGGB plane (R, G, G, B)."""
    r, g, b = (float(v) for v in wb)
    return np.array([r, g, g, b], np.float32)


def synthesize_raw(clean: np.ndarray, rng: np.random.Generator,
                   shot_range: tuple[float, float] = SHOT_RANGE) -> RawBatch:
    """Noisy raws from clean sRGB crops (N, H, W, 3) in [0,1], H and W even; one random camera per crop."""
    n, h, w, _ = clean.shape
    if h % 2 or w % 2:
        raise ValueError(f"crops must have even sides, got {h}x{w}")
    noisy, std, target, raw_clean = [], [], [], []
    shots, reads, wbs = np.empty(n), np.empty(n), np.empty((n, 3))
    for i in range(n):
        shot, read = sample_shot_read(rng, shot_range)
        cam2rgb, wb = random_cam2rgb(rng), random_wb(rng)
        tone = bool(rng.random() < 0.5)
        exposure = float(np.exp(rng.uniform(*np.log(EXPOSURE_RANGE)))) if rng.random() < 0.5 else 1.0
        cam = unprocess(clean[i], cam2rgb, wb, tone) * exposure
        raw = mosaic(cam)
        noisy_raw = add_sensor_noise(raw, shot, read, rng)
        gains = np.asarray(wb, np.float32)
        noisy.append(noisy_raw)
        std.append(SensorNoise((shot,) * 4, (read,) * 4, "given").std_map(noisy_raw, "RGGB"))  # as at inference
        target.append(cam * gains)
        raw_clean.append(raw)
        shots[i], reads[i], wbs[i] = shot, read, wb
    g = torch.from_numpy(np.stack([site_gains(v) for v in wbs])).view(n, 4, 1, 1)

    def packed(arrays: list[np.ndarray]) -> torch.Tensor:
        return pack(torch.from_numpy(np.stack(arrays).astype(np.float32))[:, None])

    return RawBatch(noisy=packed(noisy) * g, std=packed(std) * g,
                    target=torch.from_numpy(np.stack(target).astype(np.float32)).permute(0, 3, 1, 2).contiguous(),
                    clean=packed(raw_clean), shot=shots, read=reads, wb=wbs)
