"""Fine-tune a model on the user's own folder: clean photos (synthetic noise) or noisy photos only.

Reuses core.training.trainer.Trainer (streaming PatchPool, atomic checkpoints, exact resume). The modes'
trainers live in finetune_modes, the run's typed settings and folder in finetune_run; this module checks a
request, suggests a mode, runs it and publishes the named result in the user's models folder.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from denoiser.core.files import remove_tree_inside, write_problem
from denoiser.core.io.photo import PhotoError, check_photo_header
from denoiser.core.model.file import load_model, save_model
from denoiser.core.model.profiles import folder_profile
from denoiser.core.model.registry import find_model, user_models_dir
from denoiser.core.model.store import runs_dir, validate_name
from denoiser.core.noise import estimate_sigma
from denoiser.core.noise.learned import auto_level
from denoiser.core.progress import NullProgress, Progress, format_duration, time_left
from denoiser.core.training.finetune_modes import TRAINERS, FinetuneTrainer
from denoiser.core.training.finetune_run import FinetuneError as FinetuneError
from denoiser.core.training.finetune_run import (
    FinetuneSpec,
    has_unfinished_run,
    make_config,
    read_spec,
    run_folder,
    write_spec,
)
from denoiser.core.training.finetune_run import discard_run as discard_run  # the callers' one import
from denoiser.core.training.patches import TRAIN_MAX_MEGAPIXELS, centre_crop, list_images, load_rgb8
from denoiser.core.training.selfsup import calibrate_folder, load_native

MODES = ("clean", "noisy", "auto")
NOISY_THRESHOLD = 2.0  # folder noise estimate (0..255) from which "noisy" is suggested (Nam25's noisy photos
# read 2.1-2.3, clean camera photos mostly below 2)


@dataclass
class StepInfo:
    """What the GUI plots: sent after every step (preview arrays only every few steps)."""

    step: int
    fraction: float
    loss: float
    val: float | None = None
    preview_before: np.ndarray | None = None
    preview_after: np.ndarray | None = None


@dataclass
class FinetuneResult:
    name: str
    path: Path
    mode: str
    steps: int
    minutes: float
    val_before: float | None
    val_after: float | None
    val_metric: str
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    mode: str
    sigma: float  # median estimate_sigma over the sampled images, 0..255
    sampled: int
    reason: str


def estimate_folder_sigma(files: list[Path], count: int = 5,
                          estimate: Callable[[np.ndarray], float] | None = None) -> tuple[float, int]:
    """Median noise level on up to `count` 512 px centre crops: `estimate` (default: the classical PCA
    estimate, which tells clean from noisy folders; auto_level gives the level Auto will feed the model)."""
    estimate = estimate or (lambda img: estimate_sigma(img, max_patches=20000))
    values = []
    step = max(1, len(files) // count)
    for path in files[::step][:count * 2]:
        try:
            img = centre_crop(load_native(path), 512)
            values.append(estimate(img.astype(np.float32) / 255.0))
        except (ValueError, OSError, cv2.error):
            continue
        if len(values) >= count:
            break
    if not values:
        raise FinetuneError(f"none of the sampled images in {files[0].parent} could be read")
    return float(np.median(values)), len(values)


def suggest_mode(folder: Path) -> Suggestion:
    """Suggest clean or noisy from the folder's noise level (estimate_sigma on a few images).

    Only a hint: camera noise is spatially correlated, which this estimator still reads at about half its
    per-pixel std, so a mildly noisy folder can still be suggested as clean; the user picks the mode.
    """
    return _suggest(_images(folder))


def _suggest(files: list[Path]) -> Suggestion:
    sigma, n = estimate_folder_sigma(files)
    mode = "noisy" if sigma >= NOISY_THRESHOLD else "clean"
    return Suggestion(mode, sigma, n, f"estimated noise {sigma:.1f} on {n} images "
                                      f"({'at or above' if mode == 'noisy' else 'below'} {NOISY_THRESHOLD:g})")


def _images(folder: Path) -> list[Path]:
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise FinetuneError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise FinetuneError(f"{folder}: not a folder")
    files = list_images([folder])
    if not files:
        raise FinetuneError(f"{folder}: no images found (looked for .jpg .png .tif .webp .bmp, in subfolders too)")
    return files


def prescan(files: list[Path]) -> dict[str, str]:
    """Cheap header check of every file (io.photo's own refusals), so unreadable ones are listed even if
    never drawn."""
    bad: dict[str, str] = {}
    for path in files:
        try:
            check_photo_header(path, max_megapixels=TRAIN_MAX_MEGAPIXELS)
        except PhotoError as exc:
            bad[str(path)] = str(exc)
    return bad


class _Hook:
    """Wraps the caller's Progress: adds ETA to the message and feeds on_step (loss, previews)."""

    def __init__(self, trainer: FinetuneTrainer, progress: Progress, on_step: Callable[[StepInfo], None] | None,
                 preview: tuple[torch.Tensor, float] | None, preview_every: int) -> None:
        self.trainer, self.progress, self.on_step = trainer, progress, on_step
        self.preview, self.preview_every = preview, max(1, preview_every)
        self.before = _to_image(preview[0]) if preview is not None else None

    def report(self, fraction: float, message: str = "") -> None:
        t = self.trainer
        left = time_left(t.elapsed, fraction)
        if left is not None:
            message = f"{message} ETA {format_duration(left)}"
        self.progress.report(fraction, message)
        if self.on_step is None or not t.history:
            return
        last = t.history[-1]
        info = StepInfo(t.step, fraction, float(last.get("loss", float("nan"))), last.get("val_psnr"))
        if self.preview is not None and (t.step % self.preview_every == 0 or t.step == 1):
            info.preview_before, info.preview_after = self.before, self.after()
        self.on_step(info)

    def after(self) -> np.ndarray:
        assert self.preview is not None  # report() asks only when there is a preview
        crop, sigma = self.preview
        with torch.inference_mode():
            out = self.trainer.ema(crop.to(self.trainer.device), torch.tensor([sigma], device=self.trainer.device))
        return _to_image(out.clamp(0, 1).cpu())

    def check_cancelled(self) -> None:
        self.progress.check_cancelled()


def _to_image(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32))


