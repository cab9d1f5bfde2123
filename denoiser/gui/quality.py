"""The Quality choices (passes and precision) and when *Fast* (the model's INT8 build) can be offered.

Fast is one pass through the model's INT8 build on the CPU (core.inference.quantized, `--precision int8`); the
others are fp32 with 1, 2, 4 or 8 passes (core.inference.ensemble.PASSES). Fast is the default where it is
offered (default_quality, as the CLI's `--precision auto`): it loses at most a few hundredths of a dB (INT8_COST).
A model without a usable INT8 build beside it, a machine without OpenVINO or ONNX Runtime or a GPU device make it
unavailable, and the box says why instead of running something else; the default there is Standard.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Quality:
    """What the Quality box decides about a run: self-ensemble passes and the network's precision."""

    passes: int = 1
    precision: str = "fp32"  # "fp32" | "int8" (core.inference.precision.PRECISIONS)

    def words(self) -> str:
        """'1 pass, INT8' / '4 passes': for the save plan and the status messages."""
        text = f"{self.passes} pass{'es' if self.passes > 1 else ''}"
        return text + (", INT8" if self.precision == "int8" else "")


FAST = Quality(1, "int8")
STANDARD = Quality(1)
# INT8 build against fp32, 2026-12-06. Loss: model v13 with its heavy-noise expert (both INT8 builds) on the ship
# rule's sets, run by OpenVINO (benchmarks/results/ship_v13_heavy_expert_int8.json: real validation halves Nam25
# -0.020, dglr -0.015, T3i +0.024 dB; Gaussian sets -0.001 to -0.015 dB; a set that gains counts as no loss).
# Speed-up: the v11 network, which v13 shares, on a 6 MP crop, interleaved, 2 threads, an idle machine, Auto's
# sparse map (benchmarks/results/speed_int8.json, "6mp_runtimes"; ONNX Runtime, where OpenVINO is missing: 1.9x
# and 1.8x).
INT8_COST = ("3.3× as fast as Standard at a fixed noise level and 3.0× with Auto, 0.000–0.020 dB less clean "
             "(model v13, measured on the standard test sets and real camera noise)")
CHOICES: tuple[tuple[Quality, str, str], ...] = (
    (FAST, "Fast (INT8): 1 pass, ~3× quicker", f"The model's 8-bit integer build, on the CPU: {INT8_COST}"),
    (STANDARD, "Standard: 1 pass", "The model once, in full precision"),
    (Quality(2), "Better: 2 passes, 2× time", "The mean of 2 flipped copies: a little cleaner, twice the time"),
    (Quality(4), "High: 4 passes, 4× time", "The mean of 4 flipped and rotated copies: 4× the time"),
    (Quality(8), "Best: 8 passes, 8× time", "The mean of 8 flipped and rotated copies: 8× the time"),
)


def default_quality(fast_unavailable: str | None) -> Quality:
    """The Quality a user who has chosen none gets: Fast where it is offered (int8_unavailable says None), else
    Standard."""
    return STANDARD if fast_unavailable else FAST


def int8_unavailable(model: str | None, device: str, catalogue: Any) -> str | None:
    """Why Fast cannot run `model` on `device` ("auto", "cpu", "cuda:N"...), or None when it can (or when the
    catalogue, gui.jobs.Catalogue, is not loaded yet: nothing is known to be missing)."""
    from denoiser.core.inference.int8_runtime import available

    if not available():
        return "Fast needs OpenVINO or ONNX Runtime, neither is installed (pip install openvino)"
    if catalogue is None or not model:
        return None
    if device != "cpu" and (device != "auto" or any(d != "auto" and d != "cpu" for d in catalogue.devices)):
        return "Fast runs on the CPU only: choose Device ▸ CPU to use it"
    from denoiser.core.inference.quantized import build_problem, int8_path  # torch is loaded (the catalogue job)
    from denoiser.core.model.profiles import AUTO_MODEL, profile_of
    from denoiser.core.model.registry import DEFAULT_MODEL_NAME

    entries = {e.name: e for e in catalogue.models}
    names = [model]
    if model == AUTO_MODEL:  # Auto may pick any camera profile, else the default
        names = [e.name for e in catalogue.models if e.card is not None and profile_of(e)] + [DEFAULT_MODEL_NAME]
    for name in names:
        entry = entries.get(name)
        if entry is None:
            return f"Fast is not available: model {name} is not installed"
        if entry.card is None:
            return f"Fast is not available for {name}: community models have no INT8 build"
        if not int8_path(entry.path).is_file():
            return (f"Fast is not available for {name}: it has no INT8 build ({int8_path(entry.path).name}); "
                    "only the shipped model has one")
        problem = build_problem(entry.path)  # a build there but damaged or made from other weights
        if problem is not None:
            return f"Fast is not available for {name}: {problem}"
    return None
