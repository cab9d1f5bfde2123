"""The joint raw model: denoise and demosaic a Bayer mosaic in one network (Gharbi et al. 2016; Brooks et al. 2019).

Input: the white-balanced RGGB mosaic packed to 4 planes at half resolution and the noise std of every photosite
(packed likewise, white-balanced). A fixed Malvar-He-Cutler demosaic (5x5 linear filters; a cheap linear
demosaic that keeps far less zipper and colour fringing than bilinear interpolation) gives full-resolution RGB;
it is sRGB-encoded, so the network works where shadows count as much as highlights, and the std map is carried
into that space by the encoding's slope at the local signal. The trunk is the RGB model's U-Net (same widths and
blocks) with a 16-channel head (12 = the encoded demosaic unshuffled, 4 = the std map) and a 12-channel tail
pixel-shuffled to the full-resolution residual. Output: linear white-balanced camera RGB.

With the same widths and blocks as an RGB model, the RGB model's weights are a starting point (load_rgb_trunk):
the raw model then begins as "linear demosaic + the RGB network with the exact noise map" and learns the rest.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from denoiser.core.colour import linear_to_srgb, srgb_slope, srgb_to_linear_signed
from denoiser.core.model.network import SIGMA_SCALE, ModelConfig, UNetDenoiser

# Malvar, He & Cutler 2004, Table/Fig. 2 (x 8): G at R/B; R|B at G in an R|B row; R|B at G in a B|R row; R at B.
_MHC = torch.tensor([
    [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],
    [[0, 0, .5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, .5, 0, 0]],
    [[0, 0, -1, 0, 0], [0, -1, 4, -1, 0], [.5, 0, 5, 0, .5], [0, -1, 4, -1, 0], [0, 0, -1, 0, 0]],
    [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]],
], dtype=torch.float32)[:, None] / 8


def mhc_demosaic(planes: torch.Tensor) -> torch.Tensor:
    """Packed RGGB planes (N, 4, h, w) -> linear RGB (N, 3, 2h, 2w) by Malvar-He-Cutler interpolation."""
    cfa = F.pixel_shuffle(planes, 2)
    padded = F.pad(cfa, (2, 2, 2, 2), mode="reflect")  # a reflection by 2 keeps the Bayer phase
    filt = F.conv2d(padded, _MHC.to(cfa), padding=0)
    g_rb, row, col, diag = (F.pixel_unshuffle(filt[:, i:i + 1], 2) for i in range(4))
    p = planes
    red = torch.stack([p[:, 0], row[:, 1], col[:, 2], diag[:, 3]], dim=1)
    green = torch.stack([g_rb[:, 0], p[:, 1], p[:, 2], g_rb[:, 3]], dim=1)
    blue = torch.stack([diag[:, 0], col[:, 1], row[:, 2], p[:, 3]], dim=1)
    return torch.cat([F.pixel_shuffle(c, 2) for c in (red, green, blue)], dim=1)


class RawUNet(UNetDenoiser):
    """forward(planes, std) -> linear camera RGB (N, 3, 2h, 2w); both inputs white-balanced, (N, 4, h, w)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, head_in=12 + 4, tail_out=12)

    def encoded_std(self, planes: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """The std map carried into the sRGB-encoded space (slope at the 3x3-mean signal of each plane)."""
        signal = F.avg_pool2d(planes, 3, stride=1, padding=1, count_include_pad=False)
        return std * srgb_slope(signal.clamp_min(0))

    def forward_encoded(self, planes: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """The output in the sRGB-encoded space (where the training loss is taken)."""
        n, c, h, w = planes.shape
        m = self.config.size_multiple
        if c != 4 or std.shape != planes.shape:
            raise ValueError(f"expected packed planes and std map of equal shape (N, 4, h, w), got "
                             f"{tuple(planes.shape)} and {tuple(std.shape)}")
        if (2 * h) % m or (2 * w) % m:
            raise ValueError(f"mosaic {2 * h}x{2 * w} is not a multiple of {m}; pad it first")
        base = linear_to_srgb(mhc_demosaic(planes))
        level = self.encoded_std(planes, std) * (255.0 / SIGMA_SCALE)
        return base + F.pixel_shuffle(self.body(torch.cat([F.pixel_unshuffle(base, 2), level], dim=1)), 2)

    def forward(self, planes: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return srgb_to_linear_signed(self.forward_encoded(planes, std))

    def example_inputs(self, side: int) -> tuple[torch.Tensor, ...]:
        planes = torch.zeros(1, 4, side // 2, side // 2)
        return planes, planes

    def load_rgb_trunk(self, rgb_state: dict[str, torch.Tensor], rgb_config: ModelConfig) -> None:
        """Start from an RGB model of the same widths and blocks: every trunk weight copied; the head's image
        channels copied, its one noise-level channel shared equally by the four std planes."""
        same = ("widths", "enc_blocks", "mid_blocks", "dec_blocks", "block")
        diff = [k for k in same if getattr(rgb_config, k) != getattr(self.config, k)]
        if rgb_config.arch != "unet-res" or rgb_config.in_channels != 3 or diff:
            raise ValueError(f"an RGB model of the same shape is needed to start the raw model from "
                             f"(differs in {', '.join(diff) or 'arch/in_channels'})")
        state = dict(rgb_state)
        head = state.pop("head.weight")
        state["head.weight"] = torch.cat([head[:, :12], head[:, 12:13].expand(-1, 4, -1, -1) / 4], dim=1)
        self.load_state_dict(state)
