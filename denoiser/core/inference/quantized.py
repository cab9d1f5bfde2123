"""INT8 inference of a denoiser through OpenVINO or ONNX Runtime (the window's and CLI's *Fast* precision on a
CPU; the runtimes: int8_runtime).

On a CPU, INT8 convolutions are the one hardware lever left over fp32. The build is ONNX Runtime's static QDQ
quantisation, chosen by measurement over PyTorch's FX x86 path (deprecated, and slower here once the sensitive
layers stay in fp32); it is run by OpenVINO where installed (1.7x ONNX Runtime's speed here), else by ONNX
Runtime; see benchmarks/speed_int8.py.

What is quantised: every convolution and residual/skip addition except those of the first U-Net level (head,
tail and the full-width level-0 blocks with their down/up convs, their additions, the skip addition into level 0
and the output's residual), which carry the fine detail and the residual output: quantising any one of those
convolutions costs 0.1-0.9 dB at sigma 5 (0.04-0.3 dB at sigma 25), keeping them in fp32 costs ~12 % of the
FLOPs. The deeper levels' additions stay in int8 between their convolutions (no dequantise/requantise round trip:
~7 % faster at a cost under 0.01 dB). Weights per output channel (int8), activations per tensor (uint8), ranges
from the 99.999th percentile of activations on calibration crops (min/max ranges lost 0.3 dB more).

The INT8 network is a data file (ONNX: no code), built once from the shipped weights by
`packaging/build_int8.py` with deterministic calibration (fixed crops of the training photos, fixed seeds) and
shipped beside the model as `<model>.int8.onnx`; its metadata names the sha256 of the weights it was built from,
and a file built from other weights is refused.

Precision "auto" (the CLI's default, 0.3.0) is int8 where INT8 can run the model as built (auto_int8: the CPU,
a runtime importable, a build beside the model made from these weights), else fp32.
"""
from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.files import file_sha256
from denoiser.core.inference.int8_runtime import RuntimeUnavailable, available, open_runtime
from denoiser.core.model.network import UNetDenoiser
from denoiser.core.runtimes import OnnxHeaderError, onnx_header

if TYPE_CHECKING:
    import onnx

INT8_SUFFIX = ".int8.onnx"
KIND = "denoiser-int8"
CALIBRATION_SIGMAS = (2.0, 5.0, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0, 100.0)
FP32_LEVEL = 0  # convolutions and additions of this U-Net level (and head/tail, the output residual) stay fp32
QUANTISED_OPS = ("Conv", "Add")
BUILD_FORMAT = "2"  # 1: convolutions only (0.3.0); 2: convolutions and the deeper levels' additions


class Int8Error(ValueError):
    """No usable INT8 build for a model."""


def int8_path(model_path: Path) -> Path:
    """Where the INT8 build of a model file lives: beside it, `<stem>.int8.onnx`."""
    return Path(model_path).with_name(Path(model_path).stem + INT8_SUFFIX)


