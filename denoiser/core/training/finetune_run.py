"""A fine-tuning run's settings and folder: the typed spec saved as finetune.json, its bounded training
config, and the run folder under user_data_path()/runs/<name> (resume reads the spec back; discard deletes
the folder)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from denoiser.core.config import from_plain
from denoiser.core.files import UnsafePathError, atomic_write_bytes, remove_tree_inside
from denoiser.core.model.file import ModelCard
from denoiser.core.model.store import ModelStoreError, check_name, runs_dir
from denoiser.core.noise import NoiseConfig
from denoiser.core.training.calibration import NoiseModel
from denoiser.core.training.trainer import TrainConfig

RUN_MODES = ("clean", "noisy")  # what a run trains in; "auto" is resolved to one of these before the run starts


class FinetuneError(ValueError):
    """A fine-tuning request that cannot run; the message says why in one line."""


@dataclass(frozen=True)
class FinetuneSpec:
    """Everything a run was started with, so a resumed run continues exactly (the saved settings win)."""

    name: str
    mode: str
    folder: str
    base_model: str
    base_path: str
    sigma: float  # the level the model is fed: clean mode's synthetic noise, noisy mode's measured level
    sigma_source: str  # where sigma came from: "user", "default", "folder estimate" or a sample photo
    config: TrainConfig
    target_sigma: float | None = None  # noisy mode: the user's strength target instead of the calibrated gain
    suggestion: str | None = None  # why "auto" chose the mode
    skipped: dict[str, str] = field(default_factory=dict)  # unreadable files: reason
    created: str = ""
    strength_gain: float = 1.0  # noisy mode: the calibrated gain (calibration.calibrate_strength)
    noise_model: dict[str, Any] | None = None  # noisy mode: the folder's NoiseModel.to_dict()
    calibration: dict[str, Any] | None = None  # noisy mode: the calibration's details (for the card)
    val_before: float | None = None
    finished: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in RUN_MODES:
            raise ValueError(f"mode must be one of {', '.join(RUN_MODES)}, got {self.mode!r}")
        if not 0 <= self.sigma <= 255:
            raise ValueError(f"noise level must be in 0..255, got {self.sigma}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneSpec:
        return from_plain(cls, d, "fine-tuning run settings")

    def noise(self) -> NoiseModel | None:
        return NoiseModel.from_dict(self.noise_model) if self.noise_model else None

    def card_extra(self, method: str) -> dict[str, Any]:
        """What the fine-tuned model's card records about the run."""
        keys = ("mode", "base_model", "folder", "sigma", "sigma_source", "target_sigma", "strength_gain",
                "calibration")
        return {k: getattr(self, k) for k in keys} | {"method": method}


def make_config(base: ModelCard, mode: str, sigma: float, minutes: float, steps: int, threads: int,
                seed: int = 0) -> TrainConfig:
    """A small bounded config: 32 images in memory at most, short warm-up, low learning rate.

    The noise mix is the base model's own (its card's training config), centred on `sigma`; a card without
    one gets NoiseConfig's defaults, and a card whose noise config is damaged is refused (FinetuneError)."""
    m = base.config.size_multiple

    def up(v: int, k: int) -> int:  # round up to a multiple
        return -(-v // k) * k

    noise = _base_noise(base)
    noise = replace(noise, sigma_min=max(0.0, 0.6 * sigma), sigma_max=min(255.0, max(1.4 * sigma, sigma + 2)),
                    p_jpeg=0.0)
    return TrainConfig(
        model=base.config, noise=noise, batch_size=8, patch=up(96, m) if mode == "clean" else up(128, 4 * m),
        lr=2e-4, lr_min=1e-6, warmup_steps=20, ema_decay=0.995, minutes=minutes, max_steps=steps, seed=seed,
        threads=threads, pool_size=32, pool_refresh=4, jpeg_downscale=2 if mode == "clean" else 1,
        val_fraction=0.1, val_max=8, val_sigma=sigma if mode == "clean" else 25.0, val_crop=up(256, 4 * m),
        val_every=50, checkpoint_every_s=60.0)


def _base_noise(base: ModelCard) -> NoiseConfig:
    config = base.training.get("config", {})
    noise = config.get("noise", {}) if isinstance(config, dict) else config
    try:
        return NoiseConfig.from_dict(noise)
    except ValueError as exc:
        raise FinetuneError(f"the model {base.name!r} has a damaged training noise config in its card ({exc}); "
                            "fine-tune another model, or reset it with `denoiser models reset`") from None


def run_folder(name: str) -> Path:
    """The run folder of the model `name`, which must be a valid model name (check_name): a name
    such as ".." or "/home/me" never reaches the file system, let alone a delete."""
    return runs_dir() / check_name(name)  # ModelStoreError for a bad name, as validate_name raises


def read_spec(name: str) -> FinetuneSpec:
    path = run_folder(name) / "finetune.json"
    if not path.is_file() or not (run_folder(name) / "checkpoint.pt").is_file():
        raise FinetuneError(f"no unfinished fine-tuning run named {name!r} to resume")
    try:
        return FinetuneSpec.from_dict(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise FinetuneError(f"{path}: cannot read the run settings ({exc}); discard the run and start "
                            "again") from None


def write_spec(spec: FinetuneSpec) -> None:
    run_folder(spec.name).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_folder(spec.name) / "finetune.json", json.dumps(spec.to_dict(), indent=2).encode())


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
