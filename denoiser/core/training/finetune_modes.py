"""The two fine-tuning modes as trainers: clean photos (synthetic noise, supervised) and noisy photos only
(self-distillation with the folder's own noise, core.training.selfsup and core.training.noise_bank). Both keep the
weights near the base (L2-SP)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.evaluation.metrics import psnr
from denoiser.core.model.experts import HEAVY_RAMP, LevelRamp
from denoiser.core.model.network import UNetDenoiser, build_model
from denoiser.core.noise.learned import auto_map
from denoiser.core.training.calibration import CALIBRATION_SIDE
from denoiser.core.training.finetune_run import FinetuneError, FinetuneSpec
from denoiser.core.training.noise_bank import NoiseBank
from denoiser.core.training.patches import PatchPool
from denoiser.core.training.selfsup import NativePatchPool, bank_photos, native_val_crops, weight_anchor
from denoiser.core.training.trainer import TrainConfig, Trainer


class FinetuneTrainer(Trainer):
    """Clean mode: supervised denoising of the user's clean photos plus synthetic noise, with a weight
    anchor to the base. The noisy mode (NoisyFinetuneTrainer) changes the loss, the pool and validation."""

    pool_class: type[PatchPool] = PatchPool

    def __init__(self, cfg: TrainConfig, spec: FinetuneSpec, out: Path, device: str,
                 card_extra: dict[str, Any] | None = None, anchor_weight: float = 100.0) -> None:
        self.spec, self.sigma_in, self.anchor_weight = spec, float(spec.sigma), anchor_weight
        super().__init__(cfg, [Path(spec.folder)], out, device, init_weights=Path(spec.base_path),
                         loss_fn=self.finetune_loss, card_extra=card_extra, name=spec.name)
        exclude = set(spec.skipped)
        self.train_files = [f for f in self.train_files if str(f) not in exclude]
        self.val_files = [f for f in self.val_files if str(f) not in exclude]
        if not self.train_files:
            raise FinetuneError(f"{spec.folder}: no readable images left to train on")
        self.pool = self.pool_class(self.train_files, cfg.pool_size, self.rng, cfg.pool_refresh, cfg.jpeg_downscale)
        self.reference = [p.detach().clone() for p in self.model.parameters()]

    @staticmethod
    def method(spec: FinetuneSpec) -> str:
        """The method as the model card names it."""
        return "supervised synthetic noise + L2-SP"

    def finetune_loss(self, model: UNetDenoiser, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.main_loss(model, batch, gen) + self.anchor_weight * weight_anchor(model, self.reference)

    def main_loss(self, model: UNetDenoiser, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.supervised_loss(model, batch, gen)


class NoisyFinetuneTrainer(FinetuneTrainer):
    """Noisy mode: on the real photo, at the map Auto measures on it, do what the frozen base does at the
    calibrated strength (or the user's target); on that pseudo-clean output plus fresh synthetic noise of the
    folder's own spectrum at that map, restore it. Validation scores the latter on held-out photos (no
    references)."""

    pool_class = NativePatchPool
    # weight of "match the base at Auto" on the real crops, against 1 for "restore the base output plus fresh
    # noise". It copies the base's own errors on the photos it trains on: with the real-noise bank 0 scored best
    # (RENOIR50 T3i's tuning half, 4 CPU-minutes: +1.05 dB against +0.89 at 0.25,
    # benchmarks/results/finetune_camera_tune_real_dw0.json); with the synthetic noise 0.25 had (Nam25,
    # benchmarks/finetune_noisy.py).
    distill_weight = 0.0
    # what noise the restoring term adds to the pseudo-clean crops: "synthetic" (the folder's NoiseModel, scaled
    # by 1/gain), "real" (crops of the folder's own noise, noise_bank.NoiseBank, at Auto's map) or "both" (half
    # the batch each, same cost per step). "real" scored best on RENOIR50 T3i's tuning half (4 CPU-minutes:
    # +0.89 dB against synthetic -0.03; both +0.82 against real +0.93 at 1 minute; finetune_camera_tune_*.json)
    noise_source = "real"
    # the pseudo-clean target is the base's mean over this many views of the crop (inference.ensemble.VIEWS). 8
    # views are a better teacher per step but cost 8 forward passes: at equal CPU time they did not pay (RENOIR50
    # T3i's tuning half, 4 CPU-minutes: +1.08 dB against +1.11 at 1; finetune_camera_tune_teacher{1,8}.json)
    teacher_passes = 1
    # share of each batch trained by recorrupted-to-recorrupted pairs (Pang et al. 2021) instead of the pseudo-clean
    # target: the photo plus alpha x a fresh noise sample in, the photo minus that sample / alpha as the target. The
    # two noises are exchangeable, so the target's noise is symmetric about 0 given the input, and the loss pulls
    # towards the clean photo rather than towards the base's output; the input carries sqrt(1 + alpha^2) x the
    # photo's noise, and the level the model is given says so. Needs the real-noise bank. Not used: on the tuning
    # halves (4 CPU-minutes, finetune_camera_tune_r2r_*.json) half the batch at alpha 1 gave T3i +1.09 dB against
    # +1.11 and Nam25 +0.55 against +0.66 (dglr's 2 scored photos +0.33 against +0.22); the whole batch, T3i
    # +0.31 and dglr -1.82; alpha 0.5, T3i +1.02.
    r2r_share = 0.0
    r2r_alpha = 1.0

    def __init__(self, cfg: TrainConfig, spec: FinetuneSpec, out: Path, device: str,
                 card_extra: dict[str, Any] | None = None, anchor_weight: float = 100.0) -> None:
        super().__init__(cfg, spec, out, device, card_extra, anchor_weight)
        self.target_sigma = spec.target_sigma
        # The calibration's gain says how much harder than Auto's map the base must run to remove synthetic noise
        # of the measured kind. Auto's map itself is set on real photos, where the base does best at 1 x the map
        # (the tuning halves of RENOIR50 T3i and dglr: 1.0 beat 1.5 by 1.4-1.8 dB where the calibration chose
        # 1.0 and 1.5), so the target stays at Auto and the synthetic noise is scaled down by the gain instead:
        # pairs the base restores best at Auto's map, as it does the real photos.
        self.noise_scale = 1.0 / max(float(spec.strength_gain), 1e-3)
        self.noise_model = spec.noise()
        self.base: UNetDenoiser = build_model(cfg.model).to(self.device).requires_grad_(False).eval()
        self.base.load_state_dict(self.model.state_dict())  # frozen, for the output anchor
        # the base's heavy-noise expert (core.model.experts.expert_file), blended in as the app blends it, so the
        # pseudo-clean targets and the bank are the base's output as the app makes it
        from denoiser.core.inference.heavy_expert import HeavyExpert
        from denoiser.core.model.file import read_card

        self.heavy = HeavyExpert.of(Path(spec.base_path), read_card(Path(spec.base_path)))
        self.expert, self.ramp = self._expert_network()
        self._val_maps: list[torch.Tensor] = []  # Auto's map of each validation crop (beside _val_cache)
        self.bank = self._build_bank() if self.noise_source in ("real", "both") else None

    def _expert_network(self) -> tuple[UNetDenoiser | None, LevelRamp]:
        """The base model's heavy-noise expert as a network, frozen on the trainer's device, or None; its ramp."""
        from denoiser.core.inference.engine import Denoiser

        if self.heavy is None:
            return None, HEAVY_RAMP
        cpu = torch.device("cpu")  # placed as an engine places it: the bank's engine is served from the same entry
        net = self.heavy.get(cpu, False, lambda m: Denoiser._place(m, cpu))
        if not isinstance(net, UNetDenoiser):
            return None, self.heavy.ramp  # damaged: the base runs alone, as the app then runs it
        return copy.deepcopy(net).to(self.device).requires_grad_(False).eval(), self.heavy.ramp

    def _base_output(self, noisy: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        """The frozen base at `strength` (a map or one level per crop) with its expert blended in pixel by pixel, as
        the app runs it."""
        out: torch.Tensor = self.base(noisy, strength)
        if self.expert is None:
            return out
        level = F.interpolate(strength, size=noisy.shape[-2:], mode="nearest") if strength.dim() == 4 \
            else strength.reshape(-1, 1, 1, 1)
        weight = self.ramp.weight(level)
        if not bool((weight > 0).any()):
            return out
        heavy: torch.Tensor = self.expert(noisy, strength)
        return out + weight * (heavy - out)

    def _build_bank(self) -> NoiseBank:
        """The folder's real noise: the base (with its expert) at Auto's map on centre crops of the training
        photos."""
        from denoiser.core.inference.engine import Denoiser
        from denoiser.core.noise.level import NoiseLevel

        engine = Denoiser(copy.deepcopy(self.base), device=str(self.device))
        engine.heavy = self.heavy
        photos = bank_photos(self.train_files, CALIBRATION_SIDE)
        try:
            return NoiseBank.build(photos, lambda img, level: engine.denoise(img, NoiseLevel.auto(level)), auto_map)
        except ValueError as exc:
            raise FinetuneError(f"{self.spec.folder}: {exc}") from exc

    @classmethod
    def method(cls, spec: FinetuneSpec) -> str:
        synthetic = f"synthetic noise of the folder's own spectrum scaled by 1/{spec.strength_gain:g}"
        real = "crops of the folder's own noise (the base's residual in flat areas) at Auto's map"
        added = {"synthetic": synthetic, "real": real, "both": f"{real} or {synthetic}"}[cls.noise_source]
        strength = (f"the strength target {spec.target_sigma:g}" if spec.target_sigma is not None else "Auto's map")
        match = (f"matching the base at {strength} on the photos (weight {cls.distill_weight:g}) and "
                 if cls.distill_weight > 0 else "")
        return (f"self-distillation with the folder's own noise: {match}restoring the base's output at {strength} "
                f"from it plus {added} + L2-SP")

    def main_loss(self, model: UNetDenoiser, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        measured = self.measured_map(batch)
        # jitter the level the engine would measure, so nearby estimates behave alike
        jitter = torch.exp((torch.rand(batch.shape[0], generator=gen, device=batch.device) - 0.5) * 0.5)
        level = measured * jitter[:, None, None, None]
        k = int(round(batch.shape[0] * self.r2r_share)) if self.bank is not None else 0
        r2r = self._r2r_loss(model, batch[:k], measured[:k], jitter[:k], gen) if k else None
        if k == batch.shape[0]:
            assert r2r is not None
            return r2r
        batch, measured, level = batch[k:], measured[k:], level[k:]
        target = self._pseudo_clean(batch, level)
        noise = self._fresh_noise(target, measured, gen)
        # the matching term at weight 0 is skipped: its forward and backward would only be multiplied by 0 (the
        # network has no norm statistics or dropout, so every update is the same; ~1.4x the steps per minute)
        main = self.distill_weight * F.l1_loss(model(batch, level), target) \
            if self.distill_weight > 0 or noise is None else None
        if noise is not None:  # new noise every step, so no noise is memorised
            restore = F.l1_loss(model(target + noise, level), target)
            main = restore if main is None else main + restore
        assert main is not None
        if r2r is None:
            return main
        share = k / (k + batch.shape[0])
        return share * r2r + (1 - share) * main

    def _r2r_loss(self, model: UNetDenoiser, noisy: torch.Tensor, measured: torch.Tensor, jitter: torch.Tensor,
                  gen: torch.Generator) -> torch.Tensor:
        """Recorrupted-to-recorrupted on real crops: input noisy + a z, target noisy - z / a (r2r_share)."""
        assert self.bank is not None
        a = self.r2r_alpha
        at = F.interpolate(measured, size=noisy.shape[-2:], mode="nearest")
        z = self.bank.sample(tuple(noisy.shape), gen, at)
        level = measured * (jitter * (1 + a * a) ** 0.5)[:, None, None, None]
        return F.l1_loss(model(noisy + a * z, level), noisy - z / a)

    def _fresh_noise(self, like: torch.Tensor, measured: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        """The restoring term's noise for crops like `like` at their measured map (noise_source says which)."""
        synthetic = self._synthetic_noise(like, measured, gen) if self.noise_model is not None and \
            self.noise_source in ("synthetic", "both") else None
        if self.bank is None:
            return synthetic
        at = F.interpolate(measured, size=like.shape[-2:], mode="nearest")
        real = self.bank.sample(tuple(like.shape), gen, at)
        if synthetic is None:
            return real
        half = like.shape[0] // 2
        return torch.cat([real[:half], synthetic[half:]])

    def measured_map(self, crops: torch.Tensor) -> torch.Tensor:
        """Auto's noise map of each crop (N, 1, H/2, W/2), 0..255 units: the level the app feeds the model on
        such content (brighter areas of a camera photo carry more noise, and the map says so)."""
        maps = [auto_map(c.permute(1, 2, 0).float().cpu().numpy()) for c in crops]
        return torch.from_numpy(np.stack(maps))[:, None].to(crops.device)

    def _synthetic_noise(self, like: torch.Tensor, measured: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Noise of the folder's measured kind for crops like `like`, at their measured map (a relative model)."""
        assert self.noise_model is not None
        at = F.interpolate(measured, size=like.shape[-2:], mode="nearest")
        return self.noise_model.sample(tuple(like.shape), gen, like.device, level=at) * self.noise_scale

    def _pseudo_clean(self, noisy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The frozen base's output at the level map (as Auto runs it) or at the user's strength target."""
        strength = level if self.target_sigma is None else \
            torch.full((noisy.shape[0],), float(self.target_sigma), device=noisy.device)
        if self.teacher_passes == 1:
            with torch.no_grad():
                return self._base_output(noisy, strength)
        from denoiser.core.inference.ensemble import VIEWS, check_passes, from_view, to_view

        check_passes(self.teacher_passes)
        with torch.no_grad():
            total = torch.zeros_like(noisy)
            for view in VIEWS[:self.teacher_passes]:
                level = to_view(strength, view) if strength.dim() == 4 else strength
                total += from_view(self._base_output(to_view(noisy, view), level), view)
        return total / self.teacher_passes

    def validate(self) -> float | None:
        """PSNR of restoring held-out pseudo-clean crops from them plus fixed synthetic noise of the folder's
        own kind, each at its own measured map."""
        if self._val_cache is None:
            gen = torch.Generator().manual_seed(1234)
            self._val_cache, self._val_maps = [], []
            for crop in native_val_crops(self.val_files, self.cfg.val_crop, 4 * self.cfg.model.size_multiple):
                crop = crop.to(self.device)
                measured = self.measured_map(crop)
                target = self._pseudo_clean(crop, measured)
                noise = self._fresh_noise(crop, measured, gen)
                self._val_cache.append((target, target + (noise if noise is not None else 0)))
                self._val_maps.append(measured)
        if not self._val_cache:
            return None
        self.ema.eval()
        vals = []
        with torch.inference_mode():
            for (target, noisy), measured in zip(self._val_cache, self._val_maps, strict=True):
                out = self.ema(noisy, measured).clamp(0, 1)
                vals.append(psnr(target.clamp(0, 1).cpu().numpy(), out.float().cpu().numpy()))
        return float(np.mean(vals))


TRAINERS: dict[str, type[FinetuneTrainer]] = {"clean": FinetuneTrainer, "noisy": NoisyFinetuneTrainer}
