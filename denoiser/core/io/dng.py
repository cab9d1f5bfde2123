"""Write a DNG that raw editors open as a raw: a linear DNG (demosaiced, still linear camera RGB, as
Lightroom's Enhanced DNG and DxO PureRAW write) or a CFA DNG (the mosaic, for the user's own demosaic).

Layout (DNG 1.4): IFD0 is a small 8-bit sRGB preview (NewSubfileType 1) that carries the camera-wide tags
(DNGVersion, UniqueCameraModel, ColorMatrix/CalibrationIlluminant, AsShotNeutral, BaselineExposure,
Orientation, the original EXIF and the XMP); its one SubIFD is the full-resolution raw (NewSubfileType 0)
with the per-image tags (levels, crop, CFA layout, NoiseProfile). tifffile writes the TIFF structure and
every tag (extratags); the EXIF/GPS sub-IFDs are appended by core.io.meta as for TIFF output; the file is
written through core.files' atomic writer (temp file, fsync, rename, never over an existing file
without overwrite).
"""
from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

from denoiser.core.files import OutputFileError, atomic_write, check_output_file
from denoiser.core.io import meta
from denoiser.core.io.raw import RawImage

DNG_VERSION = (1, 4, 0, 0)
CFA_COLOUR = {"R": 0, "G": 1, "B": 2}
PREVIEW_SIDE = 256  # long side of the IFD0 preview
# TIFF types
BYTE, ASCII, SHORT, LONG, RATIONAL, SRATIONAL, DOUBLE = 1, 2, 3, 4, 5, 10, 12
_DENOM = 10000


class DngError(ValueError):
    """Data that cannot become a valid DNG; the message says what is wrong."""


@dataclass(frozen=True)
class DngContent:
    """What goes into one DNG beyond the source raw's metadata."""

    kind: str  # "linear" | "cfa"
    pixels: np.ndarray  # linear: (H, W, 3) normalised camera RGB; cfa: (H, W) normalised mosaic
    noise_profile: tuple[tuple[float, float], ...]  # (a, b) per colour R, G, B of what noise is left
    xmp: bytes | None = None
    preview: np.ndarray | None = None  # (h, w, 3) uint8 sRGB; made from the pixels when None


def write_dng(raw: RawImage, content: DngContent, target: Path, overwrite: bool = False) -> Path:
    """Write atomically; the source raw is never touched. Raises DngError, or OutputFileError when the
    target exists (without overwrite) or would be the source itself."""
    target = check_output_file(Path(target), overwrite, (raw.path,), suffixes=(".dng",))
    data = _checked(raw, content)
    preview = content.preview if content.preview is not None else _preview(raw, content)
    try:
        atomic_write(target, lambda f: _write(f, raw, content, data, preview), overwrite)
    except FileExistsError:
        raise OutputFileError(f"{target}: already exists; add --overwrite to replace it") from None
    return target


