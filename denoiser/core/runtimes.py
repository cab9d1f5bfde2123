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


MAX_ONNX_BYTES = 1 << 30  # the shipped INT8 builds are ~12 MB, the estimator's export ~0.6 MB


class OnnxHeaderError(ValueError):
    """Not a readable ONNX model."""


def onnx_header(path: Path) -> tuple[dict[str, str], list[str]]:
    """An ONNX file's metadata (metadata_props) and graph input names, read from its protobuf without the onnx
    package (whose import costs ~0.5 s of every start): only the model's and the graph's top-level fields are
    walked, weights are skipped by their length. OnnxHeaderError for a file that is not one."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_ONNX_BYTES:  # the whole file is read: bound it before allocating
            raise OnnxHeaderError(f"{path}: {size / 2**30:.1f} GiB, larger than any network here "
                                  f"({MAX_ONNX_BYTES / 2**30:.0f} GiB at most); rebuild or reinstall it")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OnnxHeaderError(f"{path}: unreadable ({exc.strerror})") from exc
    try:
        meta: dict[str, str] = {}
        inputs: list[str] = []
        graphs = 0
        for field, value in _fields(data):
            if field == 14:  # ModelProto.metadata_props: StringStringEntryProto(key=1, value=2)
                entry = {f: bytes(v).decode() for f, v in _fields(value) if f in (1, 2)}
                meta[entry.get(1, "")] = entry.get(2, "")
            elif field == 7:  # ModelProto.graph
                graphs += 1
                for gfield, gvalue in _fields(value):
                    if gfield == 11:  # GraphProto.input: ValueInfoProto(name=1)
                        inputs.extend(bytes(v).decode() for f, v in _fields(gvalue) if f == 1)
        if graphs != 1:
            raise ValueError(f"{graphs} graphs")
    except (ValueError, UnicodeDecodeError) as exc:
        raise OnnxHeaderError(f"{path}: not a readable ONNX model ({exc})") from exc
    return meta, inputs


def _fields(buf: bytes | memoryview) -> list[tuple[int, memoryview]]:
    """A protobuf message's (field number, length-delimited value) pairs; other wire types are skipped.
    ValueError for a damaged message."""
    view, pos, out = memoryview(buf), 0, []
    while pos < len(view):
        key, pos = _varint(view, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _, pos = _varint(view, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(view, pos)
            if pos + size > len(view):
                raise ValueError("a field runs past the end")
            out.append((field, view[pos:pos + size]))
            pos += size
        else:
            raise ValueError(f"wire type {wire}")
    if pos != len(view):
        raise ValueError("truncated")
    return out


def _varint(view: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(view) or shift > 63:
            raise ValueError("a bad varint")
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
