"""Shrink a trained U-Net by removing residual blocks, keeping every surviving weight.

A residual block computes x + f(x), so removing it leaves a network that still works (the identity stands in
for the block); the surviving blocks are renumbered in order and keep their weights. `drop_costs` measures how
much each block is worth on held-out crops, so the cheapest ones go first; a pruned model is then trained back
(distilled from the full one, see core/training/distill.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from denoiser.core.evaluation.metrics import psnr
from denoiser.core.model.network import ModelConfig, NAFBlock, ResBlock, UNetDenoiser, build_model


def block_names(config: ModelConfig) -> list[str]:
    """Every block of the U-Net's stacks, as state-dict prefixes: enc.<level>.<j>, mid.<j>, dec.<level>.<j>."""
    names = [f"enc.{i}.{j}" for i, n in enumerate(config.enc_blocks) for j in range(n)]
    names += [f"mid.{j}" for j in range(config.mid_blocks)]
    names += [f"dec.{i}.{j}" for i, n in enumerate(config.dec_blocks) for j in range(n)]
    return names


def _stack_of(name: str) -> tuple[str, int]:
    """'mid.3' -> ('mid', 3); 'enc.1.0' -> ('enc.1', 0)."""
    stack, _, index = name.rpartition(".")
    return stack, int(index)


def pruned_config(config: ModelConfig, drop: Iterable[str]) -> ModelConfig:
    """The architecture left after removing the named blocks (ValueError naming an unknown or repeated one)."""
    drop = list(drop)
    known = set(block_names(config))
    bad = [n for n in drop if n not in known]
    if bad:
        raise ValueError(f"no block named {bad[0]!r}; blocks are {', '.join(block_names(config))}")
    if len(set(drop)) != len(drop):
        raise ValueError("a block is named twice in the list to remove")
    if config.block == "plain":
        raise ValueError("plain conv-relu blocks are not residual: removing one breaks the network")
    counts = {stack: 0 for stack in ("mid", *(f"enc.{i}" for i in range(len(config.enc_blocks))),
                                      *(f"dec.{i}" for i in range(len(config.dec_blocks))))}
    for name in drop:
        counts[_stack_of(name)[0]] += 1
    return replace(config,
                   enc_blocks=tuple(n - counts[f"enc.{i}"] for i, n in enumerate(config.enc_blocks)),
                   dec_blocks=tuple(n - counts[f"dec.{i}"] for i, n in enumerate(config.dec_blocks)),
                   mid_blocks=config.mid_blocks - counts["mid"])


def prune(model: UNetDenoiser, drop: Sequence[str]) -> UNetDenoiser:
    """A new model without the named blocks; every other weight copied (surviving blocks renumbered)."""
    config = pruned_config(model.config, drop)
    renamed: dict[str, str] = {}  # old block prefix -> new prefix
    for stack in {_stack_of(n)[0] for n in block_names(model.config)}:
        kept = [n for n in block_names(model.config) if _stack_of(n)[0] == stack and n not in drop]
        renamed.update({old: f"{stack}.{j}" for j, old in enumerate(kept)})
    state = {}
    for key, value in model.state_dict().items():
        prefix = next((p for p in renamed if key.startswith(p + ".")), None)
        if prefix is None and any(key.startswith(n + ".") for n in drop):
            continue
        state[key if prefix is None else renamed[prefix] + key[len(prefix):]] = value.clone()
    small = build_model(config)
    small.load_state_dict(state)  # strict: every weight of the smaller model came from the larger one
    return small.eval()


class _Skip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def drop_costs(model: UNetDenoiser, crops: Sequence[tuple[torch.Tensor, torch.Tensor, float | torch.Tensor]],
               names: Sequence[str] | None = None) -> dict[str, float]:
    """Mean PSNR loss (dB) on (clean, noisy, level) crops when each block alone is replaced by the identity.
    level: a sigma, or the noise-level map the model takes. Measure on the noise the model was trained for: blocks
    worth nothing on Gaussian noise can carry camera noise (measured: see the README's training section)."""
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
        stack, index = _stack_of(name)
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
