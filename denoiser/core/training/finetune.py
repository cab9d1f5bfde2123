"""Fine-tune a model on the user's own folder: clean photos (synthetic noise) or noisy photos only.

Reuses core.training.Trainer (streaming PatchPool, atomic checkpoints, exact resume); this module
adds the two modes' losses, a bounded small config, a mode suggestion, and the named result in the
user's models folder. The run folder is user_data_path()/runs/<name>.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.files import atomic_write_bytes
from denoiser.core.model.file import ModelCard, load_model, save_model
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.model.network import UNetDenoiser, build_model
from denoiser.core.noise import NoiseConfig, estimate_sigma
from denoiser.core.noise.learned import auto_level
from denoiser.core.training.patches import PatchPool, centre_crop, list_images, load_rgb8
from denoiser.core.progress import NullProgress, Progress
from denoiser.core.model.registry import find_model, user_models_dir
from denoiser.core.model.profiles import folder_profile
from denoiser.core.model.store import ModelStoreError, check_name, runs_dir, validate_name
from denoiser.core.files import UnsafePathError, remove_tree_inside, write_problem
from denoiser.core.training.calibration import NoiseModel
from denoiser.core.training.selfsup import NativePatchPool, calibrate_folder, load_native, native_val_crops, weight_anchor
from denoiser.core.training.trainer import TrainConfig, Trainer

log = logging.getLogger(__name__)

MODES = ("clean", "noisy", "auto")
NOISY_THRESHOLD = 2.0  # folder noise estimate (0..255) from which "noisy" is suggested (Nam25's noisy photos
# read 2.1-2.3, clean camera photos mostly below 2)


class FinetuneError(ValueError):
    """A fine-tuning request that cannot run; the message says why in one line."""


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
    """Cheap header check of every file, so unreadable ones are listed even if never drawn."""
    from PIL import Image, UnidentifiedImageError

    bad: dict[str, str] = {}
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    im.verify()
        except Image.DecompressionBombError:
            continue  # a real image, only very large: the loaders (OpenCV) read it and scale or crop it
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            bad[str(path)] = f"{path}: not a readable image ({exc.__class__.__name__})"
    return bad


def make_config(base: ModelCard, mode: str, sigma: float, minutes: float, steps: int, threads: int,
                seed: int = 0) -> TrainConfig:
    """A small bounded config: 32 images in memory at most, short warm-up, low learning rate."""
    m = base.config.size_multiple
    up = lambda v, k: -(-v // k) * k  # noqa: E731  (round up to a multiple)
    try:
        noise = NoiseConfig.from_dict(base.training.get("config", {}).get("noise", {}))
    except (TypeError, ValueError, AttributeError):
        noise = NoiseConfig()
    noise = replace(noise, sigma_min=max(0.0, 0.6 * sigma), sigma_max=min(255.0, max(1.4 * sigma, sigma + 2)),
                    p_jpeg=0.0)
    return TrainConfig(
        model=base.config, noise=noise, batch_size=8, patch=up(96, m) if mode == "clean" else up(128, 4 * m),
        lr=2e-4, lr_min=1e-6, warmup_steps=20, ema_decay=0.995, minutes=minutes, max_steps=steps, seed=seed,
        threads=threads, pool_size=32, pool_refresh=4, jpeg_downscale=2 if mode == "clean" else 1,
        val_fraction=0.1, val_max=8, val_sigma=sigma if mode == "clean" else 25.0, val_crop=up(256, 4 * m),
        val_every=50, checkpoint_every_s=60.0)


class FinetuneTrainer(Trainer):
    """Trainer with the fine-tuning losses, a weight anchor to the base and noisy-mode validation."""

    # noisy mode: weight of "match the base at the calibrated strength" on the real crops, against 1 for
    # "restore the base output plus synthetic matched noise". A high weight copies the base's own errors on
    # the photos it trains on; 0.25 scored best (benchmarks/finetune_noisy.py, results in benchmarks/results).
    distill_weight = 0.25

    def __init__(self, cfg: TrainConfig, folder: Path, out: Path, device: str, base_path: Path, mode: str,
                 sigma_in: float, name: str, exclude: set[str], anchor_weight: float = 100.0,
                 card_extra: dict[str, Any] | None = None, target_sigma: float | None = None,
                 strength_gain: float = 1.0, noise_model: NoiseModel | None = None) -> None:
        self.mode, self.sigma_in, self.anchor_weight = mode, float(sigma_in), anchor_weight
        self.target_sigma, self.strength_gain, self.noise_model = target_sigma, float(strength_gain), noise_model
        super().__init__(cfg, [folder], out, device, init_weights=base_path, loss_fn=self.finetune_loss,
                         card_extra=card_extra, name=name)
        self.train_files = [f for f in self.train_files if str(f) not in exclude]
        self.val_files = [f for f in self.val_files if str(f) not in exclude]
        if not self.train_files:
            raise FinetuneError(f"{folder}: no readable images left to train on")
        pool_cls = PatchPool if mode == "clean" else NativePatchPool
        self.pool = pool_cls(self.train_files, cfg.pool_size, self.rng, cfg.pool_refresh, cfg.jpeg_downscale)
        self.reference = [p.detach().clone() for p in self.model.parameters()]
        self.base: UNetDenoiser | None = None
        if mode == "noisy":  # frozen base for the output anchor
            self.base = build_model(cfg.model).to(self.device).requires_grad_(False).eval()
            self.base.load_state_dict(self.model.state_dict())

    def finetune_loss(self, model: UNetDenoiser, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.mode == "clean":
            main = self.supervised_loss(model, batch, gen)
        else:
            # jitter the level the engine would measure, so nearby estimates behave alike
            jitter = torch.exp((torch.rand(batch.shape[0], generator=gen, device=batch.device) - 0.5) * 0.5)
            level = self.sigma_in * jitter
            target = self._pseudo_clean(batch, level)
            # on the real photo: at the level the engine measures, do what the base does at the calibrated
            # strength (or the user's strength target); on the pseudo-clean output plus freshly synthesised
            # noise of the folder's own spectrum: restore it (new noise every step, so no noise is memorised)
            main = self.distill_weight * F.l1_loss(model(batch, level), target)
            if self.noise_model is not None:
                fresh = target + self.noise_model.sample(tuple(batch.shape), gen, batch.device)
                main = main + F.l1_loss(model(fresh, level), target)
        return main + self.anchor_weight * weight_anchor(model, self.reference)

    def _pseudo_clean(self, noisy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The frozen base's output at the calibrated strength (gain x level) or the user's target."""
        strength = level * self.strength_gain if self.target_sigma is None else \
            torch.full_like(level, float(self.target_sigma))
        with torch.no_grad():
            return self.base(noisy, strength)

    def validate(self) -> float | None:
        """Clean mode: PSNR at the chosen sigma. Noisy mode (no references): PSNR of restoring held-out
        pseudo-clean crops from them plus fixed synthetic noise of the folder's own spectrum."""
        if self.mode == "clean":
            return super().validate()
        if self._val_cache is None:
            gen = torch.Generator().manual_seed(1234)
            self._val_cache = []
            for crop in native_val_crops(self.val_files, self.cfg.val_crop, 4 * self.cfg.model.size_multiple):
                crop = crop.to(self.device)
                target = self._pseudo_clean(crop, torch.tensor([self.sigma_in], device=self.device))
                noise = self.noise_model.sample(tuple(crop.shape), gen).to(self.device) \
                    if self.noise_model is not None else torch.zeros_like(crop)
                self._val_cache.append((target, target + noise))
        if not self._val_cache:
            return None
        self.ema.eval()
        vals = []
        with torch.inference_mode():
            for target, noisy in self._val_cache:
                out = self.ema(noisy, torch.tensor([self.sigma_in], device=self.device)).clamp(0, 1)
                vals.append(psnr(target.clamp(0, 1).cpu().numpy(), out.float().cpu().numpy()))
        return float(np.mean(vals))

