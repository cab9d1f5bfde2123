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

from denoiser.gui.display import DisplayImage, Patch, difference_gain, make_difference_display, make_display

if TYPE_CHECKING:
    import numpy as np

    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.io.photo import Photo
    from denoiser.core.noise.level import NoiseLevel
    from denoiser.core.progress import Progress
    from denoiser.gui.workers import SignalProgress

GUI_TILE = 512  # interactive runs: one tile takes well under a second on a 2-core CPU, so Cancel answers
# within a second (the overlap costs ~15 % more work than 1024 px tiles)
PREVIEW_MARGIN = 24  # context around a preview crop, cut off afterwards (the full run's tiles overlap by 64)


@dataclass
class Catalogue:
    models: list[Any]  # core.model.registry.ModelEntry
    devices: list[str]


@dataclass
class LoadedPhoto:
    photo: Photo
    display: DisplayImage
    seconds: float
    sigma: NoiseLevel | None = None  # Auto's level (map, mean), filled in by estimate() afterwards
    estimated: bool = False  # the estimate has finished (sigma None then: the photo is too small to tell)


@dataclass
class DenoiseResult:
    photo: Photo
    display: DisplayImage
    difference: DisplayImage
    sigma: NoiseLevel
    seconds: float
    model_name: str
    device_name: str
    notices: list[str]
    gain: float  # amplification of the difference view
    passes: int = 1
    controls: Any = None  # core.inference.controls.Controls applied (luminance, colour, detail)
    detail_map: DisplayImage | None = None  # where the removed signal has structure (core.inference.detail_map)
    detail_score: float | None = None  # % of the photo flagged on that map
    precision: str = "fp32"  # what the engine ran in (Denoiser.precision): "fp32" | "int8"

    def settings(self) -> tuple[str, float, int, Any, str]:
        """(model, strength, passes, controls, precision): what made these pixels; compared with what the
        window shows."""
        return self.model_name, round(float(self.sigma), 3), self.passes, self.controls, self.precision


@dataclass
class PreviewResult:
    patch: Patch
    difference: Patch
    sigma: NoiseLevel
    seconds: float
    gain: float
    detail_map: Patch | None = None  # the removed-detail map of the region
    detail_score: float | None = None  # % of the region flagged on that map
    precision: str = "fp32"  # what the engine ran in (Denoiser.precision)


def catalogue(progress: Progress) -> Catalogue:
    """Installed models and usable devices (this is what first imports torch, off the GUI thread)."""
    from denoiser.core.inference.engine import available_devices
    from denoiser.core.model.foreign import community_entries
    from denoiser.core.model.registry import list_models

    return Catalogue(list_models() + community_entries(), available_devices())


def engine_for(cache: DenoiserCache, model: str, device: str, photo: Photo, precision: str = "fp32") -> Denoiser:
    """The engine for `model` at `precision` ("int8": its INT8 build, or an error saying there is none); "auto"
    is the camera profile matching the photo's EXIF, else the default."""
    from denoiser.core.model.profiles import AUTO_MODEL, choose_model
    from denoiser.core.model.registry import DEFAULT_MODEL_NAME

    if model == AUTO_MODEL:
        model = choose_model(model, photo.exif).model or DEFAULT_MODEL_NAME
    return cache.get(model, device, precision)


def load(path: Path, progress: Progress) -> LoadedPhoto:
    """Decode and prepare the display; the noise estimate is a separate job so the photo shows sooner."""
    from denoiser.core.io.develop import load_view

    start = time.monotonic()
    progress.report(0.0, f"Loading {Path(path).name}")
    photo = load_view(Path(path))  # a camera raw: its neutral development (camera white balance, no brightening)
    progress.check_cancelled()
    display = make_display(photo.pixels, photo.icc)
    return LoadedPhoto(photo, display, time.monotonic() - start)


def estimate(cache: DenoiserCache, photo: Photo, model: str, device: str,
             progress: Progress) -> NoiseLevel | None:
    """The strength Auto uses for this photo (Denoiser.auto_strength: the estimated noise level, calibrated
    for the model on camera noise); the bare estimate while no model is chosen; None when too small."""
    from denoiser.core.noise import estimate_sigma
    from denoiser.core.noise.estimation import TooSmallToEstimate
    from denoiser.core.noise.level import NoiseLevel

    try:
        if model:
            return engine_for(cache, model, device, photo).auto_strength(photo.pixels)
        return NoiseLevel.auto(None, mean=estimate_sigma(photo.pixels))
    except TooSmallToEstimate:  # any other failure (a damaged model or estimator) reaches the error handler
        return None


