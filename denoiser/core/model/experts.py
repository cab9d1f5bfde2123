"""The heavy-noise expert: a second network shipped beside a model for the noise that model was not made for.

The default model (v13) is the mean of v11, trained to sigma 55, and of v11 trained further to sigma 100. On the 8
training photos every training run holds out (benchmarks/level_experts.py, benchmarks/results/level_experts.json)
it is within 0.04 dB of a network trained on heavy noise alone (resources/train/heavy_expert.json: Gaussian sigma
20-110, 30 % camera-pipeline noise) on white Gaussian noise up to sigma 70, and falls behind it above (-0.27 dB at
sigma 80, -2.2 at 90, -4.5 at 100) and on high-ISO camera noise after the camera's processing (-0.5 to -0.7 dB).
That network is the expert. Each pixel's result is the default's where the level the model is given (Auto's map,
or the fixed strength) is at most HEAVY_RAMP.start, the expert's where it is at least HEAVY_RAMP.full, and a
linear blend between: a photo, or a part of one, at ordinary noise levels comes out exactly as without the
expert; tiles that never reach the ramp never run it, and those that do run both networks inside the ramp. The
ramp was chosen on those held-out training photos (camera noise with Auto's map at 30-43 on average: the pair keeps
61-96 % of the expert's gain, where a ramp from 30 to 50 kept 18-70 % with an earlier snapshot of the expert; white
Gaussian noise from sigma 20 to 50: the pair within 0.02 dB of the default) and on the real-noise tuning halves
(Nam25, RENOIR50 T3i and dglr, whose maps reach 40: within 0.01 dB of the default, where networks trained further
on heavy noise had lost 0.07-0.4 dB on the low-light T3i photos).

The expert lives beside its model as `<model stem>.heavy.safetensors` (its INT8 build, for the Fast quality, as
`<model stem>.heavy.int8.onnx`); the model list does not show it as a model of its own. A fine-tuned model runs
with its base model's expert (expert_file).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

HEAVY_SUFFIX = ".heavy"


@dataclass(frozen=True)
class LevelRamp:
    """Where a second network takes over, on the noise-level scale (0..255 std): not at all at `start` and
    below, wholly at `full` and above, linearly between."""
    start: float
    full: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.full <= 255:
            raise ValueError(f"a level ramp needs 0 <= start < full <= 255, got {self.start}..{self.full}")

    def weight(self, level: torch.Tensor) -> torch.Tensor:
        """The expert's share of each value of `level` (same shape)."""
        return ((level.float() - self.start) / (self.full - self.start)).clamp_(0.0, 1.0)


HEAVY_RAMP = LevelRamp(25.0, 40.0)


def heavy_expert_path(model_path: Path) -> Path:
    """Where the heavy-noise expert of the model at `model_path` lives (it may not exist)."""
    path = Path(model_path)
    return path.with_name(path.stem + HEAVY_SUFFIX + path.suffix)


def is_expert_file(path: Path) -> bool:
    """A heavy-noise expert shipped beside a model (part of that model, not a model of its own)."""
    path = Path(path)
    stem = path.stem
    return stem.endswith(HEAVY_SUFFIX) and path.with_name(stem[:-len(HEAVY_SUFFIX)] + path.suffix).is_file()


BASE_HOPS = 4  # a fine-tuned model's base may itself be fine-tuned: how far up the chain to look


def expert_file(model_path: Path, training: Mapping[str, Any], hops: int = BASE_HOPS) -> Path | None:
    """The heavy-noise expert the model at `model_path` runs with, or None: the one beside it; else, for a
    fine-tuned model (its card's `training` names its `base_model`), its base's, found as the model list finds
    models. Fine-tuning adapts a model to its folder's noise and leaves heavier noise worse than its base had it
    (a model tuned on 3 photos of RENOIR50 dglr, 4 CPU-minutes, with Auto on Kodak24's first 6 photos: -1.25 dB at
    sigma 50 and -4.1 at sigma 100 against the default with its expert; the same with the base's expert: equal to
    the default there; benchmarks/finetune_camera.py --expert-check, finetune_camera_tune_expert_check.json). On
    the camera's own other photos the expert costs 0.00-0.04 dB (dglr's and Nam25's tuning halves 0.00, T3i's
    -0.04, dglr's validation half -0.02; finetune_camera_report_expert_check_dglr.json), where the fine-tuned
    network is better than the expert inside the ramp. The expert does not depend on the model's weights, only on
    its architecture (checked before it is loaded)."""
    own = heavy_expert_path(model_path)
    if own.is_file():
        return own
    base = training.get("base_model")
    # a card is data from anywhere: its base is looked up only as the name of an installed model, never as a path
    if not isinstance(base, str) or not base or hops <= 0 or base != Path(base).name or base.endswith(".safetensors"):
        return None
    from denoiser.core.model.registry import list_models

    entry = next((e for e in list_models() if e.name == base), None)
    if entry is None or entry.path.resolve() == Path(model_path).resolve():
        return None  # the base was deleted (or is damaged): the model runs alone, as it was trained
    return expert_file(entry.path, entry.card.training, hops - 1)
