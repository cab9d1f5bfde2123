"""Learned noise-map estimator: a small CNN that reads a photo's local noise std, the model's level map.

Real camera noise is brightness-dependent and correlated over a few pixels; the classical PCA estimator
(estimation.py) assumes white stationary noise and reads correlated noise several times low. This network is
trained on the same synthetic mixture as the denoiser (Gaussian, Poisson-Gaussian, correlated, camera pipeline,
JPEG) to predict `synthesis.local_std_map` of the noise: the exact quantity the denoiser's level input was
trained on. Its loss punishes under-estimation twice as hard as over-estimation (as CBDNet's), because noise
left behind is worse than a slightly softer result. ~35 GFLOP per megapixel (18 % of the denoiser's), most of it
at full and half resolution with few channels: Auto runs it through OpenVINO or ONNX Runtime (fast_runner), 8-18x
the speed of torch's default NCHW layout here. On a photo over MIN_SPARSE_MP it reads a sparse grid of
full-resolution blocks (a sixth of the pixels) and fills the map in by brightness and position (sparse_map.py).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from denoiser.core.config import from_plain
from denoiser.core.noise.sparse_map import MIN_SPARSE_MP, sparse_map

log = logging.getLogger(__name__)

UNDER_WEIGHT = 2.0  # loss weight of under-estimates (log domain); over-estimates weigh 1
OUTPUT_SCALE = 10.0  # the head's softplus output times this is the std in 0..255 units
TILE = 1024  # px: estimator tiles on big photos (bounded memory: ~0.1 GB of activations per tile)
MARGIN = 64  # px: overlap each tile keeps beyond its core (the network sees at most 64 px to either side)


@dataclass(frozen=True)
class EstimatorConfig:
    widths: tuple[int, int, int] = (24, 32, 48)

    def __post_init__(self) -> None:
        widths = tuple(int(w) for w in self.widths)
        if len(widths) != 3 or not all(1 <= w <= 256 for w in widths):
            raise ValueError(f"bad estimator widths {widths}")
        object.__setattr__(self, "widths", widths)

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EstimatorConfig:
        return from_plain(cls, d, "estimator config")


class _Res(nn.Module):
    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.relu(self.c1(x)))


class NoiseMapNet(nn.Module):
    """(N, 3, H, W) noisy in [0,1] -> (N, 1, ceil(H/2), ceil(W/2)) local noise std in 0..255 units."""

    def __init__(self, config: EstimatorConfig = EstimatorConfig(), gain: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.gain = gain  # Auto drives the model at gain x the map (chosen per shipped model; file metadata)
        a, b, c = config.widths
        self.stem = nn.Sequential(nn.Conv2d(3, a, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU())
        self.fine = nn.Sequential(_Res(b), _Res(b))
        self.down = nn.Sequential(nn.Conv2d(b, c, 3, stride=2, padding=1), nn.ReLU())
        self.coarse = nn.Sequential(_Res(c, 2), _Res(c, 4), nn.ReLU())
        self.head = nn.Conv2d(c + b, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.fine(self.stem(x - 0.5))
        quarter = self.coarse(self.down(half))
        up = F.interpolate(quarter, scale_factor=2, mode="bilinear", align_corners=False)
        up = up[:, :, :half.shape[2], :half.shape[3]]  # an exact x2 keeps tiles on one grid
        return F.softplus(self.head(torch.cat([up, half], dim=1))) * OUTPUT_SCALE


def estimator_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Asymmetric L1 on log(1 + std): under-estimates cost UNDER_WEIGHT times more."""
    err = torch.log1p(pred) - torch.log1p(target)
    return torch.where(err < 0, -UNDER_WEIGHT * err, err).mean()


def save_estimator(net: NoiseMapNet, path: Path, meta: dict[str, Any]) -> None:
    """Weights as safetensors; the config and provenance in the header's metadata (strings only)."""
    import json

    from safetensors.torch import save

    from denoiser.core.files import atomic_write_bytes

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    header = {"kind": "noise-map-estimator", "config": json.dumps(net.config.to_dict()),
              "meta": json.dumps({**meta, "auto_gain": net.gain})}
    atomic_write_bytes(Path(path), save(state, metadata=header))