class _Hook:
    """Wraps the caller's Progress: adds ETA to the message and feeds on_step (loss, previews)."""

    def __init__(self, trainer: FinetuneTrainer, progress: Progress, on_step: Callable[[StepInfo], None] | None,
                 preview: tuple[torch.Tensor, float] | None, preview_every: int) -> None:
        self.trainer, self.progress, self.on_step = trainer, progress, on_step
        self.preview, self.preview_every = preview, max(1, preview_every)
        self.before = _to_image(preview[0]) if preview is not None else None

    def report(self, fraction: float, message: str = "") -> None:
        t = self.trainer
        if fraction > 0:
            eta = max(0.0, t.elapsed / fraction * (1 - fraction))
            message = f"{message} ETA {int(eta // 60)}:{int(eta % 60):02d}"
        self.progress.report(fraction, message)
        if self.on_step is None or not t.history:
            return
        last = t.history[-1]
        info = StepInfo(t.step, fraction, float(last.get("loss", float("nan"))), last.get("val_psnr"))
        if self.preview is not None and (t.step % self.preview_every == 0 or t.step == 1):
            info.preview_before, info.preview_after = self.before, self.after()
        self.on_step(info)

    def after(self) -> np.ndarray:
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


def run_folder(name: str) -> Path:
    """The run folder of the model `name`, which must be a valid model name (check_name): a name
    such as ".." or "/home/me" never reaches the file system, let alone a delete."""
    return runs_dir() / check_name(name)  # ModelStoreError for a bad name, as validate_name raises


