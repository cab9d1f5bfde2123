"""Tiled inference: a pure function of (image, model function, tile plan).

Windows overlap by `overlap` pixels; each window's output is weighted by a ramp that is zero
at its inner edges, so pixels near a window edge, which saw less context, count least and the
blend leaves no seam. Window origins are multiples of the model's size multiple, so the stride-2
layers see the same phase as in an untiled run; with an overlap of at least four times the
model's receptive radius the result equals the untiled one up to float rounding.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from denoiser.core.progress import NullProgress, Progress


@dataclass(frozen=True)
class Tile:
    y0: int
    y1: int
    x0: int
    x1: int


def _axis(length: int, tile: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    """Windows covering [0, length): as few as the tile size allows, evenly sized, aligned."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n / multiple) * multiple
    size = min(size, length)
    spans, start = [], 0
    for i in range(n):
        start = min(i * (size - overlap), length - size)
        start -= start % multiple
        spans.append((start, min(start + size, length)))
    spans[-1] = (spans[-1][0], length)
    return spans


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int) -> list[Tile]:
    """Tile plan for an image already padded to `multiple` (height and width divisible by it)."""
    if height % multiple or width % multiple:
        raise ValueError(f"image {height}x{width} must be padded to a multiple of {multiple}")
    if tile % multiple or overlap % multiple or not 0 <= overlap < tile // 2:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be multiples of {multiple}, overlap < tile/2")
    return [Tile(y0, y1, x0, x1) for y0, y1 in _axis(height, tile, overlap, multiple)
            for x0, x1 in _axis(width, tile, overlap, multiple)]


def _ramp(length: int, lo_edge: bool, hi_edge: bool, overlap: int) -> torch.Tensor:
    """Blend weight along one axis of a window.

    At an edge shared with another window: 0 over the outer quarter of the overlap (pixels that saw
    the least context never count), then a linear rise over the middle half, 1 beyond. The
    neighbour's weight is 1 wherever this one is 0, so every pixel is covered.
    """
    w = torch.ones(length)
    if overlap > 0:
        d = torch.arange(overlap, dtype=torch.float32) + 0.5
        r = ((d - overlap / 4) / (overlap / 2)).clamp(0, 1)
        if lo_edge:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if hi_edge:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


def run_tiled(image: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], plan: list[Tile],
              overlap: int, progress: Progress | None = None) -> torch.Tensor:
    """Apply fn to each window of image (1,C,H,W) and blend. Cancel is checked between tiles. fn keeps a window's
    height and width; its channel count may differ from the image's (the output takes fn's)."""
    progress = progress or NullProgress()
    _, _, h, w = image.shape
    if len(plan) == 1 and (plan[0].y0, plan[0].x0, plan[0].y1, plan[0].x1) == (0, 0, h, w):
        progress.check_cancelled()  # one window covering everything: its weights are all 1, skip the blend
        res = fn(image).float().cpu()
        progress.report(1.0, "tile 1/1")
        return res
    out: torch.Tensor | None = None
    weight = torch.zeros((1, 1, h, w), dtype=torch.float32)
    for i, t in enumerate(plan):
        progress.check_cancelled()
        res = fn(image[:, :, t.y0:t.y1, t.x0:t.x1]).float().cpu()
        if out is None:
            out = torch.zeros((1, res.shape[1], h, w), dtype=torch.float32)
        wy = _ramp(t.y1 - t.y0, t.y0 > 0, t.y1 < h, overlap)
        wx = _ramp(t.x1 - t.x0, t.x0 > 0, t.x1 < w, overlap)
        wgt = (wy[:, None] * wx[None, :])[None, None]
        out[:, :, t.y0:t.y1, t.x0:t.x1] += res * wgt
        weight[:, :, t.y0:t.y1, t.x0:t.x1] += wgt
        progress.report((i + 1) / len(plan), f"tile {i + 1}/{len(plan)}")
    assert out is not None  # a plan has at least one window
    return out.div_(weight)
