"""Self-supervised fine-tuning on noisy photos only (no clean references): noise-matched self-distillation.

Real camera noise is spatially correlated (Nam25, noisy - reference: correlation 0.72 at lag 1, 0.43 at
lag 2, 0.19 at lag 4), which breaks the independence that Neighbor2Neighbor-style losses need. Measured
here on Nam25 (session 1): N2N on pixel-shuffle-downsampled (PD2) sub-images alone lowered PSNR against
the references; anchored to the base it gained +0.00 dB in 10 minutes. What the base model lacks on such
photos is not a new skill but the right strength: the level the estimator reads on correlated noise
drives it too gently (Nam25: the best strength is ~3x the estimate).

So noisy mode learns the folder's noise from the folder itself:
1. core.calibration.measure_noise: the base run at a strong setting leaves the noise behind in flat areas
   of (noisy - denoised); its spatial spectrum and channel covariance make a NoiseModel;
2. core.calibration.calibrate_strength: that noise re-synthesised onto the base output gives pairs with a
   known answer; the strength gain (x the estimated level) that restores them best is this camera's gain
   (median over the folder);
3. core.finetune trains the model to do, at the level the engine measures, what the base does at
   gain x that level (on the real photos), and to remove freshly synthesised matched noise (on the
   pseudo-clean outputs), with a weight anchor (L2-SP, Li et al. 2018) to the base.
The references are never used; the benchmark scores against them only.
"""
from __future__ import annotations

import torch


def weight_anchor(model: torch.nn.Module, reference: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared distance of the weights from the base model's (L2-SP)."""
    total = sum(((p - r) ** 2).sum() for p, r in zip(model.parameters(), reference))
    count = sum(r.numel() for r in reference)
    return total / count
