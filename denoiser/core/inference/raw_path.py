"""Denoise a raw (core.io.raw.RawImage) into linear camera RGB, before any of the camera's processing.

Two paths, one function (`denoise_raw`):
- "raw joint model": the joint denoise + demosaic network (core.inference.raw_model, resources/models/
  raw.safetensors) on the mosaic with the sensor's noise map, when that model is installed;
- "raw fallback": demosaic linearly (OpenCV edge-aware), apply the white balance, move to a perceptual space
  (the sRGB curve), denoise with the RGB network with a per-pixel noise map propagated from the sensor's
  (a, b) through those steps, then invert the curve and the white balance. A linear DNG skips the demosaic.
Either way the noise the model is told about follows from the sensor model (core.noise.sensor), and the
strength slider scales it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoiser.core.io.develop import demosaic, mosaic
from denoiser.core.io.raw import RawImage
from denoiser.core.noise.sensor import SensorNoise
from denoiser.core.progress import NullProgress, Progress

log = logging.getLogger(__name__)

JOINT, FALLBACK = "raw joint model", "raw fallback"
RAW_MODEL_NAME = "raw"  # resources/models/raw.safetensors (+ raw.json)
# The fallback's RGB network runs on stripes of about STRIPE_PIXELS: the engine's peak follows its tile's area
# (rows x up to 2048 columns; about 200 bytes a pixel), so short stripes keep a 24 MP raw within 2 GB
STRIPE_PIXELS = 3_000_000
MARGIN = 64  # rows of context above and below a stripe: the engine's own tile overlap (even: half-res map)


@dataclass(frozen=True)
class RawOptions:
    strength_scale: float = 1.0  # scale on the sensor's noise std (1.0 = as measured)
    controls: Any = None  # core.inference.controls.Controls for the fallback's RGB network (None: plain)
    passes: int = 1
    joint: str = "auto"  # "auto": the joint model when installed | "never": the fallback
    fixed_sigma: float | None = None  # a fixed level (0..255) for the fallback's RGB network instead of the map


@dataclass(frozen=True)
class RawResult:
    rgb: np.ndarray  # (H, W, 3) float32 linear camera RGB, normalised, not white-balanced
    path: str  # JOINT | FALLBACK
    model: str  # the model that ran
    noise: SensorNoise  # the noise the model was told about (after the strength scale)
    notes: dict[str, str] = field(default_factory=dict)
    level: Any = None  # the fallback's NoiseLevel for the RGB network (without its map)


def sensor_noise(raw: RawImage) -> SensorNoise:
    """The raw's noise model: its DNG NoiseProfile, else measured on the mosaic (or the linear pixels)."""
    pattern = raw.pattern or "RGGB"
    if raw.noise_profile:
        return SensorNoise.from_noise_profile(raw.noise_profile, pattern)
    cfa = raw.cfa if raw.cfa is not None else mosaic(_pixels(raw), pattern)
    return SensorNoise.estimate(cfa, pattern, raw.black_noise)


def _pixels(raw: RawImage) -> np.ndarray:
    """The raw's data as read: its mosaic (Bayer) or its linear RGB."""
    data = raw.cfa if raw.kind == "bayer" else raw.rgb
    if data is None:
        raise ValueError(f"{raw.path}: holds no pixels")
    return data


def joint_model_path() -> Path | None:
    """The installed joint raw model file, or None (then the fallback runs)."""
    from denoiser.core.resources import resources_dir

    path = resources_dir() / "models" / f"{RAW_MODEL_NAME}.safetensors"
    return path if path.is_file() else None


def denoise_raw(raw: RawImage, options: RawOptions, denoiser=None, progress: Progress | None = None,
                noise: SensorNoise | None = None) -> RawResult:
    """Denoise `raw`; `denoiser` is the RGB engine (core.inference.engine.Denoiser) the fallback uses."""
    progress = progress or NullProgress()
    noise = (noise or sensor_noise(raw)).scaled(options.strength_scale)
    if raw.kind == "bayer" and options.joint == "auto" and joint_model_path() is not None:
        return _joint(raw, noise, progress)
    if denoiser is None:
        raise ValueError("the raw fallback needs the RGB denoiser")
    return _fallback(raw, noise, options, denoiser, progress)


