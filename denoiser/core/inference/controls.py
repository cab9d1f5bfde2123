"""Photographer controls on a denoise: luminance and colour noise strengths, and detail recovery.

Luma/chroma: the removed signal (output - input) is split into its luma part and its chroma part in
YCbCr (BT.601; chosen by benchmarks/controls.py over an opponent space and CIELAB on Nam25/RENOIR50:
see the README) and each part is kept by its own amount. In a linear space the split is exact: luma-only
leaves the chroma of the input untouched and chroma-only its luma (to rounding).

Strength of each component (`parse_component`):
  auto   the component comes from the main run (Auto, or the --strength given): full removal
  SIGMA  a number 0..255: the component comes from a model run at that noise level (one extra run per
         distinct level that differs from the main one)
  Kx     K in 0..1 (e.g. 0.5x, 0x): keep K of the main run's removal for that component; no extra run

Detail 0..100 %: returns part of the removed residual, more of it on edges and texture (measured on the
denoised luma's gradients against the noise level) than on flat areas: at 0 % the plain result, at 100 %
the input.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from denoiser.core.noise.level import NoiseLevel

# BT.601 luma weights; the chroma part of a colour difference is what is left after removing its luma.
_LUMA = {"ycbcr": np.array([0.299, 0.587, 0.114], np.float32),
         "opponent": np.array([1 / 3, 1 / 3, 1 / 3], np.float32)}
SPACES = ("ycbcr", "opponent", "lab")
DEFAULT_SPACE = "ycbcr"
_DETAIL_EXPONENT = 2.0  # flat areas get detail**(1 + this): 50 % detail returns 12.5 % there, 50 % on edges


@dataclass(frozen=True)
class Component:
    """How much of one component (luma or chroma) of the removed noise to remove."""

    kind: str = "auto"  # "auto" | "sigma" | "scale"
    value: float = 1.0

    def __str__(self) -> str:
        return {"auto": "auto", "sigma": f"{self.value:g}", "scale": f"{self.value:g}x"}[self.kind]


AUTO = Component()


def parse_component(text: str) -> Component:
    """'auto' | a noise level 0..255 | 'Kx' with K in 0..1. Raises ValueError saying what is accepted."""
    t = str(text).strip().lower()
    if t == "auto":
        return AUTO
    scale = t.endswith("x") or t.startswith("x")
    try:
        value = float(t.strip("x"))
    except ValueError:
        raise ValueError(f"{text!r} is not a strength: use auto, a noise level 0..255 (e.g. 12) "
                         f"or a fraction of the removal 0..1 followed by x (e.g. 0.5x)") from None
    if scale:
        if not 0 <= value <= 1:
            raise ValueError(f"{text!r}: a fraction of the removal must be in 0..1 (e.g. 0.5x); "
                             f"for more than Auto give a noise level instead")
        return Component("scale", value)
    if not 0 <= value <= 255:
        raise ValueError(f"{text!r}: a noise level must be in 0..255")
    return Component("sigma", value)


def parse_detail(text: str | float) -> float:
    """'0'..'100' (an optional % sign) -> 0..1."""
    t = str(text).strip().rstrip("%")
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"detail must be a percentage 0..100, got {text!r}") from None
    if not 0 <= value <= 100:
        raise ValueError(f"detail must be in 0..100 %, got {value:g}")
    return value / 100.0


@dataclass(frozen=True)
class Controls:
    """The photographer's settings for one denoise. The default is the plain run."""

    luma: Component = AUTO
    chroma: Component = AUTO
    detail: float = 0.0  # 0..1

    @property
    def plain(self) -> bool:
        return self.luma == AUTO and self.chroma == AUTO and self.detail == 0

    def xmp_fields(self) -> dict[str, str]:
        """The controls as the saved file's XMP note records them."""
        return {"luma": str(self.luma), "chroma": str(self.chroma), "detail": f"{self.detail * 100:g}%"}


def luma(rgb: np.ndarray, space: str = DEFAULT_SPACE) -> np.ndarray:
    """HxW luma of an HxWx3 array (its linear luma weights; for "lab", BT.601 weights)."""
    w = _LUMA.get(space, _LUMA["ycbcr"])
    return rgb[..., 0] * w[0] + rgb[..., 1] * w[1] + rgb[..., 2] * w[2]


