"""Training loop shared by the default-model training and the user's fine-tuning.

One resumable run: config in, checkpoint out. Checkpoints are atomic and hold everything needed
for an exact resume (model, EMA, optimiser, step, elapsed time, every RNG, the crop pool).
"""
from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from denoiser.core.config import from_plain
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.files import atomic_write_bytes
from denoiser.core.inference.engine import resolve_device
from denoiser.core.inference.ensemble import check_passes
from denoiser.core.model.file import ModelCard, load_model, save_model
from denoiser.core.model.network import ModelConfig, UNetDenoiser, build_model, load_grown
from denoiser.core.noise import NoiseConfig, synthesize
from denoiser.core.progress import Cancelled, NullProgress, Progress
from denoiser.core.training import distill
from denoiser.core.training.patches import PatchPool, check_native_quality, list_images, load_rgb8, split_validation

if TYPE_CHECKING:
    from denoiser.core.training.pack import PackSource

log = logging.getLogger(__name__)


LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    batch_size: int = 16
    patch: int = 96
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    grad_clip: float = 0.5
    ema_decay: float = 0.999
    minutes: float = 10.0
    max_steps: int = 0  # 0: limited by minutes only
    seed: int = 0
    threads: int = 1
    pool_size: int = 1024
    pool_refresh: int = 4
    jpeg_downscale: int = 2
    jpeg_native_quality: int = 0  # JPEGs of at least this quality are not downscaled (0: all are)
    val_fraction: float = 0.02
    val_max: int = 8
    val_sigma: float = 25.0
    val_crop: int = 256
    val_every: int = 500
    checkpoint_every_s: float = 120.0
    loss: str = "l1"  # "l2": squared error (measured: it cost real-noise quality, see the README's training notes)
    colour_aug: float = 0.0  # fraction of crops whose channels are permuted and saturation scaled (colour_augment)
    teacher_passes: int = 8  # with a teacher (core/training/distill.py): views averaged for its targets
    teacher_crops: int = 512  # size of the fixed set of noisy crops the teacher's outputs are computed on
    teacher_weight: float = 1.0  # share of the loss measured against the teacher's output (the rest: clean)

    def __post_init__(self) -> None:
        if self.patch % self.model.size_multiple or self.val_crop % self.model.size_multiple:
            raise ValueError(f"patch and val_crop must be multiples of {self.model.size_multiple}")
        if self.batch_size < 1 or self.minutes <= 0 and self.max_steps <= 0:
            raise ValueError("need batch_size >= 1 and a positive minutes or max_steps budget")
        check_native_quality(self.jpeg_native_quality)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        check_passes(self.teacher_passes)
        if self.teacher_crops < 1 or not 0 <= self.teacher_weight <= 1:
            raise ValueError("need teacher_crops >= 1 and teacher_weight in 0..1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return from_plain(cls, d, "training config")

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config is a JSON object")
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def colour_augment(clean: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Widen the colours seen in training (saturated scenes are the weakest): on a fraction p of the RGB crops,
    a random channel permutation and a saturation scale in [0.5, 1.8] about each pixel's grey value."""
    n, c = clean.shape[:2]
    if c != 3:
        return clean
    pick = (torch.rand(n, generator=gen, device=clean.device) < p).view(-1, 1, 1, 1)
    perm = torch.stack([torch.randperm(3, generator=gen, device=clean.device) for _ in range(n)])
    permuted = torch.gather(clean, 1, perm.view(n, 3, 1, 1).expand_as(clean))
    grey = permuted.mean(dim=1, keepdim=True)
    scale = (0.5 + 1.3 * torch.rand(n, generator=gen, device=clean.device)).view(-1, 1, 1, 1)
    jittered = (grey + scale * (permuted - grey)).clamp(0, 1)
    return torch.where(pick, jittered, clean)


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then cosine decay over the budget (fraction of minutes or steps used)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * p))


LossFn = Callable[[UNetDenoiser, torch.Tensor, torch.Generator], torch.Tensor]


