"""Quality and speed evaluation on synthetic Gaussian noise or real noisy/clean pairs.

Protocol (as the published tables): clean image as float, + N(0, sigma^2) with a fixed seed, the
noisy input is NOT clipped or quantised, the output is clipped, PSNR/SSIM against the clean image.
Any denoise function (ours or a peer's) can be evaluated: fn(noisy HxWxC float 0..1, sigma or None).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from denoiser.core.evaluation.metrics import psnr, ssim
from denoiser.core.io.formats import IMAGE_EXTENSIONS as IMAGE_EXTS
from denoiser.core.io.photo import load_pixels, to_float
from denoiser.core.io.read import NO_MEMORY_LIMIT

DenoiseFn = Callable[[np.ndarray, "float | None"], np.ndarray]


@dataclass
class EvalResult:
    name: str
    psnr: float
    ssim: float
    seconds_per_mp: float
    images: int
    per_image: list[dict] = field(default_factory=list)

    def row(self) -> str:
        return (f"{self.name:<28} {self.psnr:7.2f} dB  SSIM {self.ssim:.4f}  {self.seconds_per_mp:6.2f} s/MP  "
                f"({self.images} images)")


def load_eval_image(path: Path) -> np.ndarray:
    """HxWxC float32 in [0,1] (C = 1 for grey files, 3 for colour; alpha dropped), 8- or 16-bit, upright;
    read as the app reads photos (io.photo.load_pixels). Raises PhotoError (a ValueError)."""
    pixels, bits = load_pixels(path, max_memory=NO_MEMORY_LIMIT)  # one image at a time, of a benchmark set
    return to_float(pixels, bits)


def image_files(folder: Path, limit: int = 0) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ValueError(f"{folder}: no images")
    return files[:limit] if limit else files


def add_gaussian(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (clean + rng.standard_normal(clean.shape).astype(np.float32) * (sigma / 255.0)).astype(np.float32)


def _score(name: str, pairs, fn: DenoiseFn, sigma: float | None) -> EvalResult:
    ps, ss, secs, mps, per = [], [], 0.0, 0.0, []
    for path, clean, noisy in pairs:
        t0 = time.perf_counter()
        out = np.clip(fn(noisy, sigma), 0, 1)
        dt = time.perf_counter() - t0
        secs += dt
        mps += clean.shape[0] * clean.shape[1] / 1e6
        # quantise to 8 bits as a saved photo would be, like the published protocols
        p = psnr(clean * 255, np.round(out * 255), 255)
        s = ssim(clean * 255, np.round(out * 255), 255)
        ps.append(p)
        ss.append(s)
        per.append({"file": path.name, "psnr": round(p, 3), "ssim": round(s, 4), "seconds": round(dt, 3)})
    return EvalResult(name, float(np.mean(ps)), float(np.mean(ss)), secs / max(mps, 1e-9), len(per), per)


def evaluate_synthetic(fn: DenoiseFn, folder: Path, sigma: float, *, blind: bool = False, seed: int = 0,
                       limit: int = 0, grey: bool | None = None, name: str = "") -> EvalResult:
    """Gaussian sigma on every image of a folder; blind=True passes sigma=None (auto strength)."""
    def pairs():
        for i, path in enumerate(image_files(folder, limit)):
            clean = load_eval_image(path)
            if grey is True and clean.shape[2] == 3:
                clean = clean.mean(axis=2, keepdims=True)
            yield path, clean, add_gaussian(clean, sigma, seed * 100_003 + i)
    return _score(name or f"{Path(folder).name} sigma={sigma:g}", pairs(), fn, None if blind else sigma)


def evaluate_pairs(fn: DenoiseFn, noisy_dir: Path, clean_dir: Path, *, limit: int = 0, name: str = "") -> EvalResult:
    """Real noise: files of the same name in noisy_dir and clean_dir; strength estimated (sigma=None)."""
    clean_dir = Path(clean_dir)
    def pairs():
        for path in image_files(noisy_dir, limit):
            match = [p for p in clean_dir.glob(path.stem + ".*") if p.suffix.lower() in IMAGE_EXTS]
            if not match:
                raise FileNotFoundError(f"{path.name}: no clean reference of that name in {clean_dir}")
            yield path, load_eval_image(match[0]), load_eval_image(path)
    return _score(name or f"{Path(noisy_dir).parent.name} real", pairs(), fn, None)
