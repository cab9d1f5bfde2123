"""Training the learned noise-map estimator (noise.learned) on clean photos with synthetic noise.

One resumable command (`denoiser train-estimator`): crops from the same patch pool as the denoiser's training,
the noise mixture below (camera pipeline heavy, since that is where the classical estimator fails), target =
the local std map of the added noise. A checkpoint (weights, optimiser, step, elapsed time; tensors only, read
back with weights_only=True) is written every two minutes and at the end; --resume continues it.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from denoiser.core.files import atomic_write_bytes
from denoiser.core.noise import NoiseConfig, synthesize
from denoiser.core.noise.learned import NoiseMapNet, estimator_loss, save_estimator
from denoiser.core.progress import NullProgress, Progress
from denoiser.core.training.patches import PatchPool, list_images

log = logging.getLogger(__name__)

ESTIMATOR_NOISE = NoiseConfig(sigma_min=0.0, sigma_max=60.0, p_gaussian=0.3, p_poisson=0.1, p_correlated=0.15,
                              p_camera=0.45, p_jpeg=0.15, level_map=True)


@dataclass(frozen=True)
class EstimatorTrainConfig:
    minutes: float = 20.0
    batch_size: int = 16
    patch: int = 128
    lr: float = 2e-3
    seed: int = 0
    checkpoint_every_s: float = 120.0


def _save_checkpoint(path: Path, net: NoiseMapNet, opt: torch.optim.Optimizer, step: int, elapsed: float) -> None:
    import io

    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": torch.tensor(step),
                "elapsed": torch.tensor(elapsed)}, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_estimator(data: list[Path], out: Path, cfg: EstimatorTrainConfig = EstimatorTrainConfig(),
                    resume: bool = False, progress: Progress | None = None) -> dict[str, float]:
    """Train (or continue) an estimator; writes out/estimator.safetensors. Returns steps, minutes, last loss."""
    progress = progress or NullProgress()
    files = list_images(data)
    if not files:
        raise ValueError(f"no images found in {', '.join(map(str, data))}")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    pool = PatchPool(files, 512, rng)
    pool.fill()
    net = NoiseMapNet()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step, elapsed = 0, 0.0
    ckpt = out / "estimator_checkpoint.pt"
    if resume:
        from denoiser.core.model.foreign import load_torch_weights

        state = load_torch_weights(ckpt)  # ValueError naming the file; never runs a pickle
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
    budget = cfg.minutes * 60
    start, last_save, loss_avg = time.monotonic() - elapsed, time.monotonic(), float("nan")
    while elapsed < budget:
        progress.check_cancelled()
        frac = elapsed / budget
        for g in opt.param_groups:
            g["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        clean = torch.from_numpy(pool.batch(cfg.batch_size, cfg.patch)).permute(0, 3, 1, 2).contiguous()
        noisy, target = synthesize(clean, ESTIMATOR_NOISE, gen)
        loss = estimator_loss(net(noisy), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        value = loss.item()
        loss_avg = value if math.isnan(loss_avg) else 0.98 * loss_avg + 0.02 * value
        elapsed = time.monotonic() - start
        progress.report(min(1.0, elapsed / budget), f"step {step}, loss {loss_avg:.4f}")
        if step % 100 == 0:
            log.info("step %d  %.1f min  loss %.4f", step, elapsed / 60, loss_avg)
        if time.monotonic() - last_save > cfg.checkpoint_every_s:
            _save_checkpoint(ckpt, net, opt, step, elapsed)
            last_save = time.monotonic()
    _save_checkpoint(ckpt, net, opt, step, elapsed)
    meta = {"steps": step, "minutes": round(elapsed / 60, 1), "loss": round(loss_avg, 5),
            "data": [str(d) for d in data], "noise": ESTIMATOR_NOISE.to_dict()}
    save_estimator(net.eval(), out / "estimator.safetensors", meta)
    return {"steps": step, "minutes": elapsed / 60, "loss": loss_avg}
