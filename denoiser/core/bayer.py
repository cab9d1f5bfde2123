"""Bayer mosaics and OpenCV's demosaic, shared by the layers that need them (noise synthesis develops simulated
raws, photo I/O develops real ones for the window): one home for the site layout and the OpenCV code lookup."""
from __future__ import annotations

from functools import cache

import numpy as np

PEDESTAL = 0.05  # black level kept under the signal while demosaicing 16-bit data, so negative noise survives


def site_mask(h: int, w: int, phase: tuple[int, int]) -> np.ndarray:
    """(H, W) channel index of each photosite of an RGGB mosaic whose R site is at `phase`."""
    dy, dx = phase
    yy, xx = np.mgrid[0:h, 0:w]
    ry, rx = (yy + dy) % 2, (xx + dx) % 2
    return np.where((ry == 0) & (rx == 0), 0, np.where((ry == 1) & (rx == 1), 2, 1))


@cache
def bayer_code(phase: tuple[int, int], algo: str) -> int:
    """The OpenCV conversion code that demosaics a mosaic of this phase to RGB (found by testing each)."""
    import cv2

    suffix = {"bilinear": "", "ea": "_EA"}[algo]
    colour = np.array([0.2, 0.5, 0.8])
    raw = colour[site_mask(16, 16, phase)]
    for name in ("BG", "GB", "RG", "GR"):
        code = getattr(cv2, f"COLOR_Bayer{name}2RGB{suffix}")
        out = cv2.cvtColor((raw * 65535).astype(np.uint16), code)[4:-4, 4:-4] / 65535.0
        if np.allclose(out.reshape(-1, 3).mean(axis=0), colour, atol=0.01):
            return code
    raise RuntimeError(f"no OpenCV Bayer code reproduces phase {phase}")


def demosaic_phase(raw: np.ndarray, phase: tuple[int, int], algo: str) -> np.ndarray:
    """(H, W) mosaic, R site at `phase` -> (H, W, 3) by OpenCV ("bilinear" or edge-aware "ea") on 16 bits over
    PEDESTAL, so values a little below 0 and above 1 survive."""
    import cv2

    scale = 1.0 / (1.0 + 2 * PEDESTAL)
    q = np.clip((raw + PEDESTAL) * scale, 0, 1) * 65535 + 0.5
    rgb = cv2.cvtColor(q.astype(np.uint16), bayer_code(phase, algo))
    return rgb.astype(np.float32) / 65535.0 / scale - PEDESTAL
