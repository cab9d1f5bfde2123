"""The noise level a denoise runs at, as a value: a fixed σ, or Auto (a measured noise map × a scale).

Every layer speaks this one type: the CLI's --strength / --strength-scale, the batch plan, the engine, the
window's slider, the XMP note of a saved file and the batch report (`to_record`). The ranges live here too:
σ in 0..SIGMA_MAX, and the strength scale on Auto's map in SCALE_RANGE (`check_sigma`, `check_scale`).

Auto's map is (ceil(H/2), ceil(W/2)) in 0..255 units for the photo it was measured on (noise.learned.auto_map);
a run on pixels of another size (a preview crop) measures the map of those pixels afresh and applies the same
scale. An Auto level may carry no map (only its mean, e.g. a summary sent back from a worker or a preview
region starting on odd coordinates): the engine then measures the map on the pixels it is given.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

FIXED, AUTO = "fixed", "auto"
SIGMA_MAX = 255.0  # noise levels are in 0..255 units (8-bit steps)
SCALE_RANGE = (0.25, 4.0)  # the strength scale on Auto's map: a quarter of the measured noise to four times it


def check_sigma(value: float) -> float:
    """A fixed noise level as a float in 0..SIGMA_MAX, or ValueError saying the range."""
    try:
        sigma = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"strength (noise level) must be a number in 0..{SIGMA_MAX:g}, got {value!r}") from None
    if not (math.isfinite(sigma) and 0 <= sigma <= SIGMA_MAX):
        raise ValueError(f"strength (noise level) must be in 0..{SIGMA_MAX:g}, got {value}")
    return sigma


def check_scale(value: float) -> float:
    """A strength scale on Auto's map as a float in SCALE_RANGE, or ValueError saying the range."""
    lo, hi = SCALE_RANGE
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"strength scale must be a number such as 1.5, not {value!r}") from None
    if not (math.isfinite(scale) and lo <= scale <= hi):
        raise ValueError(f"strength scale must be between {lo:g} and {hi:g} (1 = Auto as measured), got {value}")
    return scale


@lru_cache(maxsize=8)
def _file_version(path: str, size: int, mtime_ns: int) -> str:
    from denoiser.core.files import file_sha256

    return f"learned-{file_sha256(Path(path))[:12]}"


