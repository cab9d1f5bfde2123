"""Decoding photo files into integer arrays + metadata (used by photo.load_photo).

Which library decodes what, and why:
- Pillow for 8-bit images of every kind and for metadata: it knows the most modes and containers.
- tifffile for 16-bit TIFF and OpenCV for 16-bit PNG, because Pillow silently reduces 16-bit RGB to 8 bits.
  OpenCV also decodes 16-bit TIFFs whose compression tifffile cannot handle without imagecodecs (LZW...).
- rawpy (LibRaw) for camera RAW files, developed to 16-bit sRGB with the camera's white balance.
Everything here raises DecodeError(reason); photo.py adds the file name.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import tifffile
from PIL import Image, ImageFile, TiffImagePlugin

from denoiser.core.io import meta
from denoiser.core.io.memory import MemoryLimitError, check_photo_memory

log = logging.getLogger(__name__)

# Pillow's settings are process-wide, so they are set once, here, when the decoders load, never while the io,
# batch-prefetch and training threads decode at once. A truncated file must be an error, never a silently
# grey-filled picture; Pillow's own pixel-count guard is off because check_size applies the caller's limit
# (an argument) to every photo from its header, before any pixel is decoded.
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None
# HEIC/HEIF (phones) through pillow-heif, registered once with Pillow here for the same reason. libheif applies
# the container's rotation while decoding and sets the EXIF orientation to 1, so it is never applied twice.
pillow_heif.register_heif_opener()

NO_MEMORY_LIMIT = 1 << 62  # max_memory for a check already made
PILLOW_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "WEBP": "WEBP", "BMP": "BMP",
                  "HEIF": "HEIF", "AVIF": "AVIF"}


class DecodeError(Exception):
    """The file cannot be turned into a photo; the message is the reason, without the file name."""


@dataclass
class Decoded:
    """Upright-to-be integer pixels (HxWxC, C = 1 or 3), optional alpha (HxW) and metadata."""
    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    exif: bytes | None = None
    xmp: bytes | None = None
    icc: bytes | None = None
    oriented: bool = False  # True when the decoder already applied the orientation (RAW)


def check_size(width: int, height: int, max_megapixels: float, max_memory: int | None = None) -> None:
    """Refuse, from the header's size alone, a photo above the megapixel limit or one that would need more
    memory than `max_memory` bytes (None: more than half of what is free now)."""
    mp = width * height / 1e6
    if mp > max_megapixels:
        raise DecodeError(f"image too large: {width} x {height} = {mp:.3g} MP exceeds the limit of "
                          f"{max_megapixels:g} MP (raise it with --max-megapixels)")
    try:
        check_photo_memory(width, height, max_memory)
    except MemoryLimitError as exc:
        raise DecodeError(str(exc)) from None


def open_pillow(path: Path, max_megapixels: float, max_memory: int | None = None) -> Image.Image:
    """Open lazily (header only); the size limits are checked from the header right after, before any pixel
    is decoded."""
    im = Image.open(path)
    try:
        check_size(im.width, im.height, max_megapixels, max_memory)
    except DecodeError:
        im.close()
        raise
    return im


def decode_pillow_file(im: Image.Image, path: Path, data_head: bytes) -> Decoded:
    fmt = PILLOW_FORMATS[im.format or ""]
    if getattr(im, "n_frames", 1) > 1 and fmt in ("WEBP", "AVIF"):
        raise DecodeError("animated images are not supported")
    if fmt == "TIFF":
        _warn_pages(path, getattr(im, "n_frames", 1))
    icc = im.info.get("icc_profile") or None
    if fmt == "PNG" and data_head[24:25] == b"\x10":
        return _decode_png_cv(path, icc)
    if fmt == "TIFF" and isinstance(im, TiffImagePlugin.TiffImageFile) and max(_as_tuple(im.tag_v2.get(258, (8,)))) > 8:
        return decode_tiff(path, float("inf"), NO_MEMORY_LIMIT, warn_pages=False)  # size checked from the header
    try:
        pixels, alpha, bit_depth, drop_icc = pillow_to_arrays(im)
    except ValueError as exc:  # a text chunk over Pillow's limit: decoded without it, metadata bounded
        if fmt != "PNG" or "Decompressed data too large" not in str(exc):
            raise
        return _decode_png_cv(path, None)
    if drop_icc:
        icc = None
    exif, xmp = _pillow_exif(im, path, fmt), _as_bytes(im.info.get("xmp"))
    return Decoded(pixels, alpha, bit_depth, fmt, exif, xmp, icc)


def _as_tuple(v: object) -> tuple:
    return v if isinstance(v, tuple) else (v,)


def _as_bytes(v: str | bytes | None) -> bytes | None:
    if isinstance(v, str):
        return v.encode("utf-8")
    return bytes(v) if v else None


def _pillow_exif(im: Image.Image, path: Path, fmt: str) -> bytes | None:
    if fmt == "TIFF":
        with open(path, "rb") as f:
            return meta.exif_from_tiff_file(f)
    return meta.normalise_exif(im.info.get("exif"))


def pillow_to_arrays(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int, bool]:
    """Decode fully and map every Pillow mode to (pixels HxWxC, alpha, bit depth, drop_icc)."""
    im.load()  # raises OSError on a truncated file (LOAD_TRUNCATED_IMAGES is False)
    mode, drop_icc = im.mode, False
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("CMYK", "YCbCr", "RGBX"):
        drop_icc = mode == "CMYK"
        im = im.convert("RGB")
    elif mode in ("La", "RGBa"):
        im = im.convert(mode.upper())
    elif mode == "LA" or mode == "L" or mode == "RGB" or mode == "RGBA":
        pass
    elif mode.startswith("I;16"):
        arr = np.array(im).astype(np.uint16, copy=False)
        return arr[..., None], None, 16, False
    else:
        raise DecodeError(f"unsupported pixel format {mode!r} (only 8- and 16-bit integer images are supported)")
    arr = np.asarray(im)
    if im.mode == "L":
        return arr[..., None], None, 8, drop_icc
    if im.mode == "LA":
        return arr[..., :1], arr[..., 1].copy(), 8, drop_icc
    if im.mode == "RGBA":
        return arr[..., :3], arr[..., 3].copy(), 8, drop_icc
    return arr, None, 8, drop_icc


def _decode_png_cv(path: Path, icc: bytes | None) -> Decoded:
    """PNG through OpenCV (16-bit, which Pillow reduces to 8; or an 8-bit file whose text chunk Pillow
    refuses), its metadata read by meta.png_metadata with every compressed block bounded."""
    data = path.read_bytes()
    try:
        meta.png_chunks(data)  # walks to IEND: catches truncation before OpenCV guesses
        exif, icc2, xmp = meta.png_metadata(data, str(path))
    except meta.MetadataError as exc:
        raise DecodeError(str(exc)) from None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DecodeError("the PNG data is damaged or truncated")
    grey = data[25] in (0, 4)  # IHDR colour type: grey or grey+alpha
    pixels, alpha = _split_cv(arr, grey)
    return Decoded(pixels, alpha, 16 if arr.dtype == np.uint16 else 8, "PNG", exif, xmp, icc2 or icc)


def _split_cv(arr: np.ndarray, grey: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV gives BGR(A); grey+alpha comes back as BGRA with equal colour channels."""
    if arr.ndim == 2:
        return arr[..., None], None
    alpha = arr[..., 3].copy() if arr.shape[2] == 4 else None
    if grey:
        return np.ascontiguousarray(arr[..., :1]), alpha
    return np.ascontiguousarray(arr[..., 2::-1]), alpha


