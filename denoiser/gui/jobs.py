"""Glue run on worker threads: call the core, then turn its pixels into display images.

Each function takes `progress` (a core Progress) last, so workers.Job can call it. Core modules are
imported inside the functions: torch loads on a worker thread, never while the window is starting.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRect

from .display import DisplayImage, Patch, difference_gain, make_difference_display, make_display

if TYPE_CHECKING:
    from denoiser.core.engine import Denoiser
    from denoiser.core.photo import Photo
    from denoiser.core.progress import Progress

GUI_TILE = 1024  # smaller than the engine default: progress moves and Cancel answers sooner
PREVIEW_MARGIN = 24  # context around a preview crop, cut off afterwards (the full run's tiles overlap by 64)


@dataclass
class Catalogue:
    models: list[Any]  # core.registry.ModelEntry
    devices: list[str]


@dataclass
class LoadedPhoto:
    photo: "Photo"
    display: DisplayImage
    seconds: float
    sigma: float | None = None  # estimated noise level (0..255 units), filled in by estimate() afterwards


@dataclass
class DenoiseResult:
    photo: "Photo"
    display: DisplayImage
    difference: DisplayImage
    sigma: float
    seconds: float
    model_name: str
    device_name: str
    notices: list[str]
    gain: float  # amplification of the difference view


@dataclass
class PreviewResult:
    patch: Patch
    difference: Patch
    sigma: float
    seconds: float
    gain: float


def catalogue(progress: "Progress") -> Catalogue:
    """Installed models and usable devices (this is what first imports torch, off the GUI thread)."""
    from denoiser.core.engine import available_devices
    from denoiser.core.registry import list_models

    return Catalogue(list_models(), available_devices())


def load(path: Path, progress: "Progress") -> LoadedPhoto:
    """Decode and prepare the display; the noise estimate is a separate job so the photo shows sooner."""
    from denoiser.core.photo import load_photo

    start = time.monotonic()
    progress.report(0.0, f"Loading {Path(path).name}")
    photo = load_photo(Path(path))
    progress.check_cancelled()
    display = make_display(photo.pixels, photo.icc)
    return LoadedPhoto(photo, display, time.monotonic() - start)


def estimate(cache: "DenoiserCache", photo: "Photo", model: str, device: str, progress: "Progress") -> float | None:
    """The strength Auto uses for this photo (Denoiser.auto_strength: the estimated noise level, calibrated
    for the model on camera noise); the bare estimate while no model is chosen; None when too small."""
    from denoiser.core.noise import estimate_sigma

    try:
        if model:
            return cache.get(model, device).auto_strength(photo.pixels)
        return estimate_sigma(photo.pixels)
    except ValueError:
        return None


class DenoiserCache:
    """Keeps the last loaded model so repeated runs and previews do not reload it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._denoiser: "Denoiser | None" = None

    def get(self, model: str, device: str) -> "Denoiser":
        from denoiser.core.engine import Denoiser

        with self._lock:
            if self._key != (model, device) or self._denoiser is None:
                self._denoiser = None
                self._denoiser = Denoiser.from_name(model, device=device, tile=GUI_TILE)
                self._key = (model, device)
            return self._denoiser

    def clear(self) -> None:
        with self._lock:
            self._key, self._denoiser = None, None


def denoise(cache: DenoiserCache, photo: "Photo", model: str, device: str, sigma: float | None, passes: int,
            progress: "Progress") -> DenoiseResult:
    start = time.monotonic()
    progress.report(0.0, "Loading the model")
    denoiser = cache.get(model, device)
    progress.check_cancelled()
    result, used = denoiser.denoise_photo(photo, sigma, progress, passes)
    progress.report(1.0, "Preparing the display")
    display = make_display(result.pixels, result.icc)
    gain = difference_gain(used)
    diff = make_difference_display(photo.pixels, result.pixels, gain)
    return DenoiseResult(result, display, diff, used, time.monotonic() - start, denoiser.model_name,
                         denoiser.device_name, list(denoiser.notices), gain)


def preview(cache: DenoiserCache, photo: "Photo", rect: QRect, model: str, device: str, sigma: float,
            passes: int, progress: "Progress") -> PreviewResult:
    """Denoise only `rect` (plus a margin of context, cut off again) of the photo."""
    start = time.monotonic()
    denoiser = cache.get(model, device)
    h, w = photo.pixels.shape[:2]
    x0, y0 = max(0, rect.x() - PREVIEW_MARGIN), max(0, rect.y() - PREVIEW_MARGIN)
    x1, y1 = min(w, rect.right() + 1 + PREVIEW_MARGIN), min(h, rect.bottom() + 1 + PREVIEW_MARGIN)
    crop = photo.pixels[y0:y1, x0:x1]
    out = denoiser.denoise(crop, sigma, progress, passes)
    iy, ix = rect.y() - y0, rect.x() - x0
    inner = (slice(iy, iy + rect.height()), slice(ix, ix + rect.width()))
    patch = Patch(make_display(out[inner], photo.icc), QRect(rect))
    gain = difference_gain(sigma)
    diff = Patch(make_difference_display(crop[inner], out[inner], gain), QRect(rect))
    return PreviewResult(patch, diff, sigma, time.monotonic() - start, gain)


def save(photo: "Photo", path: Path, fmt: str, quality: int, overwrite: bool, progress: "Progress") -> Path:
    from denoiser.core.photo import save_photo

    progress.report(0.0, f"Saving {Path(path).name}")
    return save_photo(photo, Path(path), fmt=fmt, quality=quality, overwrite=overwrite)
