"""Joint denoising and demosaicking of a Bayer raw with the raw model (core.model.raw_network).

Any of the four Bayer phases: the mosaic is reflect-padded by one row and/or column so its top-left site is red
(a reflection keeps every site's colour), and the padding is cropped from the result. The network always sees
white-balanced data (the as-shot gains applied to each site), with the noise std map of the sensor model
(SensorNoise.std_map) scaled by the same gains; the result is divided by the gains again, so it is linear camera
RGB as the raw's colour matrices expect. Tiled with blended overlaps (core.inference.tiling), cancellable between
tiles.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.inference.engine import DEFAULT_OVERLAP, DEFAULT_TILE
from denoiser.core.inference.tiling import plan_tiles, run_tiled
from denoiser.core.model.file import ModelFileError, load_model
from denoiser.core.model.network import pad_to_multiple
from denoiser.core.model.raw_network import RawUNet
from denoiser.core.noise.raw_synthesis import pack
from denoiser.core.progress import NullProgress, Progress

RED_SITE = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}  # (row, column) of the red site


class NoiseModel(Protocol):
    """The sensor noise model (core.noise.sensor.SensorNoise): per-photosite std of a mosaic."""

    def std_map(self, cfa: np.ndarray, pattern: str) -> np.ndarray: ...


def load_raw_model(path: Path) -> RawUNet:
    """A raw model file (card and shapes checked before any weight is allocated, as for every model)."""
    model, card = load_model(Path(path))
    if not isinstance(model, RawUNet):
        raise ModelFileError(f"{path}: a {card.config.kind} model, not a raw model; the raw path needs a model "
                             "trained with `denoiser train-raw`")
    # on the CPU, convolutions run far faster so; torch stubs lack Module.to(memory_format=)
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _gain_map(h: int, w: int, wb: tuple[float, float, float]) -> torch.Tensor:
    """(1, 1, h, w) white-balance gain of every site of an RGGB mosaic."""
    r, g, b = (float(v) for v in wb)
    site = torch.tensor([[r, g], [g, b]], dtype=torch.float32)
    return site.repeat(h // 2, w // 2)[None, None]


def denoise_demosaic(model: RawUNet, cfa: np.ndarray, pattern: str, wb: tuple[float, float, float],
                     noise: NoiseModel, progress: Progress | None = None, tile: int = DEFAULT_TILE,
                     overlap: int = DEFAULT_OVERLAP, strength: float = 1.0) -> np.ndarray:
    """(H, W) black-subtracted mosaic normalised to 0..1 -> (H, W, 3) float32 linear camera RGB (not
    white-balanced). strength scales the noise map (1 = the sensor model as measured)."""
    progress = progress or NullProgress()
    if pattern not in RED_SITE:
        raise ValueError(f"unsupported CFA pattern {pattern!r}: the raw model reads Bayer mosaics "
                         f"({', '.join(RED_SITE)})")
    if cfa.ndim != 2:
        raise ValueError(f"expected a 2-D mosaic, got shape {cfa.shape}")
    gains = np.asarray(wb, np.float64)
    if gains.shape != (3,) or not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise ValueError(f"white balance must be three positive gains, got {wb}")
    m = model.config.size_multiple
    h, w = cfa.shape
    if min(h, w) < m:
        raise ValueError(f"mosaic {h}x{w} is smaller than the model's minimum of {m} px per side")
    std = np.asarray(noise.std_map(cfa, pattern), np.float32) * float(strength)
    if std.shape != cfa.shape:
        raise ValueError(f"noise map {std.shape} does not match the mosaic {cfa.shape}")
    dy, dx = RED_SITE[pattern]
    x = torch.from_numpy(np.stack([np.asarray(cfa, np.float32), std]))[None]
    x = F.pad(x, (dx, 0, dy, 0), mode="reflect") if dy or dx else x
    x, _ = pad_to_multiple(x, m)
    x = x * _gain_map(x.shape[2], x.shape[3], (gains[0], gains[1], gains[2]))
    device = next(model.parameters()).device
    tile = max(tile // m * m, m)
    overlap = min(overlap // m * m, (tile // 2 - 1) // m * m)
    plan = plan_tiles(x.shape[2], x.shape[3], tile, overlap, m)

    def run(t: torch.Tensor) -> torch.Tensor:
        t = pack(t.to(device))
        if device.type == "cpu":
            t = t.contiguous(memory_format=torch.channels_last)
        return model(t[:, 0:4], t[:, 4:8])

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = run_tiled(x, run, plan, overlap, progress)
    finally:
        model.train(was_training)
    rgb = out[0, :, dy:dy + h, dx:dx + w] / torch.from_numpy(gains.astype(np.float32)).view(3, 1, 1)
    return np.ascontiguousarray(rgb.permute(1, 2, 0).numpy(), dtype=np.float32)