def decode_tiff(path: Path, max_megapixels: float, max_memory: int | None = None,
                warn_pages: bool = True) -> Decoded:
    """16-bit TIFFs, and TIFF layouts Pillow cannot open (16-bit grey+alpha...), read with tifffile."""
    with open(path, "rb") as f:
        exif = meta.exif_from_tiff_file(f)
        f.seek(0)  # tifffile takes the current position as the start of the TIFF
        try:
            tif = tifffile.TiffFile(f)
        except tifffile.TiffFileError as exc:
            raise DecodeError(f"not a valid TIFF file ({exc})") from None
        with tif:
            page = tif.pages.first
            if warn_pages:
                _warn_pages(path, len(tif.pages))
            check_size(page.imagewidth, page.imagelength, max_megapixels, max_memory)
            icc = _tag_bytes(page, 34675)
            xmp = _tag_bytes(page, 700)
            pixels, alpha, bits = _read_tiff_page(page, path)
    return Decoded(pixels, alpha, bits, "TIFF", exif, xmp, icc)


def _warn_pages(path: Path, pages: int) -> None:
    if pages > 1:
        log.warning("%s has %d pages: only the first is denoised and saved (split the file to keep the others)",
                    path, pages)


def _tag_bytes(page: tifffile.TiffPage, code: int) -> bytes | None:
    tag = page.tags.get(code)
    if tag is None:
        return None
    if tag.valuebytecount > meta.MAX_METADATA_BYTES:  # checked before the value is read
        log.warning("a TIFF metadata block (tag %d) of %d bytes was left out (more than %d MB)", code,
                    tag.valuebytecount, meta.MAX_METADATA_BYTES >> 20)
        return None
    value = tag.value
    if isinstance(value, np.ndarray):
        value = value.tobytes()
    return _as_bytes(value)


