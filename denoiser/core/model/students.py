"""Students of a trained U-Net: cheaper architectures that start from its weights instead of from scratch.

A student is the source without some of its residual blocks (`core/model/prune.py`), then changed in two ways
that leave what it computes unchanged until it is trained (by distillation, `denoiser train --teacher`):

- NAF blocks appended to a stack (`ModelConfig.enc_naf`, `mid_naf`, `dec_naf`) start as the identity (their
  learnt branch scales zeroed, as NAFNet initialises them);
- wider levels (`widths` larger than the source's): every convolution of the source is copied into the corner of
  the student's; the new output channels keep their fresh initialisation and the new input channels are read with
  zero weights, so the extra channels carry values that nothing reads yet, and receive gradients from the start.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from denoiser.core.model.network import ModelConfig, NAFBlock, ResBlock, UNetDenoiser, build_model
from denoiser.core.model.prune import prune


@dataclass
class Transplant:
    """What `transplant` did, by state-dict key or block name."""

    copied: list[str] = field(default_factory=list)  # same shape as in the source
    widened: list[str] = field(default_factory=list)  # the source's tensor in the corner of a larger one
    identity: list[str] = field(default_factory=list)  # blocks absent from the source, started as the identity


def _block_of(key: str) -> str:
    """'mid.3.expand.weight' -> 'mid.3'; 'enc.1.0.c1.bias' -> 'enc.1.0'."""
    parts = key.split(".")
    return ".".join(parts[:2] if parts[0] == "mid" else parts[:3])


def transplant(student: UNetDenoiser, source: UNetDenoiser) -> Transplant:
    """Load the source's weights into `student` (same names: prune the source first), widening where the student's
    levels are wider, and start every block the source lacks as the identity. ValueError when a source weight has
    no place in the student, does not fit, or a missing block cannot start as the identity."""
    src, dst = source.state_dict(), student.state_dict()
    unused = sorted(set(src) - set(dst))
    if unused:
        raise ValueError(f"the student has no place for the source's {unused[0]} (and {len(unused) - 1} more); "
                         "remove those blocks from the source first (core/model/prune.py)")
    done = Transplant()
    state: dict[str, torch.Tensor] = {}
    for key, fresh in dst.items():
        if key not in src:
            if _block_of(key) not in done.identity:
                done.identity.append(_block_of(key))
            state[key] = fresh
            continue
        old = src[key]
        if old.shape == fresh.shape:
            state[key] = old.clone()
            done.copied.append(key)
            continue
        if old.dim() != fresh.dim() or any(o > n for o, n in zip(old.shape, fresh.shape, strict=True)):
            raise ValueError(f"{key}: the source's {tuple(old.shape)} does not fit the student's {tuple(fresh.shape)}")
        if key.startswith(("enc.", "mid.", "dec.")) and isinstance(student.get_submodule(_block_of(key)), NAFBlock):
            raise ValueError(f"{key}: a NAF block cannot be widened (its channel norm would mix in the new channels)")
        wide = fresh.clone()
        if wide.dim() >= 2:
            wide[:, old.shape[1]:] = 0  # new input channels: read with zero weights
        wide[tuple(slice(0, n) for n in old.shape)] = old
        state[key] = wide
        done.widened.append(key)
    student.load_state_dict(state)
    for name in done.identity:
        block = student.get_submodule(name)
        if not isinstance(block, ResBlock | NAFBlock):
            raise ValueError(f"{name}: the source has no such block and a {type(block).__name__} cannot start as "
                             "the identity")
        block.start_as_identity()
    return done


def student_from(source: UNetDenoiser, drop: Sequence[str], config: ModelConfig) -> tuple[UNetDenoiser, Transplant]:
    """The student of architecture `config`: the source without the `drop` blocks, transplanted (see `transplant`)."""
    pruned = prune(source, list(drop))
    kept = pruned.config
    if (config.arch, config.in_channels, len(config.widths)) != (kept.arch, kept.in_channels, len(kept.widths)):
        raise ValueError("a student keeps its source's architecture, input channels and number of levels")
    if (config.enc_blocks, config.mid_blocks, config.dec_blocks, config.block) != \
            (kept.enc_blocks, kept.mid_blocks, kept.dec_blocks, kept.block):
        raise ValueError(f"after removing {', '.join(drop) or 'nothing'} the source has {kept.block} blocks "
                         f"enc {list(kept.enc_blocks)}, mid {kept.mid_blocks}, dec {list(kept.dec_blocks)}; the "
                         "student's config must keep exactly those (NAF blocks are added by enc_naf/mid_naf/dec_naf)")
    student = build_model(config)
    return student, transplant(student, pruned)
