"""INT8 inference of a denoiser through ONNX Runtime (the window's and CLI's *Fast* precision on a CPU).

On an AVX2 CPU without VNNI, INT8 convolutions are the one hardware lever left over fp32. ONNX Runtime's static
QDQ quantisation was chosen by measurement over PyTorch's FX x86 path (deprecated, and slower here once the
sensitive layers stay in fp32) and adds one maintained runtime dependency; see benchmarks/speed_int8.py.

What is quantised: every convolution except the first U-Net level (head, tail and the full-width level-0 blocks
with their down/up convs), which carry the fine detail and the residual output: quantising them costs 0.3-1.5 dB,
keeping them in fp32 costs ~11 % of the FLOPs. Weights per output channel (int8), activations per tensor (uint8),
ranges from the 99.999th percentile of activations on calibration crops (min/max ranges lost 0.3 dB more).

The INT8 network is a data file (ONNX: no code), built once from the shipped weights by
`packaging/build_int8.py` with deterministic calibration (fixed crops of the training photos, fixed seeds) and
shipped beside the model as `<model>.int8.onnx`; its metadata names the sha256 of the weights it was built from,
and a file built from other weights is refused.

Precision "auto" (the CLI's default, 0.3.0) is int8 where INT8 can run the model as built (auto_int8: the CPU,
ONNX Runtime importable, a build beside the model made from these weights), else fp32.
"""
from __future__ import annotations

import importlib.util
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.core.files import file_sha256
from denoiser.core.model.network import UNetDenoiser

INT8_SUFFIX = ".int8.onnx"
KIND = "denoiser-int8"
CALIBRATION_SIGMAS = (2.0, 5.0, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0, 100.0)
FP32_LEVEL = 0  # convolutions of this U-Net level (and head/tail) stay fp32


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


def fp32_nodes(node_names: list[str]) -> list[str]:
    """The convolutions kept in fp32: head, tail and everything of the first level."""
    lv = FP32_LEVEL
    keep = ("/head/", "/tail/", f"/enc.{lv}/", f"/dec.{lv}/", f"/down.{lv}/", f"/up.{lv}/")
    return [n for n in node_names if n.endswith("Conv") and any(k in n for k in keep)]


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
        names = [n.name for n in onnx.load(str(pre)).graph.node]
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=fp32_nodes(names),
                        calibrate_method=CalibrationMethod.Percentile)
        graph = onnx.load(str(q))
    meta = {"kind": KIND, "source_sha256": file_sha256(model_path), "model_version": card.version,
            "calibration": json.dumps({"crops": len(crops), "sigmas": list(CALIBRATION_SIGMAS),
                                       "method": "percentile 99.999"}),
            "fp32_level": str(FP32_LEVEL)}
    del graph.metadata_props[:]
    for k, v in meta.items():
        graph.metadata_props.add(key=k, value=v)
    atomic_write_bytes(Path(out), graph.SerializeToString())
    return meta


class Int8Network:
    """An INT8 build run by ONNX Runtime; called like the model inside the engine: (x, sigma) -> y, where sigma
    is a constant level or a full-resolution level map (N,1,H,W), averaged here to the model's half grid."""

    def __init__(self, path: Path, model_path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise Int8Error("INT8 needs the onnxruntime package (pip install onnxruntime)") from exc
        if not Path(path).is_file():
            raise Int8Error(f"{model_path}: no INT8 build ({Path(path).name}); INT8 exists for the shipped "
                            "model only: use --precision fp32")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # memory goes back after each tile, as torch's does
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise Int8Error(f"{path}: not a readable ONNX model ({exc})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("kind") != KIND:
            raise Int8Error(f"{path}: not an INT8 denoiser build")
        if meta.get("source_sha256") != file_sha256(model_path):
            raise Int8Error(f"{path}: built from other weights than {Path(model_path).name}; rebuild it with "
                            "packaging/build_int8.py or use --precision fp32")
        if [i.name for i in self.session.get_inputs()] != ["x", "sigma"]:
            raise Int8Error(f"{path}: unexpected inputs {[i.name for i in self.session.get_inputs()]}")
        self.path = Path(path)

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if isinstance(sigma, torch.Tensor) and sigma.dim() == 4:
            level = F.avg_pool2d(sigma.float(), 2) if sigma.shape[-2:] == (h, w) else \
                F.interpolate(sigma.float(), size=(h // 2, w // 2), mode="area")
        else:
            level = torch.full((n, 1, h // 2, w // 2), float(sigma))
        feed = {"x": np.ascontiguousarray(x.float().numpy()), "sigma": np.ascontiguousarray(level.numpy())}
        return torch.from_numpy(self.session.run(None, feed)[0])


def auto_int8(device: torch.device, model_path: Path | None) -> tuple[Int8Network | None, str | None]:
    """Precision "auto": (the model's INT8 build, None) where it runs: `device` is the CPU, ONNX Runtime is
    importable and `model_path` has a build beside it made from its weights; else (None, why or None): fp32.
    A build that is there but unusable (other weights, unreadable) gives fp32 and a notice naming the file."""
    if device.type != "cpu" or model_path is None or not int8_path(model_path).is_file() \
            or importlib.util.find_spec("onnxruntime") is None:
        return None, None
    try:
        return Int8Network(int8_path(model_path), model_path), None
    except Int8Error as exc:
        return None, f"ran in fp32, not INT8: {exc}"