def _checked(raw: RawImage, content: DngContent) -> np.ndarray:
    px = content.pixels
    if content.kind == "linear" and (px.ndim != 3 or px.shape[2] != 3):
        raise DngError(f"a linear DNG needs (H, W, 3) pixels, got {px.shape}")
    if content.kind == "cfa":
        if px.ndim != 2 or raw.kind != "bayer" or sorted(raw.pattern) != ["B", "G", "G", "R"]:
            raise DngError("a CFA DNG needs a Bayer raw and an (H, W) mosaic")
        if px.shape[0] % 2 or px.shape[1] % 2:
            px = px[:px.shape[0] // 2 * 2, :px.shape[1] // 2 * 2]
        return _to_sensor_units(px, raw)
    if content.kind != "linear":
        raise DngError(f"unknown DNG kind {content.kind!r} (linear or cfa)")
    return _to_uint16(px)


def _to_uint16(px: np.ndarray) -> np.ndarray:
    out = np.empty(px.shape, np.uint16)
    for y in range(0, px.shape[0], 256):
        out[y:y + 256] = np.rint(np.clip(np.nan_to_num(px[y:y + 256]), 0.0, 1.0) * 65535.0)
    return out


def _to_sensor_units(cfa: np.ndarray, raw: RawImage) -> np.ndarray:
    """Back to the camera's own black/white levels, so the CFA DNG decodes like the original."""
    out = np.empty(cfa.shape, np.uint16)
    top = float(max(raw.white_level))
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        b, w = raw.black_level[k], raw.white_level[k]
        v = np.nan_to_num(cfa[dy::2, dx::2]) * np.float32(w - b) + np.float32(b)
        out[dy::2, dx::2] = np.rint(np.clip(v, 0.0, top))
    return out


def _write(f: BinaryIO, raw: RawImage, content: DngContent, data: np.ndarray, preview: np.ndarray) -> None:
    with tifffile.TiffWriter(f, bigtiff=False, byteorder="<") as tif:
        tif.write(preview, photometric="rgb", subfiletype=1, subifds=1, software=False, metadata=None,
                  extratags=_ifd0_tags(raw, content), rowsperstrip=preview.shape[0])
        tif.write(data, photometric=34892 if content.kind == "linear" else 32803, subfiletype=0,
                  planarconfig="contig" if data.ndim == 3 else None, software=False, metadata=None,
                  extratags=_raw_tags(raw, content, data), compression=None, rowsperstrip=64)
    _subifds_as_long(f)
    if raw.exif:
        meta.append_exif_subifds(f, raw.exif)


def _subifds_as_long(f: BinaryIO) -> None:
    """tifffile types the SubIFDs pointer IFD (13); the DNG specification and exiftool expect LONG (4),
    which every reader takes. Only the entry's type field changes."""
    read_at = meta.file_reader(f)
    (ifd0,) = struct.unpack("<I", read_at(4, 4))
    (n,) = struct.unpack("<H", read_at(ifd0, 2))
    for i in range(n):
        pos = ifd0 + 2 + 12 * i
        tag, typ = struct.unpack("<HH", read_at(pos, 4))
        if tag == 330 and typ == 13:
            f.seek(pos + 2)
            f.write(struct.pack("<H", 4))


def _rationals(values, signed: bool = False) -> tuple[int, ...]:
    out: list[int] = []
    for v in np.ravel(values):
        num = int(round(float(v) * _DENOM))
        out += [num if signed else max(num, 0), _DENOM]
    return tuple(out)


def _ascii(text: str) -> bytes:
    return (text.encode("ascii", "replace") or b"Unknown") + b"\0"


def _ifd0_tags(raw: RawImage, content: DngContent) -> list[tuple]:
    tags: dict[int, tuple] = {}
    if raw.exif:  # the original's descriptive tags (date, artist, ...) and the Exif/GPS pointer placeholders
        for tag in meta.tiff_extratags(raw.exif):
            if tag[0] != meta.TAG_ORIENTATION:
                tags[tag[0]] = tag
    # Make is what rawspeed (darktable) looks a DNG up by: written even when the source did not say it
    tags[271] = (271, ASCII, None, _ascii(raw.make or "Unknown"), True)
    tags[272] = (272, ASCII, None, _ascii(raw.model or raw.unique_camera_model), True)
    neutral = [1.0 / w for w in raw.wb]
    tags.update({
        274: (274, SHORT, 1, int(raw.orientation), True),
        50706: (50706, BYTE, 4, bytes(DNG_VERSION), True),
        50707: (50707, BYTE, 4, bytes((1, 1, 0, 0) if content.kind == "cfa" else (1, 3, 0, 0)), True),
        50708: (50708, ASCII, None, _ascii(raw.unique_camera_model), True),
        50721: (50721, SRATIONAL, 9, _rationals(raw.color_matrix1, True), True),
        50778: (50778, SHORT, 1, int(raw.illuminant1), True),
        50728: (50728, RATIONAL, 3, _rationals(neutral), True),
        50730: (50730, SRATIONAL, 1, _rationals([raw.baseline_exposure], True), True),
    })
    if raw.color_matrix2 is not None and raw.illuminant2 is not None:
        tags[50722] = (50722, SRATIONAL, 9, _rationals(raw.color_matrix2, True), True)
        tags[50779] = (50779, SHORT, 1, int(raw.illuminant2), True)
    xmp = content.xmp or raw.xmp
    if xmp:
        tags[700] = (700, BYTE, None, bytes(xmp), True)
    return [tags[k] for k in sorted(tags)]


def _raw_tags(raw: RawImage, content: DngContent, data: np.ndarray) -> list[tuple]:
    h, w = data.shape[:2]
    x, y, cw, ch = raw.default_crop
    if cw <= 0 or ch <= 0 or x + cw > w or y + ch > h:
        x, y, cw, ch = 0, 0, w, h
    profile = [max(v, 0.0) for pair in content.noise_profile for v in (max(pair[0], 1e-12), pair[1])]
    tags: list[tuple] = [
        (50719, LONG, 2, (int(x), int(y)), True),  # DefaultCropOrigin
        (50720, LONG, 2, (int(cw), int(ch)), True),  # DefaultCropSize
        (51041, DOUBLE, len(profile), tuple(profile), True),  # NoiseProfile
    ]
    for code, blob in raw.opcodes:  # all, for data of the source's own kind; else those run after demosaic
        if content.kind == "cfa" or raw.kind == "linear" or code == 51022:
            tags.append((code, 7, len(blob), blob, True))
    if content.kind == "cfa":
        tags += [
            (33421, SHORT, 2, (2, 2), True),  # CFARepeatPatternDim
            (33422, BYTE, 4, bytes(CFA_COLOUR[c] for c in raw.pattern), True),  # CFAPattern
            (50710, BYTE, 3, bytes((0, 1, 2)), True),  # CFAPlaneColor
            (50711, SHORT, 1, 1, True),  # CFALayout: rectangular
            (50713, SHORT, 2, (2, 2), True),  # BlackLevelRepeatDim
            (50714, RATIONAL, 4, _rationals(raw.black_level), True),
            (50717, LONG, 1, int(round(max(raw.white_level))), True),
        ]
    else:
        tags += [
            (50713, SHORT, 2, (1, 1), True),
            (50714, RATIONAL, 3, _rationals([0.0, 0.0, 0.0]), True),
            (50717, LONG, 3, (65535, 65535, 65535), True),
        ]
    return sorted(tags, key=lambda t: t[0])


def _preview(raw: RawImage, content: DngContent) -> np.ndarray:
    """A small sRGB rendering for IFD0 (what a file browser shows), made by the neutral development."""
    from denoiser.core.io.develop import develop_neutral

    px = content.pixels
    step = max(1, int(np.ceil(max(px.shape[:2]) / PREVIEW_SIDE)))
    if content.kind == "cfa":
        step += step % 2  # keep the mosaic's phase
        small = _binned(px, raw.pattern, step)
    else:
        small = px[::step, ::step]
    srgb = develop_neutral(small, dataclasses.replace(raw, orientation=1))
    return np.ascontiguousarray(np.rint(np.clip(srgb, 0, 1) * 255).astype(np.uint8))


def _binned(cfa: np.ndarray, pattern: str, step: int) -> np.ndarray:
    """Every `step`-th 2x2 cell of the mosaic as one RGB pixel (for a preview only)."""
    cells: dict[str, list[np.ndarray]] = {c: [] for c in "RGB"}
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        cells[pattern[k]].append(cfa[dy::step, dx::step])
    hh = min(p.shape[0] for ps in cells.values() for p in ps)
    ww = min(p.shape[1] for ps in cells.values() for p in ps)
    return np.dstack([np.mean([p[:hh, :ww] for p in cells[c]], axis=0) for c in "RGB"]).astype(np.float32)
