"""Denoiser: device choice, tiled inference with blended overlaps, OOM fallback."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .checkpoint import ModelCard, load_model
from .ensemble import check_passes, self_ensemble
from .model import ModelConfig, UNetDenoiser, pad_to_multiple
from .noise import estimate_noise
from .progress import NullProgress, Progress
from .tiling import plan_tiles, run_tiled

if TYPE_CHECKING:
    from .photo import Photo

log = logging.getLogger(__name__)

DEFAULT_TILE = 2048
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

    @classmethod
    def from_name(cls, name: str | None = None, device: str = "auto", tile: int = DEFAULT_TILE) -> "Denoiser":
        from .registry import find_model

        entry = find_model(name)
        model, card = load_model(entry.path)
        return cls(model, device=device, tile=tile, card=card, model_name=entry.name)

    @classmethod
    def from_file(cls, path: Path, device: str = "auto", tile: int = DEFAULT_TILE) -> "Denoiser":
        model, card = load_model(Path(path))
        return cls(model, device=device, tile=tile, card=card)

    @property
    def device_name(self) -> str:
        return device_label(self.device)

    @staticmethod
    def _place(model: UNetDenoiser, dev: torch.device) -> UNetDenoiser:
        if dev.type == "cpu":
            return model.to(dev).to(memory_format=torch.channels_last)
        import copy
        return copy.deepcopy(model).to(dev)

    def _forward(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        x = x.to(self.device)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        s = torch.tensor([sigma], dtype=torch.float32, device=self.device)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                return self.model(x, s).float()
        return self.model(x, s)

    def denoise_tensor(self, x: torch.Tensor, sigma: float, progress: Progress | None = None,
                       tile: int | None = None) -> torch.Tensor:
        """(1,3,H,W) float in [0,1] -> same, unclipped. Pads, tiles, blends, crops."""
        padded, (h, w) = pad_to_multiple(x, self.multiple)
        tile = tile or self.tile
        overlap = min(self.overlap, (tile // 2 - 1) // self.multiple * self.multiple)
        plan = plan_tiles(padded.shape[2], padded.shape[3], tile, overlap, self.multiple)
        with torch.inference_mode():
            out = run_tiled(padded, lambda t: self._forward(t, sigma), plan, overlap, progress)
        return out[:, :, :h, :w]

    def denoise(self, pixels: np.ndarray, sigma: float | None = None, progress: Progress | None = None,
                passes: int = 1) -> np.ndarray:
        """HxWxC float32 (C = 1 or 3) in [0,1] -> denoised, clipped to [0,1]. sigma None = estimate.

        passes > 1 (2, 4 or 8): geometric self-ensemble (core.ensemble), the mean of the model's outputs on
        that many flipped/rotated views of the photo, each mapped back: `passes` times the work, a cleaner result."""
        progress = progress or NullProgress()
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            raise ValueError(f"expected HxWx1 or HxWx3 pixels, got shape {pixels.shape}")
        check_passes(passes)
        if sigma is None:
            sigma = self.auto_strength(pixels)
        if not 0 <= sigma <= 255:
            raise ValueError(f"strength (noise level) must be in 0..255, got {sigma}")
        grey = pixels.shape[2] == 1
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)[None]
        if grey:
            x = x.expand(1, 3, *x.shape[2:])
        out = self_ensemble(lambda v, p: self._run_with_fallback(v, float(sigma), p), x, passes, progress)
        out = out.mean(dim=1, keepdim=True) if grey else out
        return out[0].permute(1, 2, 0).clamp(0, 1).numpy()

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

    def auto_strength(self, pixels: np.ndarray) -> float:
        """The strength Auto uses: the estimated noise level, and for spatially correlated (camera) noise
        that level times the gain this model needs to remove it, calibrated on the photo's own noise
        (core.calibration; a 512 px centre crop, seven passes of the model: ~2 s on a 2-core CPU).
        Raises ValueError for a photo too small to tell."""
        from .calibration import CALIBRATION_SIDE, calibrate_strength
        from .patches import centre_crop

        est = estimate_noise(pixels)
        if not est.correlated:
            return est.sigma
        crop = np.ascontiguousarray(centre_crop(pixels, CALIBRATION_SIDE), dtype=np.float32)
        if crop.shape[2] == 1:
            crop = np.repeat(crop, 3, axis=2)
        gain, _, _ = calibrate_strength(lambda img, s: self.denoise(img, min(s, 255.0)), [crop],
                                        lambda _img: est.sigma)
        return float(min(255.0, gain * est.sigma))

    def denoise_photo(self, photo: "Photo", sigma: float | None = None, progress: Progress | None = None,
                      passes: int = 1) -> tuple["Photo", float]:
        """Denoise a Photo's pixels (alpha and metadata untouched); returns (new photo, sigma used)."""
        check_passes(passes)  # before Auto's calibration, which always runs one pass
        if sigma is None:
            sigma = self.auto_strength(photo.pixels)
        return photo.with_pixels(self.denoise(photo.pixels, sigma, progress, passes)), float(sigma)


def receptive_radius(config: "ModelConfig", probe: int = 512) -> int:
    """One-sided receptive radius in pixels of an architecture: how far an input change can reach.

    Measured by back-propagating from one output pixel through a copy with positive weights
    (so no path cancels out)."""
    from .model import build_model

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
    ys, xs = torch.nonzero(x.grad[0].abs().sum(0) > 0, as_tuple=True)
    return int(max((ys - c).abs().max(), (xs - c).abs().max()))
