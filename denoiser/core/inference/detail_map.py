"""Removed-detail map: where the signal a denoise removed (input - output) still has structure.

The removed signal is the model's reconstruction error against the input; where the model removed only
noise it is noise (random local orientation), where it ate an edge, a line or texture it is shaped
like them (one dominant local orientation). The map is the coherence of the residual's local structure
tensor above the coherence pure noise reaches, gated by the residual's energy (so a
residual of rounding error does not count). A per-photo score is the share of the photo flagged.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from denoiser.core.inference.controls import luma

WINDOW = 3.0  # Gaussian window (px) of the structure tensor
# The 99th percentile of the coherence of white Gaussian noise under that window: the map's zero, so pure
# noise maps to ~0 almost everywhere.
NOISE_COHERENCE = 0.37
ENERGY_FLOOR = 1.0 / 255.0  # residual RMS below which nothing is flagged (rounding, a clean photo)
FLAG_LEVEL = 0.5  # a pixel counts as flagged for the score above this map value


@dataclass(frozen=True)
class DetailReport:
    map: np.ndarray  # HxW float32 0..1
    score: float  # % of the photo's area flagged

    def overlay(self, denoised: np.ndarray) -> np.ndarray:
        """The denoised photo (HxWxC, 0..1) darkened to grey, with flagged areas in magenta: an 8-bit RGB."""
        base = denoised if denoised.shape[2] == 3 else np.repeat(denoised, 3, axis=2)
        grey = luma(base)[..., None] * 0.6
        tint = np.array([1.0, 0.0, 1.0], np.float32)
        m = self.map[..., None]
        return np.rint(np.clip(grey * (1 - m) + tint * m, 0, 1) * 255).astype(np.uint8)


def removed_detail_map(noisy: np.ndarray, denoised: np.ndarray) -> np.ndarray:
    """HxW float32 in 0..1: ~0 where the removed signal looks like noise, high where it is structured."""
    if noisy.shape != denoised.shape:
        raise ValueError(f"input {noisy.shape} and output {denoised.shape} differ in shape")
    diff = noisy.astype(np.float32) - denoised.astype(np.float32)
    r = np.ascontiguousarray(luma(diff) if diff.shape[2] == 3 else diff[..., 0])
    rx = cv2.Sobel(r, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    ry = cv2.Sobel(r, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)

    def smooth(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (0, 0), WINDOW)

    jxx, jyy, jxy = smooth(rx * rx), smooth(ry * ry), smooth(rx * ry)
    trace = jxx + jyy
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy * jxy) / (trace + np.float32(1e-12))
    structured = np.clip((coherence - NOISE_COHERENCE) / (1 - NOISE_COHERENCE), 0, 1)
    energy = smooth(r * r)
    gate = energy * energy / (energy * energy + np.float32(ENERGY_FLOOR ** 4))
    return (structured * gate).astype(np.float32)


def detail_report(noisy: np.ndarray, denoised: np.ndarray) -> DetailReport:
    m = removed_detail_map(noisy, denoised)
    return DetailReport(m, float(100.0 * np.mean(m > FLAG_LEVEL)))
