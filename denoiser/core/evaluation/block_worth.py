"""How much each residual block of a trained U-Net is worth: the quality lost when it alone is skipped.

Used to choose which blocks `core.model.prune` removes. Measure on the noise the model is meant for: blocks worth
nothing on synthetic noise can carry real camera noise (measured: see the README's training section).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from denoiser.core.evaluation.metrics import psnr
from denoiser.core.model.network import NAFBlock, ResBlock, UNetDenoiser
from denoiser.core.model.prune import block_names, stack_of


class _Skip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def drop_costs(model: UNetDenoiser, crops: Sequence[tuple[torch.Tensor, torch.Tensor, float | torch.Tensor]],
               names: Sequence[str] | None = None) -> dict[str, float]:
    """Mean PSNR loss (dB) on (clean, noisy, level) crops when each block alone is replaced by the identity.
    level: a sigma, or the noise-level map the model takes."""
    def score() -> float:
        with torch.inference_mode():
            return float(np.mean([psnr(c[0].numpy(), model.forward(n, torch.as_tensor(s).reshape(-1) if isinstance(
                s, float) else s)[0].clamp(0, 1).numpy()) for c, n, s in crops]))

    return drop_costs_by(model, score, names)


def drop_costs_by(model: UNetDenoiser, score: Callable[[], float], names: Sequence[str] | None = None
                  ) -> dict[str, float]:
    """How much score() (higher is better; it runs `model`, e.g. through an engine on real photos) falls when each
    block alone is replaced by the identity."""
    model.eval()
    base = score()
    costs = {}
    for name in names or block_names(model.config):
        stack, index = stack_of(name)
        seq = model.get_submodule(stack)
        assert isinstance(seq, nn.Sequential)
        block = seq[index]
        if not isinstance(block, ResBlock | NAFBlock):
            raise ValueError(f"{name} is a {type(block).__name__}, not a residual block")
        seq[index] = _Skip()
        try:
            costs[name] = base - score()
        finally:
            seq[index] = block
    return costs
