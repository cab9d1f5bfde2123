"""Denoiser: device choice, tiled inference with blended overlaps, OOM fallback."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from denoiser.core.inference.ensemble import check_passes, self_ensemble
from denoiser.core.inference.heavy_expert import HeavyExpert
from denoiser.core.inference.precision import AUTO, PRECISION_CHOICES
from denoiser.core.inference.quantized import Int8Error, Int8Network, auto_int8, int8_path
from denoiser.core.inference.tiling import plan_tiles, run_tiled
from denoiser.core.model.file import ModelCard, load_model
from denoiser.core.model.network import ModelConfig, UNetDenoiser, pad_to_multiple
from denoiser.core.noise.estimation import TooSmallToEstimate
from denoiser.core.noise.learned import auto_map
from denoiser.core.noise.level import NoiseLevel, as_level
from denoiser.core.progress import NullProgress, Progress

if TYPE_CHECKING:
    from denoiser.core.io.photo import Photo

log = logging.getLogger(__name__)

DEFAULT_TILE = 1024  # px: a 24 MP photo with Auto peaks at 1.9 GB RSS (2.6 GB at 2048), at the same speed on a CPU
DEFAULT_OVERLAP = 64
MIN_TILE = 256


def available_devices() -> list[str]:
    """Choices for a device menu: auto, cpu, every CUDA device, mps."""
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(name: str = "auto") -> torch.device:
    """auto: CUDA, then MPS, then CPU. An unavailable device is an error, not a silent fallback."""
    if name in ("auto", "", None):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"CUDA device {name!r} is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("MPS (Apple GPU) is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}")
    return dev


def device_label(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


class Denoiser:
    """A loaded model on a device. denoise() is safe to call from a worker thread."""

    def __init__(self, model: UNetDenoiser, device: str = "auto", tile: int = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP, card: ModelCard | None = None, model_name: str = "") -> None:
        self.device = resolve_device(device)
        self.multiple = model.config.size_multiple
        if tile < MIN_TILE or tile % self.multiple:
            raise ValueError(f"tile must be >= {MIN_TILE} and a multiple of {self.multiple}, got {tile}")
        self.tile, self.overlap = tile, overlap
        self.card, self.model_name = card, model_name or (card.name if card else "")
        self.notices: list[str] = []
        self._cpu_model = model.eval()
        self.model = self._place(model, self.device)
        self.int8: Int8Network | None = None  # precision "int8": the network's INT8 build (CPU only)
        self.heavy: HeavyExpert | None = None  # the model's heavy-noise expert, where one is shipped beside it

    def use_precision(self, precision: str, model_path: Path | None) -> None:
        """fp32 (the weights as they are), int8 (the INT8 build shipped beside `model_path`, on the CPU) or auto
        (int8 where that build runs, else fp32: quantized.auto_int8); self.precision then says which."""
        if precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
        if precision == AUTO:
            self.int8, notice = auto_int8(self.device, model_path)
            if notice:
                self._notice(notice)
        elif precision == "fp32":
            self.int8 = None
        elif self.device.type != "cpu":
            raise Int8Error(f"INT8 runs on the CPU, not on {self.device}: use --device cpu or --precision fp32")
        elif model_path is None:
            raise Int8Error(f"model {self.model_name!r} has no INT8 build: use --precision fp32")
        else:
            self.int8 = Int8Network(int8_path(model_path), model_path)

    @classmethod
    def from_name(cls, name: str | None = None, device: str = "auto", tile: int = DEFAULT_TILE,
                  precision: str = "fp32") -> Denoiser:
        from denoiser.core.model.registry import find_model

        entry = find_model(name)
        model, card = load_model(entry.path)
        engine = cls(model, device=device, tile=tile, card=card, model_name=entry.name)
        engine.use_precision(precision, entry.path)
        engine.heavy = HeavyExpert.of(entry.path, card)
        return engine

    @classmethod
    def from_file(cls, path: Path, device: str = "auto", tile: int = DEFAULT_TILE,
                  precision: str = "fp32") -> Denoiser:
        model, card = load_model(Path(path))
        engine = cls(model, device=device, tile=tile, card=card)
        engine.use_precision(precision, Path(path))
        engine.heavy = HeavyExpert.of(Path(path), card)
        return engine

    @property
    def precision(self) -> str:
        """The arithmetic the network runs in: "int8" (its INT8 build) or "fp32"; what a saved file records."""
        return "fp32" if self.int8 is None else "int8"

    @property
    def device_name(self) -> str:
        return device_label(self.device)

    @staticmethod
    def _place(model: UNetDenoiser, dev: torch.device) -> UNetDenoiser:
        if dev.type == "cpu":
            return model.to(dev).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack memory_format
        import copy
        return copy.deepcopy(model).to(dev)

    def _forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if self.device.type == "cpu" and self.int8 is None:  # the INT8 runtimes take NCHW: no layout round trip
            x = x.contiguous(memory_format=torch.channels_last)
        if isinstance(sigma, torch.Tensor):  # a full-resolution map: the model averages it to its own grid
            s = sigma.to(self.device, torch.float32)
        else:
            s = torch.tensor([sigma], dtype=torch.float32, device=self.device)
        base_net = self.int8 if self.int8 is not None else self.model
        expert = self._heavy_expert(s)
        if expert is None:
            return self._run(base_net, x, s)
        weight, heavy_net = expert
        heavy = self._run(heavy_net, x, s)
        if bool((weight >= 1).all()):
            return heavy
        base = self._run(base_net, x, s)
        return heavy.sub_(base).mul_(weight if weight.dim() == 4 else weight.reshape(1, 1, 1, 1)).add_(base)

    def _run(self, net: Int8Network | UNetDenoiser, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """One network (the model, the expert, or either's INT8 build: CPU only) on a tile; half precision on
        CUDA. An INT8 build takes a constant level as a 1-element tensor or a full-resolution map."""
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                return net(x, s).float()
        return net(x, s)

    def _heavy_expert(self, s: torch.Tensor) -> tuple[torch.Tensor, Int8Network | UNetDenoiser] | None:
        """(each pixel's expert share, the expert) where this tile's level reaches the expert's ramp, else None."""
        if self.heavy is None:
            return None
        weight = self.heavy.ramp.weight(s)
        if not bool((weight > 0).any()):
            return None
        run = self.heavy.get(self.device, self.int8 is not None, lambda m: self._place(m, self.device))
        if run is None:
            if self.heavy.problem and self.heavy.problem not in self.notices:
                self._notice(self.heavy.problem)
            return None
        return weight, run

    def denoise_tensor(self, x: torch.Tensor, sigma: float, progress: Progress | None = None,
                       tile: int | None = None) -> torch.Tensor:
        """(1,3,H,W) float in [0,1] -> same, unclipped. Pads, tiles, blends, crops."""
        padded, (h, w) = pad_to_multiple(x, self.multiple)
        tile = tile or self.tile
        overlap = min(self.overlap, (tile // 2 - 1) // self.multiple * self.multiple)
        plan = plan_tiles(padded.shape[2], padded.shape[3], tile, overlap, self.multiple)
        with torch.inference_mode():
            out = run_tiled(padded, lambda t: self._forward_tile(t, sigma), plan, overlap, progress)
        return out[:, :, :h, :w]

    def _forward_tile(self, t: torch.Tensor, sigma: float) -> torch.Tensor:
        """A tile of 3 channels at a constant level, or of 4 whose last is the level map (so tiling, padding and
        self-ensemble move the map with the pixels); the result has the 3 denoised channels only (a 24 MP photo's
        output buffer is then 96 MB smaller)."""
        if t.shape[1] == 3:
            return self._forward(t, sigma)
        return self._forward(t[:, :3], t[:, 3:4].to(self.device))

    def denoise(self, pixels: np.ndarray, sigma: float | NoiseLevel | None = None, progress: Progress | None = None,
                passes: int = 1) -> np.ndarray:
        """HxWxC float32 (C = 1 or 3) in [0,1] -> denoised, clipped to [0,1].

        sigma: a NoiseLevel (fixed, or Auto's per-pixel noise map scaled), a number (a fixed level 0..255), or
        None = Auto as measured. passes > 1 (2, 4 or 8): geometric self-ensemble (inference.ensemble), the mean of the
        model's outputs on that many flipped/rotated views of the photo, each mapped back: `passes` times the
        work, a cleaner result."""
        progress = progress or NullProgress()
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            raise ValueError(f"expected HxWx1 or HxWx3 pixels, got shape {pixels.shape}")
        check_passes(passes)
        level = self.auto_strength(pixels) if sigma is None else as_level(sigma)
        grey = pixels.shape[2] == 1
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)[None]
        if grey:
            x = x.expand(1, 3, *x.shape[2:])
        if level.is_auto:
            noise_map = level.map_for(pixels.shape[:2], lambda: self.noise_map(pixels))
            full = torch.from_numpy(noise_map).repeat_interleave(2, 0).repeat_interleave(2, 1)
            x = torch.cat([x, full[:pixels.shape[0], :pixels.shape[1]][None, None]], dim=1)
            del full  # the map lives on in x's 4th channel
        out = self_ensemble(lambda v, p: self._run_with_fallback(v, level.sigma, p), x, passes, progress)[:, :3]
        out = out.mean(dim=1, keepdim=True) if grey else out
        result = out[0].permute(1, 2, 0).numpy()
        return np.clip(result, 0, 1, out=result)  # in place: `out` is this run's own buffer

    def _run_with_fallback(self, x: torch.Tensor, sigma: float, progress: Progress) -> torch.Tensor:
        """On CUDA out-of-memory: halve the tile and retry, then fall back to the CPU (with a notice)."""
        tile = self.tile
        while True:
            try:
                return self.denoise_tensor(x, sigma, progress, tile)
            except torch.OutOfMemoryError:
                if self.device.type == "cpu":
                    raise
                torch.cuda.empty_cache()
                if tile // 2 >= MIN_TILE:
                    tile = tile // 2 // self.multiple * self.multiple
                    self._notice(f"GPU out of memory: retrying with {tile}px tiles")
                else:
                    self._notice("GPU out of memory even with small tiles: continuing on the CPU")
                    self.device = torch.device("cpu")
                    self.model = self._place(self._cpu_model, self.device)
                    tile = self.tile

    def _notice(self, text: str) -> None:
        log.warning(text)
        self.notices.append(text)

    def noise_map(self, pixels: np.ndarray) -> np.ndarray:
        """The level map Auto gives the model (noise.learned.auto_map)."""
        return auto_map(pixels)

    def auto_strength(self, pixels: np.ndarray, scale: float = 1.0) -> NoiseLevel:
        """Auto: the photo's noise map (brightness-dependent, as camera noise is), times `scale`.
        Its float value is the map's mean. Raises ValueError for a photo too small to tell."""
        if min(pixels.shape[:2]) < 16:
            raise TooSmallToEstimate(f"photo too small to estimate its noise ({pixels.shape[1]}x{pixels.shape[0]} px); "
                             "give a strength instead (--strength SIGMA)")
        level = NoiseLevel.auto(self.noise_map(pixels))
        return level if scale == 1.0 else level.scaled(scale)

    def denoise_photo(self, photo: Photo, sigma: float | NoiseLevel | None = None,
                      progress: Progress | None = None, passes: int = 1) -> tuple[Photo, NoiseLevel]:
        """Denoise a Photo's pixels (alpha and metadata untouched); returns (new photo, the level used)."""
        check_passes(passes)  # before Auto's measurement
        level = self.auto_strength(photo.pixels) if sigma is None else as_level(sigma)
        return photo.with_pixels(self.denoise(photo.pixels, level, progress, passes)), level


def receptive_radius(config: ModelConfig, probe: int = 512) -> int:
    """One-sided receptive radius in pixels of an architecture: how far an input change can reach.

    Measured by back-propagating from one output pixel through a copy with positive weights
    (so no path cancels out)."""
    from denoiser.core.model.network import build_model

    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
    m = config.size_multiple
    probe = max(probe, 4 * m) // m * m
    x = torch.zeros(1, model.config.in_channels, probe, probe, requires_grad=True)
    out = model(x, torch.tensor([25.0]))
    c = probe // 2
    out[0, :, c, c].sum().backward()
    assert x.grad is not None  # backward() filled it
    ys, xs = torch.nonzero(x.grad[0].abs().sum(0) > 0, as_tuple=True)
    return int(max((ys - c).abs().max(), (xs - c).abs().max()))


def open_denoiser(name: str | None, device: str = "auto", tile: int | None = None, precision: str = "fp32"):
    """A Denoiser for any model: ours by name/path, or a community one (tiling, OOM fallback,
    batch and preview then work the same); precision int8 needs the model's INT8 build, auto uses it where it runs."""
    from denoiser.core.model.foreign import is_foreign, load_foreign

    tile = tile or DEFAULT_TILE
    if is_foreign(name):
        assert name is not None
        model, label = load_foreign(name)
        tile = max(tile // model.config.size_multiple * model.config.size_multiple, model.config.size_multiple)
        engine = Denoiser(model, device=device, tile=tile, model_name=label)  # type: ignore[arg-type]
        engine.use_precision(precision, None)
        return engine
    return Denoiser.from_name(name, device=device, tile=tile, precision=precision)
