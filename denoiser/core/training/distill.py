"""Distillation: train a model to reproduce a teacher's output (by default its 8-view self-ensemble).

The teacher's ensemble costs 8 forward passes per crop, far more than a training step of a smaller student, so its
outputs are computed once for a fixed set of noisy training crops (`TeacherSet`, cached in the run folder and
reused on resume) and every step draws crops from that set, each in a random one of the 8 views. The loss mixes
the teacher's output (weight `teacher_weight`) with the clean crop (the rest).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from denoiser.core.files import atomic_write_bytes, file_sha256
from denoiser.core.inference.ensemble import VIEWS, check_passes, from_view, to_view
from denoiser.core.model.file import load_model
from denoiser.core.model.network import ModelConfig, UNetDenoiser
from denoiser.core.noise import NoiseConfig, synthesize
from denoiser.core.progress import NullProgress, Progress

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SET_NAME = "teacher_set.safetensors"
MAX_SET_BYTES = 2 << 30  # the set lives in memory during training
TENSORS = ("clean", "noisy", "level", "target")


def load_teacher(path: Path, student: ModelConfig) -> UNetDenoiser:
    """The teacher model, checked against the student: a photo model taking the same channels (ValueError naming
    the file otherwise; a file that is not a model is refused by load_model)."""
    teacher, card = load_model(Path(path))
    if card.config.kind != student.kind or card.config.in_channels != student.in_channels:
        raise ValueError(f"{path}: a {card.config.kind} model of {card.config.in_channels} channels cannot teach "
                         f"a {student.kind} model of {student.in_channels}; choose a teacher of the student's kind")
    return teacher.requires_grad_(False)


def ensemble_output(teacher: UNetDenoiser, noisy: torch.Tensor, level: torch.Tensor, passes: int) -> torch.Tensor:
    """The teacher's mean output over its first `passes` views of (noisy, level map), mapped back."""
    check_passes(passes)
    with torch.inference_mode():
        out = torch.zeros_like(noisy)
        for view in VIEWS[:passes]:
            out += from_view(teacher(to_view(noisy, view), to_view(level, view)), view)
        return out / passes


def set_key(teacher: Path, passes: int, crops: int, patch: int, seed: int, noise: NoiseConfig,
            colour_aug: float) -> dict[str, str]:
    """What a cached set was made from; a cache whose key differs is refused."""
    return {"teacher_sha256": file_sha256(teacher), "passes": str(passes), "crops": str(crops), "patch": str(patch),
            "seed": str(seed), "noise": json.dumps(asdict(noise), sort_keys=True), "colour_aug": str(colour_aug)}


