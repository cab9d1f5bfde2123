"""Tiny synthetic camera raws for the tests: a minimal CFA DNG written with plain tifffile (not the app's DNG
writer), so reading and writing are checked against each other and against LibRaw, never against themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

CFA_CODE = {"R": 0, "G": 1, "B": 2}
XYZ_TO_CAM = ((0.8, -0.2, -0.1), (-0.4, 1.2, 0.2), (-0.1, 0.2, 0.7))


def _srational(values) -> tuple[int, ...]:
    out: list[int] = []
    for v in np.ravel(values):
        out += [int(round(v * 10000)), 10000]
    return tuple(out)


def clean_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth scene with flat patches (normalised 0..~0.8 linear camera RGB, (h, w, 3))."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], float)[:, None, None]
    base = 0.75 * xx ** 2 * (0.5 + 0.5 * yy)
    rgb = np.dstack([base * 0.6, base, base * 0.8])
    for _ in range(6):
        y0, x0 = rng.integers(0, max(1, h - h // 4)), rng.integers(0, max(1, w - w // 4))
        rgb[y0:y0 + h // 5, x0:x0 + w // 5] = rng.uniform(0.02, 0.7, 3)
    return rgb


def bayer(rgb: np.ndarray, pattern: str) -> np.ndarray:
    out = np.empty(rgb.shape[:2])
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(pattern[k])]
    return out


def write_cfa_dng(path: Path, mosaic01: np.ndarray, pattern: str = "RGGB", black: int = 256, white: int = 4095,
                  neutral: tuple[float, float, float] = (0.5, 1.0, 0.625), orientation: int = 1,
                  noise_profile: tuple[float, ...] | None = None, omit: tuple[int, ...] = (),
                  make: str = "TestMaker", extra: tuple[tuple, ...] = ()) -> Path:
    """A minimal DNG 1.4 holding one 16-bit CFA image (IFD0 is the raw). `mosaic01` is normalised 0..1."""
    data = np.clip(np.rint(mosaic01 * (white - black) + black), 0, 65535).astype(np.uint16)
    tags = [
        (271, 2, None, make + "\0", True), (272, 2, None, "Model X\0", True),
        (274, 3, 1, orientation, True),
        (33421, 3, 2, (2, 2), True), (33422, 1, 4, bytes(CFA_CODE[c] for c in pattern), True),
        (50706, 1, 4, bytes((1, 4, 0, 0)), True), (50708, 2, None, f"{make} Model X\0", True),
        (50714, 3, 1, black, True), (50717, 3, 1, white, True),
        (50721, 10, 9, _srational(XYZ_TO_CAM), True), (50778, 3, 1, 21, True),
        (50728, 5, 3, tuple(v for n in neutral for v in (int(n * 10000), 10000)), True),
    ]
    if noise_profile is not None:
        tags.append((51041, 12, len(noise_profile), tuple(noise_profile), True))
    tags = [t for t in tags if t[0] not in omit] + list(extra)
    tifffile.imwrite(path, data, photometric=32803, subfiletype=0, extratags=tags, software=False, metadata=None)
    return path
