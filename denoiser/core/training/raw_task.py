"""Training the joint raw model (`denoiser train-raw`): the Trainer's loop, checkpoints, EMA, lr schedule and patch
pool, with the raw task's data, loss and validation.

Data: clean crops unprocessed to noisy Bayer raws (noise.raw_synthesis). Loss: L1 in the sRGB-encoded space of
white-balanced camera RGB (Brooks et al. 2019), so shadows count as much as highlights. Validation: held-out
crops (the Trainer's hash split) as raws at fixed seeds, one per sensor level of VAL_LEVELS, PSNR in that space.
By default the run starts from the shipped RGB model's trunk (RawUNet.load_rgb_trunk) and takes its shape.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from denoiser.core.colour import linear_to_srgb
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.model.file import load_model, read_card
from denoiser.core.model.network import RAW_ARCH, ModelConfig, UNetDenoiser
from denoiser.core.model.raw_network import RawUNet
from denoiser.core.noise.raw_synthesis import FULL_FRAME, PHONE, SHOT_RANGE, synthesize_raw
from denoiser.core.training.patches import load_rgb8
from denoiser.core.training.trainer import TrainConfig, Trainer

log = logging.getLogger(__name__)

# Defaults of a raw run (the shape comes from the RGB model it starts from): a fine-tuning learning rate, since
# the trunk is already trained, and a short EMA, since CPU runs are short.
RAW_TRAIN = dict(batch_size=4, patch=96, lr=2e-4, lr_min=1e-5, warmup_steps=20, ema_decay=0.995,
                 val_every=200, val_crop=192, jpeg_native_quality=90, threads=2)
VAL_LEVELS = ((FULL_FRAME, 3200), (PHONE, 3200))  # validation only: mid-range levels of the two sensor models


def raw_config(rgb: ModelConfig) -> ModelConfig:
    """The raw model of an RGB model's shape."""
    return replace(rgb, arch=RAW_ARCH, in_channels=4)


def default_raw_train_config(init: Path | None, **overrides: Any) -> TrainConfig:
    """The raw run's config: RAW_TRAIN, the shape of the model in `init` (or of the RGB default's shape class)."""
    shape = raw_config(read_card(init).config) if init else ModelConfig(arch=RAW_ARCH, in_channels=4)
    if shape.arch != RAW_ARCH:
        shape = raw_config(shape)
    return TrainConfig(model=shape, **{**RAW_TRAIN, **overrides})


class RawTrainer(Trainer):
    """Trainer for the joint raw model; `init` may be an RGB model (its trunk is copied) or a raw model."""

    def __init__(self, cfg: TrainConfig, data: list[Path], out: Path, device: str = "auto",
                 init: Path | None = None, name: str = "raw") -> None:
        if cfg.model.arch != RAW_ARCH:
            raise ValueError(f"train-raw needs a {RAW_ARCH} model config, got {cfg.model.arch!r}")
        init_card = read_card(init) if init else None
        same_kind = init_card is not None and init_card.config.kind == "raw"
        super().__init__(cfg, data, out, device=device, init_weights=init if same_kind else None, name=name,
                         card_extra={"task": "raw", "raw_noise": {"shot_range": list(SHOT_RANGE)}})
        if init is not None and not same_kind:
            rgb, card = load_model(Path(init))
            assert isinstance(self.model, RawUNet)
            self.model.load_rgb_trunk(rgb.state_dict(), card.config)
            self.averaged = AveragedModel(self.model, avg_fn=self._ema_step)
            self.averaged.requires_grad_(False)
            self.init_weights = str(init)
            self.card_extra["init_kind"] = "rgb trunk"
        self._raw_val: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def supervised_loss(self, model: UNetDenoiser, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        crops = clean.permute(0, 2, 3, 1).detach().float().cpu().numpy()
        batch = synthesize_raw(crops, np.random.default_rng(seed))
        dev = clean.device
        assert isinstance(model, RawUNet)
        out = model.forward_encoded(batch.noisy.to(dev), batch.std.to(dev))
        return F.l1_loss(out, linear_to_srgb(batch.target.to(dev)))

    @property
    def metric_name(self) -> str:
        return "val_psnr_raw_synthetic"

    def _val_set(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        if self._raw_val is None:
            self._raw_val = []
            m = self.cfg.model.size_multiple
            for k, path in enumerate(self.val_files):
                try:
                    img = load_rgb8(path, self.cfg.jpeg_downscale, native_quality=self.cfg.jpeg_native_quality)
                except (ValueError, OSError):
                    continue
                h, w = img.shape[:2]
                c = min(self.cfg.val_crop, min(h, w) // m * m)
                if c < 4 * m:
                    continue
                y, x = (h - c) // 2, (w - c) // 2
                crop = img[y:y + c, x:x + c].astype(np.float32)[None] / 255
                for j, (sensor, iso) in enumerate(VAL_LEVELS):
                    shot = sensor.shot(iso)
                    b = synthesize_raw(crop, np.random.default_rng(1000 + 10 * k + j), (shot, shot * (1 + 1e-9)))
                    self._raw_val.append((b.noisy, b.std, linear_to_srgb(b.target).clamp(0, 1)))
        return self._raw_val

    def validate(self) -> float | None:
        val = self._val_set()
        if not val:
            return None
        self.ema.eval()
        scores = []
        with torch.inference_mode():
            for noisy, std, target in val:
                assert isinstance(self.ema, RawUNet)
                out = self.ema.forward_encoded(noisy.to(self.device), std.to(self.device)).clamp(0, 1)
                scores.append(psnr(target[0].numpy(), out[0].float().cpu().numpy()))
        return float(np.mean(scores))