def _read_tiff_page(page: tifffile.TiffPage, path: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    bits = page.bitspersample
    if bits not in (8, 16) or page.sampleformat != 1:
        raise DecodeError(f"unsupported TIFF sample format ({bits}-bit, format {int(page.sampleformat)}); "
                          "only 8- and 16-bit integer TIFFs are supported")
    size = path.stat().st_size
    if any(o + n > size for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)):
        raise DecodeError("the TIFF file is truncated")
    photometric = int(page.photometric)
    if photometric not in (0, 1, 2):
        raise DecodeError(f"unsupported TIFF colour model (photometric {photometric})")
    try:
        arr = page.asarray()
    except ValueError as exc:
        if "imagecodecs" not in str(exc):
            raise
        pixels, alpha = _tiff16_via_opencv(path, photometric != 2)
        return pixels, alpha, bits
    if page.planarconfig == 2 and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if photometric == 0:
        arr = np.iinfo(arr.dtype).max - arr  # min-is-white
    colour = 3 if photometric == 2 else 1
    alpha = arr[..., colour].copy() if arr.shape[2] > colour else None
    return np.ascontiguousarray(arr[..., :colour]), alpha, bits


def _tiff16_via_opencv(path: Path, grey: bool) -> tuple[np.ndarray, np.ndarray | None]:
    arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype not in (np.uint8, np.uint16):
        raise DecodeError("cannot decode this TIFF (compression not supported)")
    return _split_cv(arr, grey)


def decode_raw(path: Path, max_megapixels: float, max_memory: int | None = None) -> Decoded:
    import rawpy  # only RAW users pay for the import

    try:
        raw = rawpy.imread(str(path))
    except rawpy.LibRawError as exc:
        raise DecodeError(f"not a camera RAW file that LibRaw can read ({_raw_reason(exc)})") from None
    with raw:
        check_size(raw.sizes.width, raw.sizes.height, max_megapixels, max_memory)
        try:
            rgb = raw.postprocess(output_bps=16, use_camera_wb=True)
        except rawpy.LibRawError as exc:
            raise DecodeError(f"the RAW data is damaged or truncated ({_raw_reason(exc)})") from None
    with open(path, "rb") as f:
        exif = meta.exif_from_tiff_file(f)
    return Decoded(np.ascontiguousarray(rgb), None, 16, "RAW", exif, None, None, oriented=True)


def _raw_reason(exc: Exception) -> str:
    msg = exc.args[0] if exc.args else str(exc)
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def sniff_unsupported(head: bytes) -> str | None:
    """Name formats we recognise but do not support, so the user hears 'GIF is not supported' rather
    than 'not an image'."""
    text = head.lstrip()[:256].lower()
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "SVG"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftyphevc"):  # decodable ones open
        return "HEIF/AVIF variant (libheif cannot decode this one)"
    if head.startswith(b"%PDF"):
        return "PDF"
    return None