def _joint(raw: RawImage, noise: SensorNoise, progress: Progress) -> RawResult:
    from denoiser.core.inference import raw_model

    path = joint_model_path()
    assert path is not None  # denoise_raw checked
    model = raw_model.load_raw_model(path)
    rgb = raw_model.denoise_demosaic(model, _pixels(raw), raw.pattern, raw.wb, noise, progress=progress)
    return RawResult(np.asarray(rgb, np.float32), JOINT, RAW_MODEL_NAME, noise)


def _fallback(raw: RawImage, noise: SensorNoise, options: RawOptions, denoiser, progress: Progress) -> RawResult:
    """In place and in row blocks where it can: a 24 MP raw holds a few 288 MB float planes at most."""
    from denoiser.core.inference import controls as tone

    z = _pixels(raw).copy() if raw.kind == "linear" else demosaic(_pixels(raw), raw.pattern)
    gain = np.asarray(raw.wb, np.float32) / np.float32(max(raw.wb))  # white-balanced, never above 1
    np.multiply(z, gain, out=z)
    clipped = z.max(axis=2) >= 1.0  # blown highlights: the curve's output would clip, keep them as they are
    kept = z[clipped]
    if options.fixed_sigma is not None:
        from denoiser.core.noise.level import NoiseLevel

        level = NoiseLevel.fixed(options.fixed_sigma)
    else:
        level = _level(_noise_map(z, gain, noise, raw.pattern or "RGGB"))
    y = _blockwise(z, encode, out=z)
    del z
    controls = options.controls if options.controls is not None else tone.Controls()
    result, used = _in_stripes(denoiser, y, level, controls, progress, options.passes)  # in place
    del y
    result = _blockwise(result, decode, out=result)
    result[clipped] = kept
    np.divide(result, gain, out=result)
    return RawResult(result, FALLBACK, denoiser.model_name or "default", noise,
                     {"Strength": f"{float(used):.1f}"}, used.without_map())


