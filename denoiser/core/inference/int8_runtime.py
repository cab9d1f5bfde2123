"""The runtimes that run an INT8 build (core.inference.quantized): OpenVINO where it is installed, else ONNX
Runtime. Both read the same ONNX file (QDQ format) and agree to ~1e-3 of the output range; OpenVINO's CPU plugin
runs it 1.8x as fast as ONNX Runtime on a 2-core AVX-512 VNNI machine (benchmarks/results/speed_int8.json,
"6mp_runtimes": 3.30x and 1.88x fp32's speed), so it is preferred.

Both run through core.runtimes (OpenVINO with an fp32 precision hint: the fp32 parts, the first level, head and
tail, stay fp32 on a CPU with bf16 units).

DENOISER_INT8_RUNTIME=openvino|onnxruntime picks one (a runtime that is not installed is an error).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from denoiser.core.runtimes import RUNTIMES, Network, available

ENV = "DENOISER_INT8_RUNTIME"


class RuntimeUnavailable(RuntimeError):
    """No runtime can run the build; the message says why and what to install."""


class Runtime(Protocol):
    name: str

    def run(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """x (N,3,H,W) float32, sigma (N,1,H/2,W/2) float32 -> y (N,3,H,W) float32."""
        ...


def choose(requested: str | None = None) -> str:
    """The runtime to use: `requested` (or $DENOISER_INT8_RUNTIME) if given, else the first available."""
    requested = requested or os.environ.get(ENV) or None
    if requested is not None:
        if requested not in RUNTIMES:
            raise RuntimeUnavailable(f"{ENV}={requested!r} is not one of {', '.join(RUNTIMES)}")
        if requested not in available():
            raise RuntimeUnavailable(f"the INT8 runtime {requested} is not installed (pip install {requested})")
        return requested
    found = available()
    if not found:
        raise RuntimeUnavailable("INT8 needs OpenVINO or ONNX Runtime (pip install openvino)")
    return found[0]


class NetworkRuntime:
    """An INT8 build compiled by one runtime (dynamic height and width: one network for every tile)."""

    def __init__(self, path: Path, threads: int, name: str) -> None:
        self.name = name
        self.network = Network(path, threads, name)

    def run(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return self.network.run({"x": x, "sigma": sigma})


def open_runtime(path: Path, threads: int, requested: str | None = None) -> Runtime:
    """The chosen runtime with the network at `path` loaded; RuntimeUnavailable, or the runtime's own error for
    a file it cannot read."""
    return NetworkRuntime(path, threads, choose(requested))