def estimator_version() -> str:
    """Which estimator Auto's maps come from: 'learned-<sha256 prefix of the shipped estimator file>', or
    'classical' (noise.estimation's PCA estimate as a constant map) when none is installed."""
    from denoiser.core.noise.learned import default_estimator_path

    path = default_estimator_path()
    try:
        st = path.stat()
    except OSError:
        return "classical"
    return _file_version(str(path), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class NoiseLevel:
    """A fixed σ (`NoiseLevel.fixed`) or Auto (`NoiseLevel.auto`: map, scale, estimator version).

    `base` is the fixed σ, or the mean of Auto's measured (unscaled) map; `sigma` is the level the model runs at
    (base × scale, at most SIGMA_MAX), which is also what the photo's metadata and the report show."""

    mode: str
    base: float
    scale: float = 1.0
    estimator: str = ""
    map: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in (FIXED, AUTO):
            raise ValueError(f"noise level mode must be {FIXED!r} or {AUTO!r}, got {self.mode!r}")
        if self.mode == FIXED and self.scale != 1.0:
            raise ValueError("a fixed strength is not scaled; give the strength you want instead")

    @classmethod
    def fixed(cls, sigma: float) -> NoiseLevel:
        return cls(FIXED, check_sigma(sigma))

    @classmethod
    def auto(cls, noise_map: np.ndarray | None, scale: float = 1.0, estimator: str | None = None,
             mean: float | None = None) -> NoiseLevel:
        """Auto on a measured map (its mean is the base), or without a map on a known `mean`."""
        if noise_map is None and mean is None:
            raise ValueError("Auto needs a noise map or its mean")
        base = float(np.mean(noise_map)) if noise_map is not None else float(mean)  # type: ignore[arg-type]
        return cls(AUTO, min(SIGMA_MAX, max(0.0, base)), float(scale),
                   estimator_version() if estimator is None else estimator, noise_map)

    @property
    def is_auto(self) -> bool:
        return self.mode == AUTO

    @property
    def sigma(self) -> float:
        """The level as one number in 0..255 (Auto: the mean of the scaled map)."""
        return min(SIGMA_MAX, self.base * self.scale)

    def __float__(self) -> float:
        return self.sigma

    def __format__(self, spec: str) -> str:
        return format(self.sigma, spec)

    def scaled(self, factor: float) -> NoiseLevel:
        """Auto's map driven `factor` times harder (the strength slider as a scale on Auto); factor in SCALE_RANGE."""
        if not self.is_auto:
            raise ValueError("a fixed strength is not scaled; give the strength you want instead")
        return replace(self, scale=self.scale * check_scale(factor))

    def without_map(self) -> NoiseLevel:
        """The same level with its map dropped (cheap to keep, send or compare: a summary)."""
        return replace(self, map=None)

    def window(self, y0: int, x0: int, y1: int, x1: int) -> NoiseLevel:
        """The level for the pixels [y0:y1, x0:x1] of the photo (a preview region): the map's own window when
        the region starts on even coordinates, else none (the engine measures the region itself)."""
        if self.map is None:
            return self
        if y0 % 2 or x0 % 2:
            return self.without_map()
        part = self.map[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2]
        return replace(self, map=np.ascontiguousarray(part))

    def map_for(self, shape: tuple[int, int], estimate: Callable[[], np.ndarray]) -> np.ndarray:
        """Auto's scaled map for pixels of `shape` (H, W): this one if it fits, else `estimate()`'s."""
        want = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
        base = self.map if self.map is not None and self.map.shape == want else estimate()
        return np.clip(base * np.float32(self.scale), 0, SIGMA_MAX).astype(np.float32)

    def describe(self) -> str:
        """One line for people: 'Auto × 1.50 (noise map, mean σ 12.3)' or 'σ 15.0 (fixed)'."""
        if not self.is_auto:
            return f"σ {self.sigma:.1f} (fixed)"
        what = "noise map" if self.estimator.startswith("learned") else "noise estimate"
        return f"Auto × {self.scale:.2f} ({what}, mean σ {self.sigma:.1f})"

    def to_record(self) -> dict[str, object]:
        """What a saved file's note and the batch report record: mode, σ (Auto: the scaled map's mean),
        the scale, and for Auto the measured mean and the estimator version."""
        if not self.is_auto:
            return {"mode": FIXED, "sigma": round(self.sigma, 2)}
        return {"mode": AUTO, "sigma": round(self.sigma, 2), "map_mean": round(self.base, 2),
                "scale": round(self.scale, 4), "estimator": self.estimator}

    def xmp_fields(self) -> dict[str, str]:
        """The record as XMP note fields (pdn:Strength, pdn:StrengthMode, ...)."""
        fields = {"Strength": f"{self.sigma:.1f}", "StrengthMode": self.mode}
        if self.is_auto:
            fields |= {"StrengthScale": f"{self.scale:g}", "NoiseMapMean": f"{self.base:.2f}",
                       "Estimator": self.estimator}
        return fields


def requested_level(strength: float | None, scale: float = 1.0) -> NoiseLevel | None:
    """What a run's options ask for: a fixed level (strength given), or None for Auto measured per photo and
    then scaled. ValueError for a level or scale out of range, or a scale given with a fixed strength."""
    check_scale(scale)
    if strength is None:
        return None
    if scale != 1.0:
        raise ValueError("the strength scale scales Auto's noise map; a fixed strength is not scaled")
    return NoiseLevel.fixed(strength)


def as_level(value: float | NoiseLevel) -> NoiseLevel:
    """A NoiseLevel as it is, a number as a fixed σ (checked)."""
    return value if isinstance(value, NoiseLevel) else NoiseLevel.fixed(value)
