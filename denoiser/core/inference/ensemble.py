"""Geometric self-ensemble: denoise flipped/rotated views of a photo and average them, mapped back.

A convolutional model is not exactly equivariant to flips and quarter turns, so its errors on the eight views
of a photo differ; their mean is cleaner, at N times the work (the README's benchmark table gives the gain
of `--passes 8`). Importing this module does not import torch.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from denoiser.core.progress import Progress, SubProgress

if TYPE_CHECKING:
    import torch

# The 8 symmetries of the square in the order they are used, so that 2 passes pair the photo with its mirror
# image across a diagonal, and 4 add the half-turns of both. Each: (quarter turns, then mirror left-right).
VIEWS = ((0, False), (1, True), (2, False), (3, True), (1, False), (0, True), (3, False), (2, True))
PASSES = (1, 2, 4, 8)


def check_passes(passes: int) -> None:
    if passes not in PASSES:
        raise ValueError(f"passes must be one of {', '.join(map(str, PASSES))}, got {passes}")


def to_view(x: torch.Tensor, view: tuple[int, bool]) -> torch.Tensor:
    """(..., H, W) seen in one of VIEWS; from_view undoes it."""
    turns, mirror = view
    y = x.rot90(turns, dims=(-2, -1)) if turns else x
    return y.flip(-1) if mirror else y


def from_view(y: torch.Tensor, view: tuple[int, bool]) -> torch.Tensor:
    turns, mirror = view
    x = y.flip(-1) if mirror else y
    return x.rot90(-turns, dims=(-2, -1)) if turns else x


class _PassProgress(SubProgress):
    """One pass: its share of the bar, and 'pass k/n, ' before the pass's own message."""

    def __init__(self, parent: Progress, k: int, n: int) -> None:
        super().__init__(parent, k / n, (k + 1) / n)
        self.prefix = f"pass {k + 1}/{n}, " if n > 1 else ""

    def report(self, fraction: float, message: str = "") -> None:
        super().report(fraction, self.prefix + message)


def self_ensemble(run: Callable[[torch.Tensor, Progress], torch.Tensor], x: torch.Tensor, passes: int,
                  progress: Progress) -> torch.Tensor:
    """The mean of run(view of x) mapped back, over the first `passes` VIEWS (1: just run(x)).
    run(tensor, progress) denoises an (N, C, H, W) tensor and reports its own 0..1 progress."""
    import torch

    check_passes(passes)
    with torch.inference_mode():  # the sum is kept in place: one photo-sized buffer, not one per pass
        out = from_view(run(to_view(x, VIEWS[0]), _PassProgress(progress, 0, passes)), VIEWS[0])
        for k, view in enumerate(VIEWS[1:passes], start=1):
            out.add_(from_view(run(to_view(x, view), _PassProgress(progress, k, passes)), view))
        return out.div_(passes) if passes > 1 else out
