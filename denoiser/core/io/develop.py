"""A raw's neutral development: linear demosaic, the camera's white balance and colour matrix to linear
sRGB, the DNG's BaselineExposure, the sRGB curve, and nothing else (no auto-brightening, no tone curve, no
sharpening). It is what the window shows for a RAW and what a DNG's preview holds; the denoisers work on
the linear data, never on this rendering.
"""
from __future__ import annotations

import numpy as np

from denoiser.core.io.raw import RawImage

# linear sRGB (D65) -> XYZ
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_R_SITE = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}


def demosaic(cfa: np.ndarray, pattern: str, algo: str = "ea") -> np.ndarray:
    """(H, W) normalised mosaic -> (H, W, 3) linear camera RGB with OpenCV's edge-aware (or bilinear)
    demosaic; negative noise survives (core.bayer keeps a pedestal under the signal)."""
    from denoiser.core.bayer import demosaic_phase

    if pattern not in _R_SITE:
        raise ValueError(f"not a Bayer pattern: {pattern!r}")
    return demosaic_phase(np.asarray(cfa, np.float32), _R_SITE[pattern], algo).astype(np.float32, copy=False)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) -> (H, W): each photosite keeps its own colour (a CFA DNG from a linear result)."""
    out = np.empty(rgb.shape[:2], np.float32)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(pattern[k])]
    return out


def camera_to_srgb(color_matrix: np.ndarray) -> np.ndarray:
    """The 3x3 taking white-balanced camera RGB to linear sRGB, from the XYZ->camera ColorMatrix (dcraw's
    rule: camera-from-sRGB rows normalised so white stays white, then inverted)."""
    cam_rgb = np.asarray(color_matrix, np.float64) @ SRGB_TO_XYZ
    cam_rgb = cam_rgb / cam_rgb.sum(axis=1, keepdims=True)
    return np.linalg.inv(cam_rgb)


def develop_neutral(rgb_cam: np.ndarray, raw: RawImage) -> np.ndarray:
    """(H, W, 3) linear camera RGB (normalised) -> upright (H, W, 3) float32 sRGB 0..1."""
    import torch

    from denoiser.core.colour import linear_to_srgb
    from denoiser.core.io.photo import apply_orientation

    m = camera_to_srgb(raw.color_matrix1) * np.asarray(raw.wb)[None, :] * 2.0 ** raw.baseline_exposure
    out = np.empty(rgb_cam.shape, np.float32)
    for y in range(0, rgb_cam.shape[0], 256):
        block = np.clip(rgb_cam[y:y + 256] @ m.T.astype(np.float32), 0.0, 1.0)
        out[y:y + 256] = linear_to_srgb(torch.from_numpy(np.ascontiguousarray(block))).numpy()
    return apply_orientation(out, raw.orientation)


def develop_raw(raw: RawImage) -> np.ndarray:
    """The neutral development of a raw as it was read (what the window shows before a run)."""
    rgb = raw.rgb if raw.rgb is not None else demosaic(_mosaic_of(raw), raw.pattern)
    return develop_neutral(rgb, raw)


def _mosaic_of(raw: RawImage) -> np.ndarray:
    if raw.cfa is None:
        raise ValueError(f"{raw.path}: holds no mosaic")
    return raw.cfa


def load_view(path, max_megapixels: float = 250.0, max_memory: int | None = None):
    """The photo as the window shows it: a camera raw in its neutral development (camera white balance, no
    auto-brightening; 16-bit, EXIF kept, format "RAW"), any other file as core.io.photo.load_photo reads it.
    A raw this path cannot read (X-Trans...) falls back to LibRaw's development."""
    from pathlib import Path

    from denoiser.core.io.formats import RAW_EXTENSIONS
    from denoiser.core.io.photo import Photo, PhotoError, load_photo
    from denoiser.core.io.raw import UnsupportedRaw, read_raw
    from denoiser.core.io.read import DecodeError

    p = Path(path)
    if p.suffix.lower() not in RAW_EXTENSIONS:
        return load_photo(p, max_megapixels, max_memory)
    try:
        raw = read_raw(p, max_megapixels, max_memory)
    except UnsupportedRaw:
        return load_photo(p, max_megapixels, max_memory)
    except DecodeError as exc:
        raise PhotoError(str(exc)) from None
    from denoiser.core.io import meta

    exif = meta.exif_with_orientation(raw.exif, 1) if raw.exif else None
    return Photo(develop_raw(raw), None, 16, exif, None, None, p, "RAW")