def recombine(luma_from: np.ndarray, chroma_from: np.ndarray, space: str = DEFAULT_SPACE) -> np.ndarray:
    """The luma of `luma_from` with the chroma of `chroma_from` (HxWx3, 0..1). Linear spaces are exact;
    "lab" converts through CIELAB (its L is lightness, so it keeps perceived brightness instead)."""
    if space == "lab":
        lab_l = cv2.cvtColor(np.clip(luma_from, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
        lab_c = cv2.cvtColor(np.clip(chroma_from, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
        lab_c[..., 0] = lab_l[..., 0]
        return cv2.cvtColor(lab_c, cv2.COLOR_Lab2RGB)
    shift = luma(luma_from, space) - luma(chroma_from, space)
    return chroma_from + shift[..., None] * _unit_luma(space)


def _unit_luma(space: str) -> np.ndarray:
    """The RGB direction that changes luma by 1 and chroma by 0 in a linear space."""
    w = _LUMA[space]
    return np.ones(3, np.float32) / float(w.sum())


def blend(noisy: np.ndarray, denoised: np.ndarray, luma_amount: float, chroma_amount: float,
          space: str = DEFAULT_SPACE) -> np.ndarray:
    """Keep `luma_amount` of the luma part and `chroma_amount` of the chroma part of the removal (0..1)."""
    if space == "lab":
        lum = noisy + luma_amount * (denoised - noisy)
        chro = noisy + chroma_amount * (denoised - noisy)
        return recombine(lum, chro, "lab")
    diff = denoised - noisy  # in place from here on: a 45 MP photo has no room for many temporaries
    dl = luma(diff, space)
    diff *= np.float32(chroma_amount)
    diff += noisy
    if luma_amount != chroma_amount:  # the luma direction (1,1,1)/sum(w) carries the luma difference
        dl *= np.float32((luma_amount - chroma_amount) / float(_LUMA[space].sum()))
        diff += dl[..., None]
    return diff


def detail_weight(denoised: np.ndarray, sigma: float) -> np.ndarray:
    """HxW in 0..1: ~1 on edges and texture of the denoised photo, ~0 on flat areas.

    The gradient of the (lightly smoothed) denoised luma is compared with the noise level: a gradient
    well above what the noise left behind is structure."""
    y = luma(denoised) if denoised.shape[2] == 3 else denoised[..., 0]
    y = cv2.GaussianBlur(np.ascontiguousarray(y, np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    g2 = cv2.GaussianBlur(gx * gx + gy * gy, (0, 0), 1.5)  # an edge's residual spreads a few px around it
    t = max(float(sigma) / 255.0, 2.0 / 255.0) * 0.15
    return g2 / (g2 + np.float32(t * t))


def apply_detail(noisy: np.ndarray, result: np.ndarray, detail: float, sigma: float) -> np.ndarray:
    """Return `detail` (0..1) of the removed residual, edge-weighted: 0 -> result, 1 -> noisy."""
    if detail <= 0:
        return result
    if detail >= 1:
        return noisy.copy()
    w = detail_weight(result, sigma)
    amount = np.power(np.float32(detail), np.float32(1.0 + _DETAIL_EXPONENT) - np.float32(_DETAIL_EXPONENT) * w)
    out = noisy - result
    out *= amount[..., None]
    out += result
    return out


# denoise(pixels, sigma) -> denoised pixels (HxWxC, 0..1), e.g. Denoiser.denoise with progress/passes bound.
DenoiseFn = Callable[[np.ndarray, float], np.ndarray]


def controlled(noisy: np.ndarray, main: np.ndarray, sigma: float, controls: Controls, run: DenoiseFn,
               space: str = DEFAULT_SPACE) -> np.ndarray:
    """Apply the controls to `main` (the model's output at `sigma` for `noisy`); `run` makes the extra
    runs a component's own noise level needs. Returns pixels clipped to 0..1."""
    if controls.plain:
        return main
    colour = noisy.shape[2] == 3
    runs: dict[float, np.ndarray] = {float(sigma): main}

    def source(c: Component) -> tuple[np.ndarray, float]:
        if c.kind == "sigma":
            if c.value not in runs:
                runs[c.value] = run(noisy, c.value)
            return runs[c.value], 1.0
        return main, (c.value if c.kind == "scale" else 1.0)

    (lum_src, lum_k), (chr_src, chr_k) = source(controls.luma), source(controls.chroma)
    if not colour:
        out = noisy + lum_k * (lum_src - noisy)
    elif lum_src is chr_src:
        out = blend(noisy, lum_src, lum_k, chr_k, space) if (lum_k, chr_k) != (1.0, 1.0) else lum_src
    else:
        out = recombine(blend(noisy, lum_src, lum_k, lum_k, space), blend(noisy, chr_src, chr_k, chr_k, space),
                        space)
    out = apply_detail(noisy, out, controls.detail, sigma)
    if out is main:
        return main
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)


def denoise_photo(denoiser, photo, sigma: float | NoiseLevel | None, controls: Controls, progress=None,
                  passes: int = 1):
    """Denoiser.denoise_photo with the controls applied: returns (new Photo, NoiseLevel of the main run).
    `denoiser` is a core.inference.engine.Denoiser (or anything with its denoise/denoise_photo)."""
    result, used = denoiser.denoise_photo(photo, sigma, progress, passes)
    if controls.plain:
        return result, used
    pixels = controlled(photo.pixels, result.pixels, float(used), controls,
                        lambda img, s: denoiser.denoise(img, s, None, passes))
    return result.with_pixels(pixels), used


def note(model_name: str, sigma: float | NoiseLevel, passes: int, controls: Controls,
         precision: str = "fp32") -> dict[str, str]:
    """What a saved file's XMP records about how it was made (the window's save writes the same fields):
    the strength as its record (noise.level: mode, σ, Auto's scale, map mean and estimator version) and the
    precision the network ran in (Denoiser.precision: "fp32" or "int8")."""
    from denoiser import __version__
    from denoiser.core.noise.level import as_level

    fields = {"Software": f"Photo Denoiser {__version__}", "Model": model_name, **as_level(sigma).xmp_fields(),
              "Passes": str(passes), "Precision": precision}
    return fields | {k.capitalize(): v for k, v in controls.xmp_fields().items()}


def with_note(photo, model_name: str, sigma: float | NoiseLevel, passes: int, controls: Controls,
              precision: str = "fp32"):
    """The photo with its XMP noting how it was made (see note)."""
    import dataclasses

    from denoiser.core.io.meta import xmp_with_note

    fields = note(model_name, sigma, passes, controls, precision)
    return dataclasses.replace(photo, xmp=xmp_with_note(photo.xmp, fields))
