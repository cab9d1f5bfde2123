"""Self-supervised losses for fine-tuning on noisy photos only (no clean references).

Neighbor2Neighbor (Huang et al., CVPR 2021) learns to denoise from single noisy images by predicting
one random neighbour sub-image from the other. It assumes pixel-independent noise; real camera noise
is spatially correlated after demosaicing, so the image is first pixel-shuffle downsampled
(PD, Zhou et al. 2019): neighbours inside a PD sub-image lie `pd` pixels apart in the photo, where
the correlation is weaker. A weight anchor (L2-SP, Li et al. 2018) keeps the weights near the base;
core.finetune adds an output anchor at full resolution.

Limits measured here: on Nam25 (noisy - reference, image 05) the noise correlation is 0.69 at lag 1,
0.375 at lag 2 and still 0.19 at lag 4, so PD2 only partly decorrelates it; alone, this loss lowered
PSNR against the references (benchmarks/results/finetune_noisy_nam25_n2n_only_partial.json).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import UNetDenoiser


def pd_split(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(N,C,H,W) -> (N*f*f, C, H/f, W/f): the f*f pixel-shuffle sub-images as separate images."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    sub = F.pixel_unshuffle(x, factor).view(n, c, factor * factor, h // factor, w // factor)
    return sub.permute(0, 2, 1, 3, 4).reshape(n * factor * factor, c, h // factor, w // factor)


def neighbour_masks(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For every 2x2 cell, indices (0..3) of two different *adjacent* pixels (N2N's sub-sampler)."""
    n, _, h, w = shape
    # adjacent pairs inside a 2x2 cell (index = 2*row + col): horizontal, vertical, both orders
    pairs = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2], [0, 2], [2, 0], [1, 3], [3, 1]], device=device)
    pick = torch.randint(0, 8, (n, h // 2, w // 2), generator=gen, device=device)
    chosen = pairs[pick]  # (n, h/2, w/2, 2)
    return chosen[..., 0], chosen[..., 1]


def subsample(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick one pixel per 2x2 cell of x (N,C,H,W) by idx (N,H/2,W/2) -> (N,C,H/2,W/2)."""
    cells = F.pixel_unshuffle(x, 2)  # (N, C*4, H/2, W/2), channel = c*4 + k
    n, c4, h2, w2 = cells.shape
    cells = cells.view(n, c4 // 4, 4, h2, w2)
    index = idx[:, None, None].expand(n, c4 // 4, 1, h2, w2)
    return torch.gather(cells, 2, index).squeeze(2)


def n2n_pd_loss(model: UNetDenoiser, noisy: torch.Tensor, sigma_in: torch.Tensor, gen: torch.Generator,
                pd: int = 2, gamma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbor2Neighbor loss on PD sub-images; returns (total, reconstruction term).

    sigma_in (N,) is the noise level the model will be given at inference (the engine's estimate on
    the whole photo), so the model learns what that level means for this camera's noise.
    """
    sub = pd_split(noisy, pd)
    sig = sigma_in.repeat_interleave(pd * pd)
    i1, i2 = neighbour_masks(sub.shape, gen, sub.device)
    g1, g2 = subsample(sub, i1), subsample(sub, i2)
    out = model(g1, sig)
    with torch.no_grad():
        full = model(sub, sig)
        shift = subsample(full, i1) - subsample(full, i2)
    rec = F.mse_loss(out, g2)
    reg = F.mse_loss(out - g2, shift)
    return rec + gamma * reg, rec


def weight_anchor(model: torch.nn.Module, reference: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared distance of the weights from the base model's (L2-SP)."""
    total = sum(((p - r) ** 2).sum() for p, r in zip(model.parameters(), reference))
    count = sum(r.numel() for r in reference)
    return total / count


def neighbour_psnr(model: UNetDenoiser, noisy: torch.Tensor, sigma_in: float, pd: int = 2,
                   seed: int = 1234) -> float:
    """No-reference self-consistency figure for noisy-mode validation, in dB (higher is better).

    PSNR between the model's prediction from one neighbour sub-image of the PD-downsampled held-out
    crop and the other neighbour sub-image, with a fixed sub-sampling pattern. The other neighbour
    still holds its own noise, so the figure is bounded by the noise level; what matters is its rise.
    """
    gen = torch.Generator(device=noisy.device).manual_seed(seed)
    with torch.inference_mode():
        sub = pd_split(noisy, pd)
        i1, i2 = neighbour_masks(sub.shape, gen, sub.device)
        g1, g2 = subsample(sub, i1), subsample(sub, i2)
        out = model(g1, torch.full((g1.shape[0],), float(sigma_in), device=noisy.device))
        mse = float(F.mse_loss(out.clamp(0, 1), g2))
    return 10.0 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()
