"""ONNX networks on the CPU: OpenVINO where it is installed, else ONNX Runtime; the one home of both runtimes'
settings. The INT8 builds (core.inference.int8_runtime) and Auto's noise-map estimator (core.noise.learned) run
through here.

OpenVINO runs with an fp32 inference-precision hint: without it, a CPU with bf16 units would run fp32 layers in
bf16, and the same photo would come out differently on different CPUs. The process has one OpenVINO Core, never
released: a released Core unloads the CPU plugin, after which a SIGINT in the same process crashed the
interpreter. ONNX Runtime runs without its memory arena, so each tile's activations go back, as torch's do.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

RUNTIMES = ("openvino", "onnxruntime")  # in order of preference

_CORE: list[Any] = []  # OpenVINO's one Core for this process: it outlives every network compiled with it
_CORE_LOCK = threading.Lock()


def available() -> list[str]:
    """The runtimes importable here, in order of preference."""
    return [r for r in RUNTIMES if importlib.util.find_spec(r) is not None]


def openvino_core() -> Any:
    with _CORE_LOCK:
        if not _CORE:
            import openvino as ov

            _CORE.append(ov.Core())
        return _CORE[0]


class Network:
    """One ONNX network (a file, or the bytes of one) compiled by `runtime` for `threads` CPU threads, with
    dynamic input sizes: run(feeds) -> its first output. Safe to call from several threads (one runs at a time:
    an OpenVINO infer request is not reentrant, and the CPU has no cores to spare for a second)."""

    def __init__(self, model: Path | bytes, threads: int, runtime: str) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r} (one of {', '.join(RUNTIMES)})")
        self.runtime = runtime
        self._lock = threading.Lock()
        if runtime == "openvino":
            core = openvino_core()
            config = {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": "NO"}
            self._compiled = core.compile_model(core.read_model(model if isinstance(model, bytes) else str(model)),
                                                "CPU", config)
            self._request = self._compiled.create_infer_request()
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.enable_cpu_mem_arena = False
            self._session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                                 providers=["CPUExecutionProvider"])

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            if self.runtime == "openvino":
                result = self._request.infer(feeds)
                return np.array(result[self._compiled.output(0)], dtype=np.float32, copy=True)
            out: np.ndarray = self._session.run(None, feeds)[0]
            return out
