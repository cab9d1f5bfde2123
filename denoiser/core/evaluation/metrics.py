"""PSNR and SSIM on float images in [0, 1] (HxW or HxWxC)."""
from __future__ import annotations

import cv2
import numpy as np


def psnr(clean: np.ndarray, test: np.ndarray, peak: float = 1.0) -> float:
    clean = np.asarray(clean, np.float64)
    test = np.asarray(test, np.float64)
    if clean.shape != test.shape:
        raise ValueError(f"shape mismatch {clean.shape} vs {test.shape}")
    mse = float(np.mean((clean - test) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim(clean: np.ndarray, test: np.ndarray, peak: float = 1.0) -> float:
    """Gaussian-window SSIM (Wang et al. 2004), averaged over channels."""
    a = np.asarray(clean, np.float64)
    b = np.asarray(test, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        def blur(im: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(im, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(float(m[5:-5, 5:-5].mean()))
    return float(np.mean(vals))
