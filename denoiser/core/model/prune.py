"""Shrink a trained U-Net by removing residual blocks, keeping every surviving weight.

A residual block computes x + f(x), so removing it leaves a network that still works (the identity stands in
for the block); the surviving blocks are renumbered in order and keep their weights. `core.evaluation.block_worth`
measures how much each block is worth, so the cheapest ones go first; a pruned model is then trained back
(`denoiser train --init`, with clean targets or `--teacher`, core/training/distill.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from denoiser.core.model.network import ModelConfig, UNetDenoiser, build_model


def block_names(config: ModelConfig) -> list[str]:
    """Every block of the U-Net's stacks, as state-dict prefixes: enc.<level>.<j>, mid.<j>, dec.<level>.<j>."""
    names = [f"enc.{i}.{j}" for i, n in enumerate(config.enc_blocks) for j in range(n)]
    names += [f"mid.{j}" for j in range(config.mid_blocks)]
    names += [f"dec.{i}.{j}" for i, n in enumerate(config.dec_blocks) for j in range(n)]
    return names


def stack_of(name: str) -> tuple[str, int]:
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
    if any((*config.enc_naf, *config.dec_naf, config.mid_naf)):
        raise ValueError("pruning a model with appended NAF blocks is not supported; prune its source first")
    if config.block == "plain":
        raise ValueError("plain conv-relu blocks are not residual: removing one breaks the network")
    counts = {stack: 0 for stack in ("mid", *(f"enc.{i}" for i in range(len(config.enc_blocks))),
                                      *(f"dec.{i}" for i in range(len(config.dec_blocks))))}
    for name in drop:
        counts[stack_of(name)[0]] += 1
    return replace(config,
                   enc_blocks=tuple(n - counts[f"enc.{i}"] for i, n in enumerate(config.enc_blocks)),
                   dec_blocks=tuple(n - counts[f"dec.{i}"] for i, n in enumerate(config.dec_blocks)),
                   mid_blocks=config.mid_blocks - counts["mid"])


def prune(model: UNetDenoiser, drop: Sequence[str]) -> UNetDenoiser:
    """A new model without the named blocks; every other weight copied (surviving blocks renumbered)."""
    config = pruned_config(model.config, drop)
    renamed: dict[str, str] = {}  # old block prefix -> new prefix
    for stack in {stack_of(n)[0] for n in block_names(model.config)}:
        kept = [n for n in block_names(model.config) if stack_of(n)[0] == stack and n not in drop]
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