def load_estimator(path: Path) -> NoiseMapNet:
    """Load an estimator file, checking every tensor's shape against the config before use."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        if header.get("kind") != "noise-map-estimator":
            raise ValueError(f"{path}: not a noise-map estimator file")
        gain = float(json.loads(header.get("meta", "{}")).get("auto_gain", 1.0))
        if not 0.1 <= gain <= 10:
            raise ValueError(f"{path}: Auto gain {gain} is outside 0.1..10")
        net = NoiseMapNet(EstimatorConfig.from_dict(json.loads(header.get("config", "{}"))), gain)
        expected = net.state_dict()
        if set(f.keys()) != set(expected):
            raise ValueError(f"{path}: weights do not match the estimator's architecture")
        state = {}
        for k in expected:
            t = f.get_tensor(k)
            if t.shape != expected[k].shape:
                raise ValueError(f"{path}: {k} has shape {tuple(t.shape)}, expected {tuple(expected[k].shape)}")
            state[k] = t
    net.load_state_dict(state)
    return net.eval()


def default_estimator_path() -> Path:
    from denoiser.core.resources import ESTIMATOR_FILE_NAME, resources_dir

    return resources_dir() / "models" / ESTIMATOR_FILE_NAME


_CACHE: dict[str, NoiseMapNet] = {}
_RUNNERS: dict[int, tuple[NoiseMapNet, Callable[[torch.Tensor], np.ndarray] | None]] = {}
_CACHE_LOCK = threading.Lock()  # the io, batch-prefetch and preview threads ask for the estimator at once


def shipped_estimator() -> NoiseMapNet | None:
    """The estimator shipped beside the default model, or None if the file is absent."""
    path = default_estimator_path()
    if not path.is_file():
        return None
    key = str(path)
    with _CACHE_LOCK:  # one load, and no thread sees a half-filled cache
        if key not in _CACHE:
            _CACHE[key] = load_estimator(path)
        return _CACHE[key]


ONNX_KIND = "denoiser-estimator"  # metadata "kind" of the estimator's ONNX export shipped beside its weights


def estimator_onnx(net: NoiseMapNet) -> bytes:
    """The estimator as an ONNX model (dynamic height and width)."""
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 64, 64),), buf,  # type: ignore[arg-type]  # stubs omit file objects
                          input_names=["x"], output_names=["map"],
                          dynamic_axes={"x": {2: "h", 3: "w"}, "map": {2: "h2", 3: "w2"}}, opset_version=17,
                          dynamo=False)
    return buf.getvalue()


def export_shipped_onnx(weights: Path, out: Path) -> dict[str, str]:
    """Write the ONNX export of the estimator file `weights` to `out` (atomically), its metadata naming the
    sha256 of the weights it was made from, so Auto can start without exporting (~0.8 s of every process)."""
    import onnx

    from denoiser.core.files import atomic_write_bytes, file_sha256

    model = onnx.load_from_string(estimator_onnx(load_estimator(weights)))
    meta = {"kind": ONNX_KIND, "source_sha256": file_sha256(weights)}
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    atomic_write_bytes(Path(out), model.SerializeToString())
    return meta


def fast_runner(net: NoiseMapNet, runtime: str | None = None,
                onnx_file: Path | None = None) -> Callable[[torch.Tensor], np.ndarray] | None:
    """The estimator compiled by `runtime` (core.runtimes; the first installed, OpenVINO before ONNX Runtime,
    when None) from `onnx_file` (its export, already checked to hold these weights) or from an export made here,
    or None without a runtime (or, with no file, without onnx). The same map as torch's to ~1e-6 relative, at
    1.2x (384 px blocks) to 2.5x (1024 px tiles) ONNX Runtime's speed through OpenVINO, and ONNX Runtime ~1.8x
    torch's channels_last on this CPU. For a network whose weights no longer change (the shipped one): the
    compiled network keeps the weights it was made with."""
    import importlib.util

    from denoiser.core.runtimes import Network, available

    found = available()
    runtime = runtime or (found[0] if found else None)
    if runtime is None or runtime not in found:
        return None
    if onnx_file is None and importlib.util.find_spec("onnx") is None:  # the exporter needs onnx
        return None
    network = Network(onnx_file if onnx_file is not None else estimator_onnx(net), torch.get_num_threads(), runtime)
    return lambda x: network.run({"x": np.ascontiguousarray(x.numpy())})[0, 0]


def shipped_onnx_path() -> Path:
    return default_estimator_path().with_suffix(".onnx")


def shipped_onnx_problem() -> str | None:
    """Why the shipped estimator's ONNX export cannot stand in for its weights (absent, damaged, made from other
    weights), or None when it can."""
    from denoiser.core.files import file_sha256
    from denoiser.core.runtimes import OnnxHeaderError, onnx_header

    path = shipped_onnx_path()
    if not path.is_file():
        return f"{path.name} is not installed"
    try:
        meta, inputs = onnx_header(path)
    except OnnxHeaderError as exc:
        return str(exc)
    if meta.get("kind") != ONNX_KIND or inputs != ["x"]:
        return f"{path}: not an export of the noise estimator"
    if meta.get("source_sha256") != file_sha256(default_estimator_path()):
        return f"{path}: made from other weights than {default_estimator_path().name}"
    return None


def shipped_runner() -> Callable[[torch.Tensor], np.ndarray] | None:
    """fast_runner of the shipped estimator, made once (None without a runtime or without the estimator): from
    its shipped ONNX export when that holds these weights, else from an export made here."""
    net = shipped_estimator()
    if net is None:
        return None
    with _CACHE_LOCK:
        if id(net) not in _RUNNERS:  # the net is kept with its runner, so its id is never reused
            problem = shipped_onnx_problem()
            if problem is not None and shipped_onnx_path().is_file():
                log.warning("%s; exporting the estimator instead", problem)
            _RUNNERS[id(net)] = (net, fast_runner(net, onnx_file=None if problem else shipped_onnx_path()))
        return _RUNNERS[id(net)][1]


def _rgb(image: np.ndarray) -> np.ndarray:
    """An HxWx3 float32 array of an image (grey repeated); no copy when it already is one."""
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


@torch.inference_mode()
def predict_map(net: NoiseMapNet, image: np.ndarray, tile: int = TILE,
                run: Callable[[torch.Tensor], np.ndarray] | None = None) -> np.ndarray:
    """Noise map (ceil(H/2), ceil(W/2)) float32, 0..255 units, of an HxWxC image in [0,1], read at every pixel;
    tiled so memory stays bounded on big photos (each tile keeps a MARGIN px overlap that is cut away). `run`
    (a tile (1,3,h,w) -> its map) replaces the network's own forward (fast_runner)."""
    img = _rgb(image)
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    run = run or _torch_runner(net)
    out = np.zeros(((h + 1) // 2, (w + 1) // 2), np.float32)
    step = max(4, (tile - 2 * MARGIN) // 4 * 4)
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            ya, xa = max(0, y0 - MARGIN) // 4 * 4, max(0, x0 - MARGIN) // 4 * 4  # keep the stride-4 grid
            yb, xb = min(h, y0 + step + MARGIN), min(w, x0 + step + MARGIN)
            pred = run(x[:, :, ya:yb, xa:xb])
            cy, cx = (y0 - ya) // 2, (x0 - xa) // 2
            ey, ex = (min(h, y0 + step) + 1) // 2, (min(w, x0 + step) + 1) // 2
            out[y0 // 2:ey, x0 // 2:ex] = pred[cy:cy + ey - y0 // 2, cx:cx + ex - x0 // 2]
    return out


def _torch_runner(net: NoiseMapNet) -> Callable[[torch.Tensor], np.ndarray]:
    """The network's own forward on one tile, channels_last (~4x NCHW's speed on this CPU)."""
    return lambda part: net(part.contiguous(memory_format=torch.channels_last))[0, 0].numpy()


@torch.inference_mode()
def estimate_map(net: NoiseMapNet, image: np.ndarray, run: Callable[[torch.Tensor], np.ndarray] | None = None,
                 whole_up_to_mp: float = MIN_SPARSE_MP) -> np.ndarray:
    """The map Auto uses: read at every pixel (predict_map) for a photo of up to `whole_up_to_mp` megapixels,
    from a sparse grid of full-resolution blocks (sparse_map) for a bigger one."""
    img = _rgb(image)
    if img.shape[0] * img.shape[1] <= whole_up_to_mp * 1e6:
        return predict_map(net, img, run=run)
    return sparse_map(img, run or _torch_runner(net))


def auto_map(image: np.ndarray) -> np.ndarray:
    """The level map Auto gives the model, (ceil(H/2), ceil(W/2)) in 0..255 units: the shipped estimator's
    per-pixel noise std (estimate_map) times its Auto gain, or the classical estimate as a constant map when no
    estimator is installed."""
    net = shipped_estimator()
    if net is not None:
        return estimate_map(net, image, run=shipped_runner()) * np.float32(net.gain)
    from denoiser.core.noise.estimation import estimate_sigma

    return np.full(((image.shape[0] + 1) // 2, (image.shape[1] + 1) // 2), estimate_sigma(image), np.float32)


def auto_level(image: np.ndarray) -> float:
    """The one number Auto measures on a photo (0..255): the mean of auto_map. Fine-tuning uses it wherever it
    needs "the level the app will measure", so a fine-tuned model and Auto agree."""
    return float(np.mean(auto_map(image)))