class TeacherSet:
    """Fixed noisy crops with their clean originals and the teacher's outputs (float16 in memory)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        n = tensors["noisy"].shape[0]
        if any(tensors[k].shape[0] != n for k in TENSORS) or tensors["target"].shape != tensors["noisy"].shape:
            raise ValueError("teacher set tensors disagree in shape")
        self.tensors = tensors

    def __len__(self) -> int:
        return int(self.tensors["noisy"].shape[0])

    @classmethod
    def build(cls, teacher: UNetDenoiser, crops: Callable[[int], np.ndarray | torch.Tensor], count: int,
              noise: NoiseConfig, passes: int, seed: int, colour_aug: float = 0.0, chunk: int = 8,
              progress: Progress | None = None) -> TeacherSet:
        """`count` crops from crops(n) -> (n, H, W, 3) or (n, 3, H, W) in [0,1], noised with `noise` (seeded), and
        the teacher's `passes`-view output on each."""
        from denoiser.core.training.trainer import colour_augment

        progress = progress or NullProgress()
        gen = torch.Generator().manual_seed(seed)
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in TENSORS}
        done = 0
        while done < count:
            progress.check_cancelled()
            clean = crops(min(chunk, count - done))
            clean = torch.as_tensor(clean).float().cpu()
            if clean.shape[-1] == 3 and clean.shape[1] != 3:
                clean = clean.permute(0, 3, 1, 2)
            if colour_aug > 0:
                clean = colour_augment(clean.contiguous(), colour_aug, gen)
            noisy, level = synthesize(clean.contiguous(), noise, gen)
            if level.dim() <= 1:
                level = level.view(-1, 1, 1, 1).expand(-1, 1, clean.shape[-2] // 2, clean.shape[-1] // 2)
            target = ensemble_output(teacher, noisy, level, passes)
            for k, v in zip(TENSORS, (clean, noisy, level, target), strict=True):
                parts[k].append(v.to(torch.float16).contiguous())
            done += clean.shape[0]
            progress.report(0.0, f"teacher outputs ({passes} views): {done}/{count} crops")
        return cls({k: torch.cat(v) for k, v in parts.items()})

    def save(self, path: Path, key: dict[str, str]) -> None:
        atomic_write_bytes(path, save(self.tensors, metadata=key))

    @classmethod
    def load(cls, path: Path, key: dict[str, str]) -> TeacherSet:
        """The cached set at `path` if it was made from the same teacher and settings (ValueError otherwise)."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise ValueError(f"{path}: not a teacher set ({exc}); delete it to recompute") from None
        if meta != key or set(tensors) != set(TENSORS):
            changed = sorted(k for k in key if meta.get(k) != key[k])
            raise ValueError(f"{path}: made from another teacher or settings ({', '.join(changed) or 'contents'}); "
                             "delete it to recompute, or train in another --out folder")
        return cls(tensors)

    def batch(self, n: int, gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """n crops drawn at random, all four tensors in the same random view, float32 on `device`."""
        idx = torch.randint(len(self), (n,), generator=gen, device=gen.device).cpu()
        view = VIEWS[int(torch.randint(len(VIEWS), (1,), generator=gen, device=gen.device))]
        return {k: to_view(self.tensors[k][idx], view).float().contiguous(memory_format=torch.channels_last)
                .to(device) for k in TENSORS}

    def loss(self, model: UNetDenoiser, n: int, gen: torch.Generator, teacher_weight: float,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """loss_fn against the teacher's output, weighted teacher_weight, plus against the clean crop, the rest."""
        b = self.batch(n, gen, next(model.parameters()).device)
        out = model(b["noisy"], b["level"])
        loss = teacher_weight * loss_fn(out, b["target"])
        if teacher_weight < 1:
            loss = loss + (1 - teacher_weight) * loss_fn(out, b["clean"])
        return loss


def check_set_size(crops: int, patch: int) -> None:
    """Refuse a set that would not fit in memory, before any crop is made."""
    size = crops * patch * patch * 2 * (3 * 3 + 0.25)
    if size > MAX_SET_BYTES:
        raise ValueError(f"a teacher set of {crops} crops of {patch} px needs {size / 2**30:.1f} GiB; "
                         f"use fewer teacher crops (at most {int(MAX_SET_BYTES / (size / crops))})")


def obtain_set(out: Path, teacher_path: Path, teacher: UNetDenoiser, crops: Callable[[int], np.ndarray | torch.Tensor],
               count: int, patch: int, noise: NoiseConfig, passes: int, seed: int, colour_aug: float,
               progress: Progress | None = None) -> TeacherSet:
    """The run's teacher set: loaded from OUT/teacher_set.safetensors when it matches, else built and saved."""
    check_set_size(count, patch)
    key = set_key(teacher_path, passes, count, patch, seed, noise, colour_aug)
    path = Path(out) / SET_NAME
    if path.is_file():
        return TeacherSet.load(path, key)
    log.info("computing the teacher's outputs (%d views) on %d crops", passes, count)
    made = TeacherSet.build(teacher, crops, count, noise, passes, seed, colour_aug, progress=progress)
    Path(out).mkdir(parents=True, exist_ok=True)
    made.save(path, key)
    return made
