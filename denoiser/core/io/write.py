"""Encoding integer pixels + metadata into photo files (used by photo.save_photo).

Each writer takes an open binary file (the temp file that save_photo renames into place afterwards).
PNG and TIFF keep 16 bits; JPEG, WebP, HEIF, AVIF and BMP are 8-bit formats. Pillow writes 8-bit PNG/JPEG/WebP/BMP,
OpenCV 16-bit PNG (Pillow cannot), tifffile every TIFF (so the EXIF sub-IFD can be appended, which
Pillow's TIFF writer drops).
"""
from __future__ import annotations

import io
import logging
from typing import Any, BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import Image

from denoiser.core.io import meta

log = logging.getLogger(__name__)

_ROWS = 256  # rows per conversion block: keeps float temporaries small on 45+ MP photos
_JPEG_MAX_EXIF = 65527
_JPEG_MAX_XMP = 65533 - 29  # one APP1 segment less the XMP namespace header (what Pillow accepts)
# zlib level for Pillow PNG and TIFF: several times faster than the default 6 for slightly larger files,
# which matters at 45 MP.
_ZLIB_LEVEL = 3


def to_uint(pixels: np.ndarray, bits: int) -> np.ndarray:
    """float 0..1 → uint8/uint16 with rounding, so k/255 (or k/65535) comes back as exactly k."""
    dtype, scale = (np.uint8, 255.0) if bits == 8 else (np.uint16, 65535.0)
    out = np.empty(pixels.shape, dtype)
    for y in range(0, pixels.shape[0], _ROWS):
        block = np.nan_to_num(np.clip(pixels[y:y + _ROWS], 0.0, 1.0), nan=0.0) * np.float32(scale)
        out[y:y + _ROWS] = np.rint(block)
    return out


def alpha_as(alpha: np.ndarray | None, bits: int) -> np.ndarray | None:
    """The alpha plane at the output depth; unchanged when the depth already matches."""
    if alpha is None:
        return None
    if alpha.dtype == (np.uint8 if bits == 8 else np.uint16):
        return alpha
    if alpha.dtype == np.uint16:  # 16 → 8 bits
        return ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if alpha.dtype == np.uint8:  # 8 → 16 bits
        return alpha.astype(np.uint16) * np.uint16(257)
    return to_uint(alpha.astype(np.float32), bits)


def _pillow_image(px: np.ndarray, alpha: np.ndarray | None, grey_ok: bool) -> Image.Image:
    if px.shape[2] == 1 and not grey_ok:
        px = np.repeat(px, 3, axis=2)
    if alpha is not None:
        return Image.fromarray(np.dstack([px, alpha]))  # LA or RGBA
    return Image.fromarray(px[..., 0] if px.shape[2] == 1 else px)


def write_jpeg(f: BinaryIO, px: np.ndarray, exif: bytes | None, icc: bytes | None, xmp: bytes | None,
               quality: int) -> None:
    if exif and len(exif) > _JPEG_MAX_EXIF:
        log.warning("EXIF block of %d bytes does not fit in a JPEG segment; it is left out", len(exif))
        exif = None
    xmp, problem = meta.xmp_that_fits(xmp, _JPEG_MAX_XMP)
    if problem:
        log.warning("JPEG: %s", problem)
    kwargs = _meta_kwargs(exif, icc, xmp)
    subsampling = 0 if quality >= 90 else 2  # 4:4:4 at high quality: denoised detail is in the chroma too
    _pillow_image(px, None, True).save(f, "JPEG", quality=quality, subsampling=subsampling, **kwargs)


def write_webp(f: BinaryIO, px: np.ndarray, alpha: np.ndarray | None, exif: bytes | None,
               icc: bytes | None, xmp: bytes | None, quality: int) -> None:
    im = _pillow_image(px, alpha, False)
    im.save(f, "WEBP", quality=quality, lossless=quality >= 100, exact=alpha is not None,
            **_meta_kwargs(exif, icc, xmp))


def write_heif(f: BinaryIO, px: np.ndarray, alpha: np.ndarray | None, exif: bytes | None, icc: bytes | None,
               xmp: bytes | None, quality: int, fmt: str = "HEIF") -> None:
    """HEIC (pillow-heif, registered by io.read) or AVIF (Pillow's own), 8-bit, with EXIF, ICC and XMP."""
    _pillow_image(px, alpha, False).save(f, fmt, quality=quality, **_meta_kwargs(exif, icc, xmp))


def write_bmp(f: BinaryIO, px: np.ndarray) -> None:
    _pillow_image(px, None, True).save(f, "BMP")


def _meta_kwargs(exif: bytes | None, icc: bytes | None, xmp: bytes | None) -> dict[str, bytes]:
    kwargs: dict[str, bytes] = {}
    if exif:
        kwargs["exif"] = exif
    if icc:
        kwargs["icc_profile"] = icc
    if xmp:
        kwargs["xmp"] = xmp
    return kwargs


def write_png(f: BinaryIO, px: np.ndarray, alpha: np.ndarray | None, exif: bytes | None,
              icc: bytes | None, xmp: bytes | None) -> None:
    if px.dtype == np.uint8:
        buf = io.BytesIO()
        _pillow_image(px, alpha, True).save(buf, "PNG", compress_level=_ZLIB_LEVEL)
        data = buf.getvalue()
    else:
        data = _encode_png16(px, alpha)
    f.write(meta.png_with_metadata(data, exif, icc, xmp))


def _encode_png16(px: np.ndarray, alpha: np.ndarray | None) -> bytes:
    if px.shape[2] == 1 and alpha is not None:
        return meta.encode_png16(np.dstack([px, alpha]))
    arr = px[..., 0] if px.shape[2] == 1 else px[..., ::-1]  # OpenCV wants BGR(A)
    if alpha is not None:
        arr = np.dstack([arr, alpha])
    # OpenCV's default PNG settings: faster than an explicit zlib level, for the same size.
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise OSError("OpenCV could not encode the PNG")
    return enc.tobytes()


def write_tiff(f: BinaryIO, px: np.ndarray, alpha: np.ndarray | None, exif: bytes | None,
               icc: bytes | None, xmp: bytes | None) -> None:
    arr = px if alpha is None else np.dstack([px, alpha])
    if arr.shape[2] == 1:
        arr = arr[..., 0]
    extratags = []
    if exif:
        extratags += meta.tiff_extratags(exif)
    if xmp:
        extratags.append((700, 1, None, xmp, True))
    kwargs: dict[str, Any] = {}
    res = meta.tiff_resolution(exif)
    if res is not None:
        kwargs = {"resolution": (res[0], res[1]), "resolutionunit": res[2]}
    tifffile.imwrite(
        f, arr, photometric="rgb" if px.shape[2] == 3 else "minisblack",
        extrasamples=(2,) if alpha is not None else None,  # 2 = unassociated alpha
        planarconfig="contig", compression="zlib", compressionargs={"level": _ZLIB_LEVEL}, predictor=True,
        rowsperstrip=64,
        iccprofile=icc or None, extratags=extratags, software=False, metadata=None, bigtiff=False,
        **kwargs)
    if exif:
        meta.append_exif_subifds(f, exif)