class Trainer:
    """Supervised denoising on synthetic noise; `loss_fn` can be swapped (fine-tuning modes)."""

    def __init__(self, cfg: TrainConfig, data: list[Path], out: Path, device: str = "auto",
                 init_weights: Path | None = None, loss_fn: LossFn | None = None,
                 card_extra: dict[str, Any] | None = None, name: str = "model", pack: Path | None = None,
                 teacher: Path | None = None) -> None:
        self.cfg, self.out, self.name = cfg, Path(out), name
        self.device = resolve_device(device)
        self.card_extra = card_extra or {}
        files = list_images(data) if not pack else []
        if not files and not pack:
            raise ValueError(f"no images found in {', '.join(map(str, data))}")
        self.train_files, self.val_files = split_validation(files, cfg.val_fraction, cfg.val_max)
        self.data = [str(d) for d in data] if not pack else [str(pack)]
        torch.manual_seed(cfg.seed)  # reproducible initial weights
        self.model = build_model(cfg.model)
        self.init_weights = str(init_weights) if init_weights else None
        if init_weights:
            base, card = load_model(Path(init_weights))
            if card.config != cfg.model:
                try:
                    added = load_grown(self.model, base.state_dict(), card.config)
                except ValueError as e:
                    raise ValueError(f"{init_weights}: architecture differs from the training config ({e})") from e
                log.info("grew %s by %d identity block(s): %s", init_weights, len(added), ", ".join(added))
                self.card_extra = {**self.card_extra, "grown_from": card.config.to_dict()}
            else:
                self.model.load_state_dict(base.state_dict())
        self.teacher_path = teacher
        self.teacher_set: distill.TeacherSet | None = None
        self.teacher: UNetDenoiser | None = None
        if teacher:
            self.teacher = distill.load_teacher(teacher, cfg.model)
            distill.check_set_size(cfg.teacher_crops, cfg.patch)
            self.card_extra = {**self.card_extra, "teacher": {"file": str(teacher), "passes": cfg.teacher_passes,
                                                              "crops": cfg.teacher_crops}}
        self.model.to(self.device)
        if self.device.type in ("cpu", "cuda"):
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack memory_format
        self.averaged = AveragedModel(self.model, avg_fn=self._ema_step)  # the EMA of the weights
        self.averaged.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.loss_fn = loss_fn or self.supervised_loss
        self.step, self.elapsed = 0, 0.0
        self.history: list[dict[str, float]] = []
        self._val_cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.pool: PatchPool | PackSource  # the crops: streamed from the folders, or a pack's
        if pack:
            from denoiser.core.training.pack import PackSource

            self.pool = PackSource(Path(pack), self.device, self.gen)
            vgen = torch.Generator().manual_seed(1234)
            self._val_cache = [(c[None], c[None] + torch.randn(c[None].shape, generator=vgen) * cfg.val_sigma / 255)
                               for c in self.pool.val]
        else:
            self.pool = PatchPool(self.train_files, cfg.pool_size, self.rng, cfg.pool_refresh, cfg.jpeg_downscale,
                                  native_quality=cfg.jpeg_native_quality)

    # -- losses ---------------------------------------------------------------------------------
    def supervised_loss(self, model: UNetDenoiser, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.cfg.colour_aug > 0:
            clean = colour_augment(clean, self.cfg.colour_aug, gen)
        noisy, level = synthesize(clean, self.cfg.noise, gen)
        return LOSSES[self.cfg.loss](model(noisy, level), clean)

    # -- checkpointing --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        state = {
            "config": json.dumps(self.cfg.to_dict()),
            "model": self.model.state_dict(), "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(), "step": self.step, "elapsed": self.elapsed,
            "torch_rng": self.gen.get_state(), "np_rng": json.dumps(self.rng.bit_generator.state),
            "pool": self.pool.indices, "draws": self.pool.draws, "history": json.dumps(self.history),
            "skipped": json.dumps(self.pool.skipped),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.checkpoint_path, buf.getvalue())
        self.export(self.out / f"{self.name}.safetensors")

    def load_checkpoint(self) -> None:
        from denoiser.core.model.foreign import load_torch_weights

        state = load_torch_weights(self.checkpoint_path, self.device)  # ValueError naming the file
        if not isinstance(state, dict) or not {"config", "model", "ema", "opt", "step"} <= set(state):
            raise ValueError(f"{self.checkpoint_path}: not a checkpoint of `denoiser train`; start a new run "
                             "without --resume or in another --out folder")
        saved = TrainConfig.from_dict(json.loads(state["config"]))
        if saved.model != self.cfg.model:
            raise ValueError(f"{self.checkpoint_path}: checkpoint architecture differs from the config")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.averaged.n_averaged.fill_(max(1, self.step))
        self.gen.set_state(state["torch_rng"].cpu() if self.device.type == "cpu" else state["torch_rng"])
        self.rng.bit_generator.state = json.loads(state["np_rng"])
        self.pool.skipped = json.loads(state["skipped"])
        self.pool.fill([int(i) for i in state["pool"]])
        self.pool.draws = int(state["draws"])
        self.history = json.loads(state["history"])

    def export(self, path: Path) -> None:
        """Write the EMA weights as a model file with a card describing this run."""
        last_val = next((h["val_psnr"] for h in reversed(self.history) if "val_psnr" in h), None)
        card = ModelCard(
            name=self.name, config=self.cfg.model,
            training={"data": self.data, "train_images": len(self.train_files),
                      "val_images": [p.name for p in self.val_files], "steps": self.step,
                      "minutes": round(self.elapsed / 60, 2), "device": str(self.device),
                      "hardware": _hardware(self.device), "init": self.init_weights,
                      "config": self.cfg.to_dict(), **self.card_extra},
            metrics={self.metric_name: last_val} if last_val is not None else {},
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        save_model(path, self.ema, card)

    # -- validation -----------------------------------------------------------------------------
    @property
    def metric_name(self) -> str:
        """What `validate` measures, as the model card names it."""
        return f"val_psnr_sigma{self.cfg.val_sigma:g}"

    def validate(self) -> float | None:
        if not self.val_files:
            return None
        if self._val_cache is None:
            self._val_cache = []
            gen = torch.Generator().manual_seed(1234)
            for path in self.val_files:
                try:
                    img = load_rgb8(path, self.cfg.jpeg_downscale, native_quality=self.cfg.jpeg_native_quality)
                except (ValueError, OSError):
                    continue
                h, w = img.shape[:2]
                m = self.cfg.model.size_multiple
                c = min(self.cfg.val_crop, min(h, w) // m * m)
                if c < 4 * m:
                    continue
                y, x = (h - c) // 2, (w - c) // 2
                clean = torch.from_numpy(img[y:y + c, x:x + c].astype(np.float32) / 255).permute(2, 0, 1)[None]
                noisy = clean + torch.randn(clean.shape, generator=gen) * self.cfg.val_sigma / 255
                self._val_cache.append((clean, noisy))
        if not self._val_cache:
            return None
        vals = []
        self.ema.eval()
        with torch.inference_mode():
            for clean, noisy in self._val_cache:
                out = self.ema(noisy.to(self.device), torch.tensor([self.cfg.val_sigma], device=self.device))
                vals.append(psnr(clean[0].numpy(), out[0].clamp(0, 1).float().cpu().numpy()))
        return float(np.mean(vals))

    # -- loop -------------------------------------------------------------------------------------
    def budget_fraction(self) -> float:
        fr = []
        if self.cfg.minutes > 0:
            fr.append(self.elapsed / (self.cfg.minutes * 60))
        if self.cfg.max_steps > 0:
            fr.append(self.step / self.cfg.max_steps)
        return max(fr)

    def train(self, resume: bool = False, progress: Progress | None = None) -> dict[str, Any]:
        progress = progress or NullProgress()
        if resume and self.checkpoint_path.is_file():
            self.load_checkpoint()
        else:
            self.pool.fill()
        if self.teacher_path and self.teacher is not None:
            self.teacher_set = distill.obtain_set(
                self.out, self.teacher_path, self.teacher, lambda n: self.pool.batch(n, self.cfg.patch),
                self.cfg.teacher_crops, self.cfg.patch, self.cfg.noise, self.cfg.teacher_passes, self.cfg.seed,
                self.cfg.colour_aug, progress)
            self.teacher = None  # its outputs are all that is needed now
        cfg, last_ckpt = self.cfg, time.monotonic()
        loss_avg = None
        try:
            while self.budget_fraction() < 1.0:
                progress.check_cancelled()
                t0 = time.monotonic()
                loss = self.train_step()
                self.elapsed += time.monotonic() - t0
                loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
                record: dict[str, float] = {"step": self.step, "loss": loss, "minutes": self.elapsed / 60}
                if self.step % cfg.val_every == 0:
                    val = self.validate()
                    if val is not None:
                        record["val_psnr"] = val
                        log.info("step %d loss %.4f val %.2f dB", self.step, loss_avg, val)
                self.history.append(record)
                progress.report(min(self.budget_fraction(), 1.0),
                                f"step {self.step} loss {loss_avg:.4f}")
                if time.monotonic() - last_ckpt > cfg.checkpoint_every_s:
                    self.save_checkpoint()
                    last_ckpt = time.monotonic()
        except Cancelled:
            self.save_checkpoint()
            raise
        val = self.validate()
        if val is not None:
            self.history.append({"step": self.step, "minutes": self.elapsed / 60, "val_psnr": val})
        self.save_checkpoint()
        return {"steps": self.step, "minutes": self.elapsed / 60, "val_psnr": val,
                "skipped": dict(self.pool.skipped), "model": str(self.out / f"{self.name}.safetensors")}

    def train_step(self) -> float:
        cfg = self.cfg
        self.model.train()
        for group in self.opt.param_groups:
            group["lr"] = lr_at(cfg, self.step, self.budget_fraction())
        if self.teacher_set is not None:
            return self._step(self.teacher_set.loss(self.model, cfg.batch_size, self.gen, cfg.teacher_weight,
                                                    LOSSES[cfg.loss]))
        clean = self.pool.batch(cfg.batch_size, cfg.patch)
        if isinstance(clean, np.ndarray):
            clean = torch.from_numpy(clean).permute(0, 3, 1, 2)
        clean = clean.to(self.device).contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = self.loss_fn(self.model, clean, self.gen).float()
        else:
            loss = self.loss_fn(self.model, clean, self.gen)
        return self._step(loss)

    def _step(self, loss: torch.Tensor) -> float:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.step}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.update_ema()
        self.step += 1
        return float(loss.item())

    @property
    def ema(self) -> UNetDenoiser:
        """The exponential moving average of the weights: what is validated and exported."""
        return cast(UNetDenoiser, self.averaged.module)  # AveragedModel holds a copy of self.model

    def _ema_step(self, avg: torch.Tensor, new: torch.Tensor, _count: torch.Tensor | int) -> torch.Tensor:
        """EMA with a short warm-up: the decay grows as (1 + step) / (10 + step) up to ema_decay."""
        decay = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        return avg + (new - avg) * (1 - decay)

    def update_ema(self) -> None:
        self.averaged.update_parameters(self.model)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform
    cpu = platform.processor() or platform.machine()
    return f"{cpu} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