def _preview_crop(files: list[Path], mode: str, sigma: float, multiple: int) -> tuple[torch.Tensor, float] | None:
    """A fixed crop to show before/after: the real photo (noisy mode) or it plus fixed noise (clean)."""
    side = max(multiple, 128 // multiple * multiple)
    for path in files:
        try:
            img = load_native(path) if mode == "noisy" else load_rgb8(path, 2)
        except (ValueError, OSError, cv2.error):
            continue
        if min(img.shape[:2]) < side:
            continue
        crop = torch.from_numpy(centre_crop(img, side).astype(np.float32) / 255).permute(2, 0, 1)[None]
        if mode == "clean":
            gen = torch.Generator().manual_seed(7)
            crop = crop + torch.randn(crop.shape, generator=gen) * sigma / 255
        return crop, sigma
    return None


def _new_spec(folder: Path, mode: str, name: str, base_model: str | None, minutes: float, steps: int,
              sigma: float | None, noisy_sample: Path | None, threads: int, seed: int,
              progress: Progress) -> FinetuneSpec:
    name = validate_name(name)
    if has_unfinished_run(name):
        raise FinetuneError(f"an unfinished run named {name!r} exists: resume it or discard it first")
    if not math.isfinite(minutes) or minutes < 0 or steps < 0:
        raise FinetuneError(f"the time budget and the number of steps must be 0 or more, got {minutes} min "
                            f"and {steps} steps")
    if minutes <= 0 and steps <= 0:
        raise FinetuneError("give a time budget in minutes or a number of steps")
    if mode not in MODES:
        raise FinetuneError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    base = find_model(base_model)  # an unknown model is refused before the folder is scanned
    files = _images(folder)
    bad = prescan(files)
    if len(bad) == len(files):
        raise FinetuneError(f"{folder}: none of the {len(files)} images could be read")
    good = [f for f in files if str(f) not in bad]
    suggestion = _suggest(files) if mode == "auto" else None  # the folder's listing from above, not a second walk
    mode = suggestion.mode if suggestion else mode
    if mode == "clean":
        (sigma, source), target = _clean_level(sigma, noisy_sample), None
    else:  # noisy: sigma is the level the engine will measure; the user's value is a strength target
        target, source = (float(sigma) if sigma is not None else None), "folder estimate"
        sigma = estimate_folder_sigma(good, estimate=auto_level)[0]
    if not 0 <= sigma <= 255:
        raise FinetuneError(f"noise level must be in 0..255, got {sigma}")
    calibration: dict[str, Any] = {}
    if mode == "noisy":
        progress.report(0.0, "Measuring your photos' noise (before the time budget starts)…")
        try:
            calibration = calibrate_folder(good, base.path, progress)
        except ValueError as exc:
            raise FinetuneError(f"{folder}: {exc}") from exc
        progress.check_cancelled()
    cfg = make_config(base.card, mode, sigma, minutes, steps, threads, seed)
    return FinetuneSpec(name=name, mode=mode, folder=str(Path(folder).expanduser().resolve()),
                        base_model=base.name, base_path=str(base.path), sigma=sigma, sigma_source=source,
                        config=cfg, target_sigma=target, suggestion=suggestion.reason if suggestion else None,
                        skipped=bad, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **calibration)


def _clean_level(sigma: float | None, noisy_sample: Path | None) -> tuple[float, str]:
    """Clean mode's level and its source: the user's, else what Auto measures on a sample noisy photo, else 25."""
    if sigma is not None or noisy_sample is None:
        return (25.0, "default") if sigma is None else (float(sigma), "user")
    try:
        sample = load_rgb8(Path(noisy_sample), jpeg_downscale=1, max_side=1 << 30)
    except (ValueError, OSError, cv2.error) as exc:
        raise FinetuneError(f"sample noisy photo {noisy_sample}: {exc}") from exc
    return auto_level(centre_crop(sample, 1024).astype(np.float32) / 255), str(noisy_sample)


def _leaves_no_empty_run(fn: Callable[..., FinetuneResult]) -> Callable[..., FinetuneResult]:
    """A new run first proves the models and runs folders writable, and one that fails or is stopped
    before its first checkpoint leaves no run folder behind (a checkpointed run keeps its own, to resume)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> FinetuneResult:
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        if call.arguments["resume"]:
            return fn(*args, **kwargs)
        folder = run_folder(call.arguments["name"])
        for where in (runs_dir(), user_models_dir()):
            problem = write_problem(where)
            if problem:
                raise FinetuneError(f"the user data folder cannot take a new model: {problem}")
        existed = folder.exists()
        try:
            return fn(*args, **kwargs)
        except BaseException:
            if not existed and folder.is_dir() and not (folder / "checkpoint.pt").exists():
                remove_tree_inside(folder, runs_dir())
            raise

    return wrapper


@_leaves_no_empty_run
def finetune(folder: Path | str, mode: str = "auto", name: str = "", base_model: str | None = None,
             minutes: float = 10.0, steps: int = 0, device: str = "auto", resume: bool = False,
             progress: Progress | None = None, sigma: float | None = None, noisy_sample: Path | None = None,
             threads: int | None = None, seed: int = 0, on_step: Callable[[StepInfo], None] | None = None,
             preview_every: int = 10) -> FinetuneResult:
    """Fine-tune `base_model` on `folder`; the result is the user model `name`.

    Cancel (progress.check_cancelled raising Cancelled) leaves a checkpoint; resume=True continues
    that same run (step, optimiser, RNG and patch pool restored; the saved settings win).
    """
    progress = progress or NullProgress()
    threads = threads or os.cpu_count() or 1
    if resume:
        spec = read_spec(name)
    else:
        spec = _new_spec(Path(folder), mode, name, base_model, minutes, steps, sigma, noisy_sample, threads, seed,
                         progress)
    cfg = replace(spec.config, threads=threads)
    trainer_class = TRAINERS[spec.mode]
    progress.report(0.0, "Reading the photos and scoring the starting model…")
    try:
        trainer = trainer_class(cfg, spec, run_folder(spec.name), device,
                                card_extra=spec.card_extra(trainer_class.method(spec)))
    except (FileNotFoundError, ValueError) as exc:
        raise FinetuneError(str(exc)) from exc
    if not resume:
        spec = replace(spec, val_before=trainer.validate())
        write_spec(spec)
    preview = _preview_crop(trainer.val_files + trainer.train_files[:4], spec.mode, spec.sigma,
                            cfg.model.size_multiple)
    hook = _Hook(trainer, progress, on_step, preview, preview_every)
    try:
        out = trainer.train(resume=resume, progress=hook)
    except ValueError as exc:
        if isinstance(exc, FinetuneError):
            raise
        raise FinetuneError(str(exc)) from exc
    return _publish(spec, trainer, out)


def _publish(spec: FinetuneSpec, trainer: FinetuneTrainer, out: dict[str, Any]) -> FinetuneResult:
    """Copy the run's model into the user's models folder with the full card; drop the checkpoint."""
    name, mode = spec.name, spec.mode
    model, card = load_model(Path(out["model"]))
    metric = f"val_psnr_sigma{spec.sigma:g}" if mode == "clean" else "val_matched_noise_psnr"
    skipped = {**spec.skipped, **out["skipped"]}
    card.name = name
    card.description = f"Fine-tuned from {spec.base_model} on {spec.folder} ({mode} photos)"
    card.training.update({"images": len(trainer.train_files) + len(trainer.val_files),
                          "skipped_images": len(skipped), "validation_metric": metric})
    camera = folder_profile(trainer.train_files + trainer.val_files)  # the camera profile (model.profiles)
    if camera is not None:
        card.training["camera"] = camera
    card.metrics = {"validation": metric, "val_before": spec.val_before, "val_after": out["val_psnr"]}
    if mode == "clean" and out["val_psnr"] is not None:
        card.metrics[metric] = out["val_psnr"]
    dest = user_models_dir() / f"{name}.safetensors"
    save_model(dest, model, card)
    write_spec(replace(spec, finished=card.created, history=trainer.history))
    for leftover in (trainer.checkpoint_path, Path(out["model"]), Path(out["model"]).with_suffix(".json")):
        leftover.unlink(missing_ok=True)  # the published copy is the model; keep only the run's settings
    return FinetuneResult(name, dest, mode, out["steps"], out["minutes"], spec.val_before, out["val_psnr"],
                          metric, skipped)
