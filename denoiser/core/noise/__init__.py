"""Noise: synthesis for training (synthesis, camera), estimation for inference (estimation, learned) and the
level a denoise runs at (level). Names are loaded on first use, so the level type (numpy only) comes without
torch: the window's panel and the command-line parser read its ranges at start."""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "CORRELATED_BELOW": "estimation", "CORRELATED_RATIO": "estimation", "NoiseEstimate": "estimation",
    "estimate_noise": "estimation", "estimate_sigma": "estimation",
    "NoiseConfig": "synthesis", "correlated": "synthesis", "gaussian": "synthesis", "linear_to_srgb": "synthesis",
    "local_std_map": "synthesis", "noise_std": "synthesis", "poisson_gaussian": "synthesis",
    "srgb_to_linear": "synthesis", "synthesize": "synthesis",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