def _in_stripes(denoiser, y: np.ndarray, level, controls, progress: Progress, passes: int):
    """The RGB network on horizontal stripes of at most STRIPE_PIXELS, each with MARGIN rows of context on
    both sides that are cut off again: the engine's memory follows the stripe, not the photo (a 24 MP raw),
    and the result is the whole photo's (the margin exceeds the engine's own tile overlap). Results are
    written back into `y` (the rows above a stripe are kept aside as its context first)."""
    from denoiser.core.inference import controls as tone
    from denoiser.core.io.photo import Photo
    from denoiser.core.progress import SubProgress

    h, w = y.shape[:2]
    rows = max(2 * MARGIN, STRIPE_PIXELS // max(w, 1) // 2 * 2)
    starts = list(range(0, h, rows))
    used, above = level, y[:0].copy()
    for k, y0 in enumerate(starts):
        y1 = min(h, y0 + rows)
        a, b = y0 - len(above), min(h, y1 + MARGIN)
        part = Photo(np.concatenate([above, y[y0:b]]))
        above = y[max(0, y1 - MARGIN):y1].copy()  # the next stripe's context, before these rows are replaced
        stripe_level = level.window(a, 0, b, w) if level.is_auto else level
        res, used_k = tone.denoise_photo(denoiser, part, stripe_level, controls,
                                         SubProgress(progress, k / len(starts), (k + 1) / len(starts)), passes)
        y[y0:y1] = res.pixels[y0 - a:y1 - a]
        used = used_k if len(starts) == 1 else used
    return y, used


def _blockwise(x: np.ndarray, fn, out: np.ndarray, rows: int = 256) -> np.ndarray:
    """out[...] = fn(x) in row blocks (fn's temporaries stay a block in size; out may be x)."""
    for y0 in range(0, x.shape[0], rows):
        out[y0:y0 + rows] = fn(x[y0:y0 + rows])
    return out


def encode(z: np.ndarray) -> np.ndarray:
    """The sRGB curve (core.colour's, odd-symmetric so noise around black stays signed), on a numpy block."""
    from denoiser.core.colour import linear_to_srgb

    return linear_to_srgb(torch.from_numpy(np.ascontiguousarray(z, np.float32))).numpy()


def decode(y: np.ndarray) -> np.ndarray:
    from denoiser.core.colour import srgb_to_linear_signed

    return srgb_to_linear_signed(torch.from_numpy(np.ascontiguousarray(y, np.float32))).numpy()


def _noise_map(z: np.ndarray, gain: np.ndarray, noise: SensorNoise, pattern: str) -> np.ndarray:
    """Per-pixel noise std after white balance and the curve, in 0..255 units at half resolution (the grid
    of the RGB engine's map): each channel's sensor std sqrt(a x + b), times its gain and the curve's slope
    at that brightness, averaged over the channels."""
    from denoiser.core.colour import srgb_slope

    per_colour = noise.per_colour(pattern)
    h, w = z.shape[:2]
    acc = np.zeros((h, w), np.float32)
    for c in range(3):
        a, b = per_colour[c]
        x = np.maximum(z[..., c] / gain[c], 0.0)
        slope = srgb_slope(torch.from_numpy(np.ascontiguousarray(z[..., c]))).numpy()
        acc += np.sqrt(np.maximum(np.float32(a) * x + np.float32(b), 0.0)) * gain[c] * slope
    full = acc * np.float32(255.0 / 3.0)
    hh, ww = (h + 1) // 2 * 2, (w + 1) // 2 * 2
    padded = np.pad(full, ((0, hh - h), (0, ww - w)), mode="edge")
    return padded.reshape(hh // 2, 2, ww // 2, 2).mean(axis=(1, 3)).astype(np.float32)


def _level(noise_map: np.ndarray):
    """The RGB engine's noise level carrying this map (scale 1: the sensor noise is already scaled)."""
    from denoiser.core.noise.level import NoiseLevel

    return NoiseLevel.auto(noise_map, 1.0, estimator="sensor")


def remaining_noise(rgb: np.ndarray, pattern: str) -> SensorNoise:
    """What noise is left in a result (for the DNG's NoiseProfile), measured on it as on a mosaic."""
    try:
        return SensorNoise.estimate(mosaic(rgb, pattern), pattern)
    except ValueError:
        return SensorNoise((1e-9, 1e-9, 1e-9, 1e-9), (0.0, 0.0, 0.0, 0.0), "given")


@dataclass(frozen=True)
class RawSaved:
    """One raw denoised into a DNG: what the report and the terminal line say."""

    output: Path
    path: str  # JOINT | FALLBACK
    model: str
    noise: SensorNoise
    dng: str  # "linear" | "cfa"
    level: Any = None  # the fallback's level for the RGB network

def raw_to_dng(source: Path, target: Path, options: RawOptions, denoiser=None, progress: Progress | None = None,
               overwrite: bool = False, max_megapixels: float = 250.0, max_memory: int | None = None,
               dng: str = "linear") -> RawSaved:
    """Read a raw, denoise it before any development, and write `target` as a linear DNG (or a CFA DNG, the
    denoised mosaic for the user's own demosaic: the result re-mosaicked, since both paths denoise and
    demosaic together). Nothing is written on any failure; the source is never touched."""
    from denoiser.core.files import check_output_file
    from denoiser.core.io.dng import DngContent, write_dng
    from denoiser.core.io.raw import read_raw

    if dng not in ("linear", "cfa"):
        raise ValueError(f"DNG kind must be linear or cfa, not {dng!r}")
    raw = read_raw(source, max_megapixels, max_memory)
    if dng == "cfa" and raw.kind != "bayer":
        raise ValueError(f"{source}: a CFA DNG needs a Bayer raw; this one is already linear (write a linear DNG)")
    check_output_file(Path(target), overwrite, (Path(source),), suffixes=(".dng",))  # before the work
    result = denoise_raw(raw, options, denoiser, progress)
    pattern = raw.pattern or "RGGB"
    pixels = mosaic(result.rgb, pattern) if dng == "cfa" else result.rgb
    left = remaining_noise(result.rgb, pattern)
    xmp = _note(raw, result, options, dng)
    write_dng(raw, DngContent(dng, pixels, left.per_colour(pattern), xmp), Path(target), overwrite)
    return RawSaved(Path(target), result.path, result.model, result.noise, dng, result.level)


def note_fields(result: RawResult, options: RawOptions, dng: str) -> dict[str, str]:
    """What the DNG's XMP (and the batch report) record about how it was made."""
    from denoiser import __version__

    a = "/".join(f"{x:.3g}" for x in result.noise.a)
    b = "/".join(f"{x:.3g}" for x in result.noise.b)
    return {"Software": f"Photo Denoiser {__version__}", "Path": result.path, "Model": result.model,
            "StrengthScale": f"{options.strength_scale:g}", "NoiseSource": result.noise.source,
            "NoiseA": a, "NoiseB": b, "Passes": str(options.passes), "Dng": dng} | result.notes


def _note(raw: RawImage, result: RawResult, options: RawOptions, dng: str) -> bytes:
    from denoiser.core.io.meta import xmp_with_note

    return xmp_with_note(raw.xmp, note_fields(result, options, dng))
