"""The sRGB transfer curve on tensors: one home for the encoding every layer uses (synthetic noise in linear
light, the raw model's encoded working space)."""
from __future__ import annotations

import torch


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Extended sRGB encoding: odd-symmetric so negative (noisy) values survive."""
    a = x.abs()
    y = torch.where(a <= 0.0031308, a * 12.92, 1.055 * a.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return torch.sign(x) * y


def srgb_to_linear_signed(y: torch.Tensor) -> torch.Tensor:
    """Exact inverse of linear_to_srgb (odd-symmetric, unclamped)."""
    a = y.abs()
    x = torch.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return torch.sign(y) * x


def srgb_slope(x: torch.Tensor) -> torch.Tensor:
    """Derivative of linear_to_srgb at |x|: how a small linear-light std scales into the encoded space."""
    a = x.abs()
    steep = 1.055 / 2.4 * a.clamp_min(0.0031308) ** (1 / 2.4 - 1)
    return torch.where(a <= 0.0031308, torch.full_like(a, 12.92), steep)