def export_fp32(model: UNetDenoiser, path: Path) -> None:
    """The fp32 network as ONNX: inputs x (N,3,H,W) in [0,1] and sigma (N,1,H/2,W/2) in 0..255 units."""
    side = 8 * model.config.size_multiple
    x, s = torch.zeros(1, 3, side, side), torch.full((1, 1, side // 2, side // 2), 25.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the size checks, constant for valid input
        torch.onnx.export(model.eval(), (x, s), str(path), input_names=["x", "sigma"], output_names=["y"],
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "sigma": {0: "n", 2: "h2", 3: "w2"},
                                        "y": {0: "n", 2: "h", 3: "w"}}, opset_version=17, dynamo=False)


def fp32_nodes(graph: onnx.GraphProto) -> list[str]:
    """The nodes of QUANTISED_OPS kept in fp32: everything of the first level (head, tail, its blocks, its down/up
    convs) by module path, and the top-level additions (skip connections and the output residual) except a skip
    addition fed by a deeper level's up-sampling."""
    lv = FP32_LEVEL
    keep = ("/head/", "/tail/", f"/enc.{lv}/", f"/dec.{lv}/", f"/down.{lv}/", f"/up.{lv}/")
    producer = {out: n.name for n in graph.node for out in n.output}

    def deeper_skip(node: onnx.NodeProto) -> bool:
        sources = [producer.get(i, "") for i in node.input]
        return any(src.startswith("/up.") and not src.startswith(f"/up.{lv}/") for src in sources)

    kept = []
    for n in graph.node:
        if n.op_type not in QUANTISED_OPS:
            continue
        top_level = n.name.count("/") == 1  # "/Add_2": not inside a module
        if any(k in n.name for k in keep) or (top_level and not deeper_skip(n)):
            kept.append(n.name)
    return kept


def calibration_batches(crops: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Deterministic calibration inputs: each clean crop (HxWx3 float in [0,1]) with white Gaussian noise at a
    level cycling through CALIBRATION_SIGMAS (seeded by position), and that level as its map."""
    if not crops:
        raise ValueError("no calibration crops")
    for i, clean in enumerate(crops):
        clean = clean[:clean.shape[0] // 32 * 32, :clean.shape[1] // 32 * 32]
        sigma = CALIBRATION_SIGMAS[i % len(CALIBRATION_SIGMAS)]
        rng = np.random.default_rng(i)
        noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * np.float32(sigma / 255)
        h, w = noisy.shape[:2]
        yield {"x": np.ascontiguousarray(noisy.transpose(2, 0, 1), dtype=np.float32)[None],
               "sigma": np.full((1, 1, h // 2, w // 2), sigma, np.float32)}


def build_int8(model_path: Path, crops: list[np.ndarray], out: Path) -> dict[str, str]:
    """Quantise a model file into `out` (ONNX, QDQ) with calibration on clean `crops` (HxWx3 float in [0,1],
    sides >= 32) given noise by calibration_batches; returns the file's metadata."""
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from denoiser.core.files import atomic_write_bytes
    from denoiser.core.model.file import load_model

    model, card = load_model(model_path)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = calibration_batches(crops)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, pre, q = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        export_fp32(model, fp32)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        keep = fp32_nodes(onnx.load(str(pre)).graph)
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(QUANTISED_OPS), nodes_to_exclude=keep,
                        calibrate_method=CalibrationMethod.Percentile)
        graph = onnx.load(str(q))
    meta = {"kind": KIND, "source_sha256": file_sha256(model_path), "model_version": card.version,
            "calibration": json.dumps({"crops": len(crops), "sigmas": list(CALIBRATION_SIGMAS),
                                       "method": "percentile 99.999"}),
            "fp32_level": str(FP32_LEVEL), "format": BUILD_FORMAT}
    del graph.metadata_props[:]
    for k, v in meta.items():
        graph.metadata_props.add(key=k, value=v)
    atomic_write_bytes(Path(out), graph.SerializeToString())
    return meta


def check_build(path: Path, model_path: Path) -> dict[str, str]:
    """The build's metadata, after checking it is an INT8 denoiser build of exactly `model_path`'s weights with
    the inputs the engine feeds (Int8Error otherwise)."""
    try:
        meta, inputs = onnx_header(path)
    except OnnxHeaderError as exc:
        raise Int8Error(str(exc)) from exc
    if meta.get("kind") != KIND:
        raise Int8Error(f"{path}: not an INT8 denoiser build")
    if meta.get("source_sha256") != file_sha256(model_path):
        raise Int8Error(f"{path}: built from other weights than {Path(model_path).name}; rebuild it with "
                        "packaging/build_int8.py or use --precision fp32")
    if inputs != ["x", "sigma"]:
        raise Int8Error(f"{path}: unexpected inputs {inputs}")
    return meta


def build_problem(model_path: Path) -> str | None:
    """Why the INT8 build beside `model_path` cannot run it (none there, damaged, made from other weights), or None
    when it can; remembered per file size and modification time of both files, so a window can ask often."""
    build = int8_path(model_path)
    if not build.is_file():
        return f"it has no INT8 build ({build.name})"
    try:
        stamps = tuple((s.st_size, s.st_mtime_ns) for s in (build.stat(), Path(model_path).stat()))
    except OSError as exc:
        return f"{build}: unreadable ({exc.strerror})"
    return _checked_build(str(build), str(model_path), stamps)


@functools.lru_cache(maxsize=16)
def _checked_build(build: str, model_path: str, stamps: tuple[tuple[int, int], ...]) -> str | None:
    try:
        check_build(Path(build), Path(model_path))
    except Int8Error as exc:
        return str(exc)
    return None


class Int8Network:
    """An INT8 build run by OpenVINO or ONNX Runtime (int8_runtime); called like the model inside the engine:
    (x, sigma) -> y, where sigma is a constant level or a full-resolution level map (N,1,H,W), averaged here to
    the model's half grid."""

    def __init__(self, path: Path, model_path: Path, threads: int | None = None, runtime: str | None = None) -> None:
        if not Path(path).is_file():
            raise Int8Error(f"{model_path}: no INT8 build ({Path(path).name}); INT8 exists for the shipped "
                            "model only: use --precision fp32")
        check_build(Path(path), Path(model_path))
        try:
            self.runtime = open_runtime(Path(path), threads or torch.get_num_threads(), runtime)
        except RuntimeUnavailable as exc:
            raise Int8Error(str(exc)) from exc
        except Exception as exc:  # each runtime raises its own exception types for a file it cannot run
            raise Int8Error(f"{path}: the INT8 runtime cannot run it ({exc})") from exc
        self.path = Path(path)

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if isinstance(sigma, torch.Tensor) and sigma.dim() == 4:
            level = F.avg_pool2d(sigma.float(), 2) if sigma.shape[-2:] == (h, w) else \
                F.interpolate(sigma.float(), size=(h // 2, w // 2), mode="area")
        else:
            level = torch.full((n, 1, h // 2, w // 2), float(sigma))
        return torch.from_numpy(self.runtime.run(np.ascontiguousarray(x.float().numpy()),
                                                 np.ascontiguousarray(level.numpy())))


def auto_int8(device: torch.device, model_path: Path | None) -> tuple[Int8Network | None, str | None]:
    """Precision "auto": (the model's INT8 build, None) where it runs: `device` is the CPU, OpenVINO or ONNX
    Runtime is importable and `model_path` has a build beside it made from its weights; else (None, why or None): fp32.
    A build that is there but unusable (other weights, unreadable) gives fp32 and a notice naming the file."""
    if device.type != "cpu" or model_path is None or not int8_path(model_path).is_file() \
            or not available():
        return None, None
    try:
        return Int8Network(int8_path(model_path), model_path), None
    except Int8Error as exc:
        return None, f"ran in fp32, not INT8: {exc}"
