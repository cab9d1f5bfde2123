"""Self-supervised fine-tuning on noisy photos only (no clean references): self-distillation with the
folder's own noise.

Real camera noise is spatially correlated (Nam25, noisy - reference: correlation 0.72 at lag 1, 0.43 at
lag 2, 0.19 at lag 4), which breaks the independence that Neighbor2Neighbor-style losses need, also on
pixel-shuffle-downsampled sub-images. What the base model lacks on such photos is not a new skill but the
right strength: the level the estimator reads on correlated noise drives it too gently.

So noisy mode learns the folder's noise from the folder itself:
1. training.calibration.measure_noise: the base run at a strong setting leaves the noise behind in flat areas
   of (noisy - denoised); its spatial spectrum and channel covariance relative to Auto's noise map (camera
   noise grows with brightness; the map follows it) make a NoiseModel;
2. training.calibration.calibrate_strength: that noise re-synthesised onto the base output gives pairs with a
   known answer; the strength gain (x Auto's map) that restores them best is this camera's gain (median over
   the folder);
3. training.noise_bank.NoiseBank: the base at Auto's map leaves, in the flattest windows of (noisy - denoised),
   the camera's own noise (its demosaicing correlation, chroma and JPEG/ISP character): a bounded bank of real
   noise crops relative to the map;
4. training.finetune_modes.NoisyFinetuneTrainer trains the model to do, at the map Auto measures on each crop
   (what the app will feed it), what the base does at that map (on the real photos), and to remove fresh noise at
   that map from the pseudo-clean outputs: by default crops drawn from the bank (another position or photo), or
   the NoiseModel's synthetic noise scaled down by the gain (the gain measures how much harder the synthetic
   noise is than the real noise it was measured from), with a weight anchor (L2-SP, Li et al. 2018) to the base.
The references are never used; the benchmark scores against them only.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from denoiser.core.noise.learned import auto_map
from denoiser.core.noise.level import NoiseLevel
from denoiser.core.progress import NullProgress, Progress
from denoiser.core.training.calibration import CALIBRATION_GAINS, CALIBRATION_SIDE, calibrate_strength
from denoiser.core.training.patches import PatchPool, centre_crop, load_rgb8

log = logging.getLogger(__name__)

NOISY_MAX_SIDE = 2048  # noisy photos are centre-cropped (never resized: that would change the noise)
CALIBRATION_PHOTOS = 6  # photos (CALIBRATION_SIDE centre crops) the strength calibration looks at


def weight_anchor(model: torch.nn.Module, reference: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared distance of the weights from the base model's (L2-SP)."""
    total = torch.stack([((p - r) ** 2).sum() for p, r in zip(model.parameters(), reference, strict=True)]).sum()
    return total / sum(r.numel() for r in reference)


def load_native(path: Path) -> np.ndarray:
    """Noisy photos at their native scale (no JPEG downscale), centre-cropped to bound memory."""
    return centre_crop(load_rgb8(path, jpeg_downscale=1, max_side=1 << 30), NOISY_MAX_SIDE)


class NativePatchPool(PatchPool):
    """PatchPool that keeps noisy photos at native scale (the noise must not be resampled)."""

    def _load(self, i: int) -> np.ndarray | None:
        path = self.files[i]
        if str(path) in self.skipped:
            return None
        try:
            img = load_native(path)
        except (ValueError, OSError, cv2.error) as exc:
            self.skipped[str(path)] = str(exc)
            return None
        if min(img.shape[:2]) < self.min_side:
            self.skipped[str(path)] = f"{path}: smaller than {self.min_side} px"
            return None
        return img


def native_val_crops(files: list[Path], side: int, multiple: int) -> list[torch.Tensor]:
    """Centre crops (1, C, H, W) of up to `side` px, a multiple of `multiple`, of the held-out noisy photos."""
    crops = []
    for path in files:
        try:
            img = load_native(path)
        except (ValueError, OSError, cv2.error):
            continue
        c = min(side, min(img.shape[:2]) // multiple * multiple)
        if c < multiple:
            continue
        crops.append(torch.from_numpy(centre_crop(img, c).astype(np.float32) / 255).permute(2, 0, 1)[None])
    return crops


def bank_photos(files: list[Path], side: int, count: int = 16) -> list[np.ndarray]:
    """Centre crops (HxWxC float32 in [0,1]) of up to `side` px of up to `count` readable photos spread over
    `files`: what the calibration measures and noise_bank.NoiseBank is cut from."""
    photos = []
    for path in files[::max(1, len(files) // count)]:
        try:
            photos.append(centre_crop(load_native(path), side).astype(np.float32) / 255)
        except (ValueError, OSError, cv2.error):
            continue
        if len(photos) >= count:
            break
    return photos


def calibrate_folder(files: list[Path], base_path: Path, progress: Progress | None = None) -> dict[str, Any]:
    """The folder's noise model and strength gain (calibration.calibrate_strength) on a few of its photos.

    Reports after each run of the base model and honours Cancel between them (this phase comes before the
    training's time budget). Raises ValueError when none of the sampled photos is readable and at least 64 px.
    Runs at the process's torch thread count, which the entry point (CLI, window) sets once.
    """
    progress = progress or NullProgress()
    from denoiser.core.inference.engine import Denoiser

    crops = [c for c in bank_photos(files, CALIBRATION_SIDE, CALIBRATION_PHOTOS) if min(c.shape[:2]) >= 64]
    if not crops:
        raise ValueError("no photo of at least 64 px to measure the noise on")
    base = Denoiser.from_file(base_path, device="cpu")
    runs, done = len(crops) * (1 + len(CALIBRATION_GAINS)), [0]

    def denoise(img: np.ndarray, level: np.ndarray) -> np.ndarray:
        progress.check_cancelled()
        progress.report(done[0] / runs, "Measuring your photos' noise (before the time budget starts)…")
        done[0] += 1
        return base.denoise(img, NoiseLevel.auto(level.astype(np.float32)))

    gain, model, details = calibrate_strength(denoise, crops, auto_map)
    log.info("noisy-mode calibration: gain %.2f, noise std %.2f on %d photos", gain, model.std, len(crops))
    return {"strength_gain": gain, "noise_model": model.to_dict(), "calibration": details}
