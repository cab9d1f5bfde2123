"""A bank of the camera's own noise, cut from the user's noisy photos (real-noise transfer for noisy mode).

The base model at Auto's map leaves, in noisy - denoised, what it removes; where its output is flattest
(calibration.flat_windows) that is noise rather than removed detail: the camera's spatial correlation
(demosaicing), its chroma structure and its JPEG/ISP character, with no parametric stand-in. Each crop is kept
relative to Auto's map where it was cut (calibration.relative_residual, the NoiseModel's rule), so noise drawn
for another crop is scaled by that crop's own map: as much stronger in bright areas as the map says.

Crops are tiled to the training patch, each tile drawn from another position or photo and turned only by the
flips and quarter turns that leave the measured autocorrelation unchanged (`symmetries`); colour channels are
never permuted. The bank holds a fixed number of crops (BANK_CROPS x BANK_SIDE^2 x 3 float32: 12.6 MB).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from denoiser.core.training.calibration import flat_windows, relative_residual

BANK_CROPS = 256  # crops kept (the memory bound)
BANK_SIDE = 64  # px: a crop's side (camera noise is correlated over 4-6 px; tiles of 64 keep most of it)
FLAT_FRACTION = 0.2  # the flattest fifth of a photo's windows, as calibration.measure_noise takes
SYMMETRY_TOLERANCE = 0.02  # largest change of an autocorrelation coefficient a flip or turn may make
LAGS = 3  # autocorrelation lags (each axis, each sign) the symmetry check compares
# the 8 flips/quarter turns of a square as (quarter turns, mirror left-right afterwards)
OPS: tuple[tuple[int, bool], ...] = tuple((k, m) for m in (False, True) for k in range(4))


def _apply(x: np.ndarray | torch.Tensor, op: tuple[int, bool], dims: tuple[int, int]) -> np.ndarray | torch.Tensor:
    k, mirror = op
    if isinstance(x, torch.Tensor):
        x = torch.rot90(x, k, dims)
        return torch.flip(x, (dims[1],)) if mirror else x
    x = np.rot90(x, k, dims)
    return np.flip(x, dims[1]) if mirror else x


def autocorrelation(crops: np.ndarray, lags: int = LAGS) -> np.ndarray:
    """Mean autocorrelation coefficient of the crops (K, S, S, C) at lags -lags..lags on each axis,
    (2 lags + 1)^2, averaged over crops and channels (each crop's channel mean removed)."""
    x = crops - crops.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2
    acf = np.fft.ifft2(power, axes=(1, 2)).real.sum(axis=(0, 3))
    acf = np.fft.fftshift(acf / max(acf[0, 0], 1e-20))
    c = acf.shape[0] // 2
    return acf[c - lags:c + lags + 1, c - lags:c + lags + 1]


def symmetries(crops: np.ndarray, tolerance: float = SYMMETRY_TOLERANCE) -> tuple[tuple[int, bool], ...]:
    """The flips/quarter turns that leave the crops' autocorrelation unchanged (a turned lag grid is the turned
    image's autocorrelation). The half turn always passes for stationary noise: R(-d) = R(d)."""
    acf = autocorrelation(crops)
    return tuple(op for op in OPS if float(np.abs(_apply(acf, op, (0, 1)) - acf).max()) <= tolerance)


@dataclass
class NoiseBank:
    """crops: (K, C, S, S) float32 noise relative to Auto's map (0..1 units per 1/255 of map); sources: the
    (photo, y, x) each crop was cut at; ops: the allowed flips/quarter turns."""

    crops: torch.Tensor
    sources: list[tuple[int, int, int]]
    ops: tuple[tuple[int, bool], ...]

    @classmethod
    def build(cls, photos: list[np.ndarray], denoise: Callable[[np.ndarray, np.ndarray], np.ndarray],
              estimate: Callable[[np.ndarray], np.ndarray], capacity: int = BANK_CROPS,
              side: int = BANK_SIDE) -> NoiseBank:
        """Cut the bank from photos (HxWxC float32 in [0,1]): `estimate` gives Auto's map of a photo, `denoise`
        the base's output at a map. Every photo gives its flattest windows, at most capacity / photos each.
        Raises ValueError when no photo holds a side x side window."""
        if capacity < 1:
            raise ValueError(f"the noise bank needs room for at least one crop, got {capacity}")
        usable = [p for p in photos if min(p.shape[:2]) >= side]
        if not usable:
            raise ValueError(f"no photo of at least {side} px to cut real noise from")
        quota = max(1, capacity // len(usable))
        crops: list[np.ndarray] = []
        sources: list[tuple[int, int, int]] = []
        for i, img in enumerate(usable):
            level = np.maximum(estimate(img), np.float32(0.5))
            denoised = denoise(img, level)
            residual = relative_residual(img, denoised, level)
            cells = flat_windows(denoised, side, side // 2)
            taken: list[tuple[int, int]] = []
            for _, y, x in cells[:max(1, int(len(cells) * FLAT_FRACTION))]:
                if len(taken) >= quota or len(crops) >= capacity:
                    break
                if any(abs(y - ty) < side and abs(x - tx) < side for ty, tx in taken):
                    continue  # overlapping crops would repeat the same noise
                p = residual[y:y + side, x:x + side]
                crops.append((p - p.mean(axis=(0, 1))).astype(np.float32))
                sources.append((i, y, x))
                taken.append((y, x))
        stack = np.stack(crops)
        return cls(torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous(), sources, symmetries(stack))

    @property
    def nbytes(self) -> int:
        return self.crops.element_size() * self.crops.nelement()

    @property
    def std(self) -> float:
        """Per-pixel std of the relative noise (1 = as Auto's map reads it)."""
        return float(self.crops.std())

    def sample(self, shape: tuple[int, ...], gen: torch.Generator, level: torch.Tensor) -> torch.Tensor:
        """Noise (N, C, H, W) tiled from random crops, each turned by an allowed op, scaled by the level map
        (N, 1, H, W) in 0..255 units."""
        n, c, h, w = shape
        side = self.crops.shape[-1]
        if c != self.crops.shape[1]:
            raise ValueError(f"the noise bank holds {self.crops.shape[1]}-channel noise, asked for {c}")
        rows, cols = -(-h // side), -(-w // side)
        picks = torch.randint(len(self.crops), (n, rows, cols), generator=gen)
        turns = torch.randint(len(self.ops), (n, rows, cols), generator=gen)
        out = torch.empty((n, c, rows * side, cols * side))
        for k in range(n):
            for r in range(rows):
                for q in range(cols):
                    tile = _apply(self.crops[int(picks[k, r, q])], self.ops[int(turns[k, r, q])], (1, 2))
                    assert isinstance(tile, torch.Tensor)
                    out[k, :, r * side:(r + 1) * side, q * side:(q + 1) * side] = tile
        return out[:, :, :h, :w].to(level.device) * level.to(out.dtype) / 255