def _read_spec(name: str) -> dict[str, Any]:
    path = run_folder(name) / "finetune.json"
    if not path.is_file() or not (run_folder(name) / "checkpoint.pt").is_file():
        raise FinetuneError(f"no unfinished fine-tuning run named {name!r} to resume")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FinetuneError(f"{path}: cannot read the run settings: {exc}") from exc


def _write_spec(spec: dict[str, Any]) -> None:
    run_folder(spec["name"]).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_folder(spec["name"]) / "finetune.json", json.dumps(spec, indent=2).encode())


def has_unfinished_run(name: str) -> bool:
    """True when `name` has a stopped run to resume; False for an invalid name (nothing to resume)."""
    try:
        folder = run_folder(name)
    except ModelStoreError:
        return False
    return (folder / "checkpoint.pt").is_file() and (folder / "finetune.json").is_file()


def discard_run(name: str) -> None:
    """Forget an unfinished run (its checkpoint), so the name can start afresh. Only a folder inside
    the runs folder is ever deleted."""
    try:
        remove_tree_inside(run_folder(name), runs_dir())
    except UnsafePathError as exc:
        raise FinetuneError(str(exc)) from None


def _new_spec(folder: Path, mode: str, name: str, base_model: str | None, minutes: float, steps: int,
              sigma: float | None, noisy_sample: Path | None, threads: int, seed: int,
              progress: Progress) -> dict[str, Any]:
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
    suggestion = None
    if mode == "auto":
        suggestion = _suggest(files)  # the folder's listing from above, not a second walk
        mode = suggestion.mode
    target = None
    if mode == "clean":
        if sigma is None and noisy_sample is not None:
            try:
                sample = load_rgb8(Path(noisy_sample), jpeg_downscale=1, max_side=1 << 30)
            except (ValueError, OSError, cv2.error) as exc:
                raise FinetuneError(f"sample noisy photo {noisy_sample}: {exc}") from exc
            sigma = auto_level(centre_crop(sample, 1024).astype(np.float32) / 255)
            source = str(noisy_sample)
        else:
            source = "user" if sigma is not None else "default"
            sigma = 25.0 if sigma is None else float(sigma)
    else:  # noisy: sigma is the level the engine will measure; the user's value is a strength target
        target, source = (float(sigma) if sigma is not None else None), "folder estimate"
        sigma = estimate_folder_sigma(good, estimate=auto_level)[0]
    if not 0 <= sigma <= 255:
        raise FinetuneError(f"noise level must be in 0..255, got {sigma}")
    calibration: dict[str, Any] = {}
    if mode == "noisy":
        progress.report(0.0, "Measuring your photos' noise (before the time budget starts)…")
        try:
            calibration = calibrate_folder(good, base.path, threads, progress)
        except ValueError as exc:
            raise FinetuneError(f"{folder}: {exc}") from exc
        progress.check_cancelled()
    cfg = make_config(base.card, mode, sigma, minutes, steps, threads, seed)
    return calibration | {"name": name, "mode": mode, "folder": str(Path(folder).expanduser().resolve()),
            "base_model": base.name, "base_path": str(base.path), "sigma": sigma, "sigma_source": source,
            "target_sigma": target,
            "suggestion": suggestion.reason if suggestion else None, "config": cfg.to_dict(),
            "skipped": bad, "val_before": None, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


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
        spec = _read_spec(name)
    else:
        spec = _new_spec(Path(folder), mode, name, base_model, minutes, steps, sigma, noisy_sample, threads, seed,
                         progress)
    cfg = replace(TrainConfig.from_dict(spec["config"]), threads=threads)
    extra = {k: spec.get(k) for k in ("mode", "base_model", "folder", "sigma", "sigma_source", "target_sigma",
                                      "strength_gain", "calibration")}
    strength = (f"the strength target {spec['target_sigma']:g}" if spec.get("target_sigma") is not None else
                f"{spec.get('strength_gain', 1.0):g} x the measured level (calibrated on the folder)")
    extra["method"] = ("supervised synthetic noise + L2-SP" if spec["mode"] == "clean" else
                       f"noise-matched self-distillation: the base at {strength} as target (weight "
                       f"{FinetuneTrainer.distill_weight:g}), plus synthetic noise of the folder's own spectrum + L2-SP")
    noise_model = NoiseModel.from_dict(spec["noise_model"]) if spec.get("noise_model") else None
    progress.report(0.0, "Reading the photos and scoring the starting model…")
    try:
        trainer = FinetuneTrainer(cfg, Path(spec["folder"]), run_folder(spec["name"]), device,
                                  Path(spec["base_path"]), spec["mode"], spec["sigma"], spec["name"],
                                  set(spec["skipped"]), card_extra=extra, target_sigma=spec.get("target_sigma"),
                                  strength_gain=spec.get("strength_gain", 1.0), noise_model=noise_model)
    except (FileNotFoundError, ValueError) as exc:
        raise FinetuneError(str(exc)) from exc
    if not resume:
        spec["val_before"] = trainer.validate()
        _write_spec(spec)
    preview = _preview_crop(trainer.val_files + trainer.train_files[:4], spec["mode"], spec["sigma"],
                            cfg.model.size_multiple)
    hook = _Hook(trainer, progress, on_step, preview, preview_every)
    try:
        out = trainer.train(resume=resume, progress=hook)
    except ValueError as exc:
        if isinstance(exc, FinetuneError):
            raise
        raise FinetuneError(str(exc)) from exc
    return _publish(spec, trainer, out)


def _publish(spec: dict[str, Any], trainer: FinetuneTrainer, out: dict[str, Any]) -> FinetuneResult:
    """Copy the run's model into the user's models folder with the full card; drop the checkpoint."""
    name, mode = spec["name"], spec["mode"]
    model, card = load_model(Path(out["model"]))
    metric = f"val_psnr_sigma{spec['sigma']:g}" if mode == "clean" else "val_matched_noise_psnr"
    skipped = {**spec["skipped"], **out["skipped"]}
    card.name = name
    card.description = f"Fine-tuned from {spec['base_model']} on {spec['folder']} ({mode} photos)"
    card.training.update({"images": len(trainer.train_files) + len(trainer.val_files),
                          "skipped_images": len(skipped), "validation_metric": metric})
    camera = folder_profile(trainer.train_files + trainer.val_files)  # the camera profile (core.profiles)
    if camera is not None:
        card.training["camera"] = camera
    card.metrics = {"validation": metric, "val_before": spec["val_before"], "val_after": out["val_psnr"]}
    if mode == "clean" and out["val_psnr"] is not None:
        card.metrics[metric] = out["val_psnr"]
    dest = user_models_dir() / f"{name}.safetensors"
    save_model(dest, model, card)
    spec["finished"] = card.created
    spec["history"] = trainer.history
    _write_spec(spec)
    for leftover in (trainer.checkpoint_path, Path(out["model"]), Path(out["model"]).with_suffix(".json")):
        leftover.unlink(missing_ok=True)  # the published copy is the model; keep only the run's settings
    return FinetuneResult(name, dest, mode, out["steps"], out["minutes"], spec["val_before"], out["val_psnr"],
                          metric, skipped)
