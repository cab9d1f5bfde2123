"""The runtimes that run an INT8 build (core.inference.quantized): OpenVINO where it is installed, else ONNX
Runtime. Both read the same ONNX file (QDQ format) and agree to ~1e-3 of the output range; OpenVINO's CPU plugin
runs it 1.7x as fast as ONNX Runtime on a 2-core AVX-512 VNNI machine (benchmarks/results/speed_int8.json,
"6mp_runtimes": 3.28x and 1.94x fp32's speed), so it is preferred.

OpenVINO runs with an fp32 inference-precision hint: without it, a CPU with bf16 units would run the fp32 parts
(the first level, head and tail) in bf16, and the same photo would come out differently on different CPUs.

DENOISER_INT8_RUNTIME=openvino|onnxruntime picks one (a runtime that is not installed is an error).
"""
from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

RUNTIMES = ("openvino", "onnxruntime")  # in order of preference
ENV = "DENOISER_INT8_RUNTIME"


class RuntimeUnavailable(RuntimeError):
    """No runtime can run the build; the message says why and what to install."""


class Runtime(Protocol):
    name: str

    def run(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """x (N,3,H,W) float32, sigma (N,1,H/2,W/2) float32 -> y (N,3,H,W) float32."""
        ...


def available() -> list[str]:
    """The runtimes importable here, in order of preference."""
    return [r for r in RUNTIMES if importlib.util.find_spec(r) is not None]


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


_CORE: list[Any] = []  # OpenVINO's one Core for this process: it outlives every network compiled with it
_CORE_LOCK = threading.Lock()


def _openvino_core() -> Any:
    with _CORE_LOCK:
        if not _CORE:
            import openvino as ov

            _CORE.append(ov.Core())
        return _CORE[0]


class OpenVinoRuntime:
    name = "openvino"

    def __init__(self, path: Path, threads: int) -> None:
        core = _openvino_core()
        config = {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": "NO"}
        # dynamic height and width: one compiled network serves every tile size of a photo
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        result = self.request.infer({"x": x, "sigma": sigma})
        return np.array(result[self.compiled.output(0)], dtype=np.float32, copy=True)


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # memory goes back after each tile, as torch's does
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(None, {"x": x, "sigma": sigma})[0]
        return out


def open_runtime(path: Path, threads: int, requested: str | None = None) -> Runtime:
    """The chosen runtime with the network at `path` loaded; RuntimeUnavailable, or the runtime's own error for
    a file it cannot read."""
    name = choose(requested)
    return OpenVinoRuntime(path, threads) if name == "openvino" else OnnxRuntime(path, threads)