class DenoiserCache:
    """Keeps the last loaded model so repeated runs and previews do not reload it. One cache per lane:
    a Denoiser is mutable (its out-of-memory fallback swaps device and model), so two lanes never share one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str, str] | None = None  # (model, device, precision)
        self._denoiser: Denoiser | None = None

    @property
    def key(self) -> tuple[str, str, str] | None:
        """(model, device, precision) of the engine held; None when none is."""
        return self._key

    def get(self, model: str, device: str, precision: str = "fp32") -> Denoiser:
        from denoiser.core.inference.engine import open_denoiser

        with self._lock:
            if self._key != (model, device, precision) or self._denoiser is None:
                self._denoiser = None  # ours or a community one
                self._denoiser = open_denoiser(model, device=device, tile=GUI_TILE, precision=precision)
                self._key = (model, device, precision)
            return self._denoiser

    def clear(self) -> None:
        with self._lock:
            self._key, self._denoiser = None, None


def denoise(cache: DenoiserCache, photo: Photo, model: str, device: str, sigma: NoiseLevel | float | None,
            passes: int,
            progress: Progress, controls: Any = None, precision: str = "fp32") -> DenoiseResult:
    """The whole photo, with the luminance/colour/detail controls (core.inference.controls.Controls; None: plain),
    the network at `precision` (Quality Fast: "int8")."""
    from denoiser.core.inference import controls as tone

    start = time.monotonic()
    progress.report(0.0, "Loading the model")
    denoiser = engine_for(cache, model, device, photo, precision)
    progress.check_cancelled()
    controls = controls or tone.Controls()
    result, used = tone.denoise_photo(denoiser, photo, sigma, controls, progress, passes)
    progress.report(1.0, "Preparing the display")
    display = make_display(result.pixels, result.icc)
    gain = difference_gain(float(used))
    diff = make_difference_display(photo.pixels, result.pixels, gain)
    dmap, score = detail_map_display(photo.pixels, result.pixels)
    return DenoiseResult(result, display, diff, used, time.monotonic() - start, denoiser.model_name,
                         denoiser.device_name, list(denoiser.notices), gain, passes, controls, dmap, score,
                         denoiser.precision)


def detail_map_display(noisy: np.ndarray, denoised: np.ndarray,
                       inner: tuple[slice, slice] | None = None) -> tuple[DisplayImage, float]:
    """The removed-detail map over the denoised photo and its score: magenta exactly where a pixel is flagged
    (core.inference.detail_map.FLAG_LEVEL), grey elsewhere, so the score is the magenta share of what is shown;
    `inner` cuts a region out after the map is made (a preview's context margin), and the score is the region's."""
    import numpy as np

    from denoiser.core.inference.detail_map import FLAG_LEVEL, DetailReport, removed_detail_map

    flagged = removed_detail_map(noisy, denoised) > FLAG_LEVEL
    flagged, denoised = (flagged[inner], denoised[inner]) if inner else (flagged, denoised)
    score = float(100.0 * np.mean(flagged)) if flagged.size else 0.0
    overlay = DetailReport(flagged.astype(np.float32), score).overlay(denoised)
    return make_display(overlay.astype(np.float32) / np.float32(255)), score


def preview(cache: DenoiserCache, photo: Photo, rect: QRect, model: str, device: str,
            sigma: NoiseLevel | float,
            passes: int, progress: Progress, controls: Any = None, precision: str = "fp32") -> PreviewResult:
    """Denoise only `rect` (plus a margin of context, cut off again) of the photo, with the controls."""
    from denoiser.core.inference import controls as tone
    from denoiser.core.noise.level import as_level

    start = time.monotonic()
    denoiser = engine_for(cache, model, device, photo, precision)
    h, w = photo.pixels.shape[:2]
    x0, y0 = max(0, rect.x() - PREVIEW_MARGIN) // 2 * 2, max(0, rect.y() - PREVIEW_MARGIN) // 2 * 2
    x1, y1 = min(w, rect.right() + 1 + PREVIEW_MARGIN), min(h, rect.bottom() + 1 + PREVIEW_MARGIN)
    crop = photo.pixels[y0:y1, x0:x1]
    level = as_level(sigma).window(y0, x0, y1, x1)  # Auto: the region's own part of the photo's map
    out = denoiser.denoise(crop, level, progress, passes)
    if controls is not None and not controls.plain:
        out = tone.controlled(crop, out, float(level), controls, lambda img, s: denoiser.denoise(img, s, None, passes))
    iy, ix = rect.y() - y0, rect.x() - x0
    inner = (slice(iy, iy + rect.height()), slice(ix, ix + rect.width()))
    patch = Patch(make_display(out[inner], photo.icc), QRect(rect))
    gain = difference_gain(float(level))
    diff = Patch(make_difference_display(crop[inner], out[inner], gain), QRect(rect))
    dmap, score = detail_map_display(crop, out, inner)
    return PreviewResult(patch, diff, level, time.monotonic() - start, gain, Patch(dmap, QRect(rect)), score,
                         denoiser.precision)


def save_note(result: DenoiseResult) -> dict[str, str]:
    """What the saved file's XMP records about how it was made."""
    from denoiser.core.inference import controls as tone

    return tone.note(result.model_name, result.sigma, result.passes, result.controls or tone.Controls(),
                     result.precision)


def save(result: DenoiseResult, path: Path, fmt: str, quality: int, overwrite: bool, progress: Progress) -> Path:
    """Write the result atomically, its XMP noting the model, strength, passes and precision that made it."""
    import dataclasses

    from denoiser.core.io.meta import xmp_with_note
    from denoiser.core.io.photo import save_photo

    progress.report(0.0, f"Saving {Path(path).name}")
    if Path(path).suffix.lower() == ".dng":  # a camera raw's denoised raw: made from the mosaic itself
        return save_dng(result, Path(path), overwrite, progress)
    photo = dataclasses.replace(result.photo, xmp=xmp_with_note(result.photo.xmp, save_note(result)))
    return save_photo(photo, Path(path), fmt=fmt, quality=quality, overwrite=overwrite)


def save_dng(result: DenoiseResult, path: Path, overwrite: bool, progress: Progress) -> Path:
    """Denoise the raw behind the window's photo into a linear DNG (core.inference.raw_path) with the model,
    strength scale, passes and controls of the window's run."""
    from denoiser.core.inference.engine import open_denoiser
    from denoiser.core.inference.raw_path import RawOptions, raw_to_dng

    level = result.sigma
    options = RawOptions(strength_scale=level.scale if level.is_auto else 1.0, controls=result.controls,
                         passes=result.passes, fixed_sigma=None if level.is_auto else level.sigma)
    engine = open_denoiser(result.model_name or None)
    return raw_to_dng(result.photo.source, path, options, engine, progress, overwrite).output


def batch(options: Any, progress: SignalProgress, cluster: str = "") -> Any:
    """A folder job (core.batch); posts 'planned' (items), 'file' ((index, item)) and 'file_progress'.
    Items are sent as copies: the core keeps mutating its own. `cluster` ("local:N" or a Dask scheduler's
    address; "" = this machine) runs the photos there (core.batch.cluster), checked before planning."""
    import dataclasses

    from denoiser.core.batch.runner import plan_batch, run_batch

    spec = None
    if cluster:
        from denoiser.core.batch.cluster import ClusterSpec, check_reachable

        spec = ClusterSpec.parse(cluster)
        check_reachable(spec)
    plan = plan_batch(options)
    progress.post("planned", [dataclasses.replace(i) for i in plan.items])
    callbacks: dict[str, Any] = {
        "on_file": lambda k, _n, item: progress.post("file", (k, dataclasses.replace(item))),
        "on_file_progress": lambda f: progress.post("file_progress", f)}
    if spec is None or not plan.todo:
        return run_batch(options, progress=progress, plan=plan, **callbacks)
    from denoiser.core.batch.cluster import run_batch_on_cluster

    return run_batch_on_cluster(spec, options, plan, progress=progress, **callbacks)


def finetune(kwargs: dict[str, Any], progress: SignalProgress) -> Any:
    """core.training.finetune.finetune; posts 'step' (core.training.finetune.StepInfo) after every training step."""
    from denoiser.core.training.finetune import finetune as run

    return run(progress=progress, on_step=lambda info: progress.post("step", info), **kwargs)


def suggest_mode(folder: str, progress: Progress) -> Any:
    """The fine-tune mode suggested for a folder (reads a few photos)."""
    from denoiser.core.training.finetune import suggest_mode as suggest

    return suggest(Path(folder))
