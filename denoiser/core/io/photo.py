"""Photos in and out: load any supported file into a `Photo`, save it back atomically with its metadata.

A Photo holds upright float32 pixels in 0..1 (the EXIF orientation is applied on load and the tag reset
to 1), the alpha plane untouched in its original dtype, the bit depth to write back, and the EXIF / XMP /
ICC bytes. Loading then saving with nothing changed gives back the same integer pixel values (8 and
16 bit) and the same metadata. Every failure is a PhotoError whose one-line message names the file.

Decoding lives in io.read, encoding in io.write, byte-level metadata in io.meta.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
from PIL import UnidentifiedImageError

from denoiser.core.files import atomic_write
from denoiser.core.files import remove_stale_parts as remove_stale_parts  # where the photo writers' callers look
from denoiser.core.io import meta, write
from denoiser.core.io.formats import (
    FORMAT_EXTENSIONS,
    FORMAT_OF_SUFFIX,
    RAW_EXTENSIONS,
    SAVE_FORMATS,
    SUPPORTED_EXTENSIONS,
    kept_format,
)
from denoiser.core.io.read import (
    PILLOW_FORMATS,
    Decoded,
    DecodeError,
    decode_pillow_file,
    decode_raw,
    decode_tiff,
    open_pillow,
    sniff_unsupported,
)

log = logging.getLogger(__name__)

FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF", "BMP", "RAW")
_SUPPORTED_TEXT = ("supported: JPEG, PNG, TIFF, WebP, HEIC/HEIF, AVIF, BMP and camera RAW (DNG, CR2, CR3, NEF, ARW, "
                   "RAF, ...)")
_ROWS = 256
DEFAULT_MAX_MEGAPIXELS = 250.0
_T = TypeVar("_T")


class PhotoError(ValueError):
    """A photo cannot be loaded or saved; the message is one line naming the file and the reason."""


@dataclass
class Photo:
    pixels: np.ndarray  # float32 HxWxC, C = 1 (grey) or 3 (RGB), 0..1, upright
    alpha: np.ndarray | None = None  # HxW in the file's own dtype (uint8/uint16), never modified
    bit_depth: int = 8
    exif: bytes | None = None  # b"Exif\0\0" + TIFF structure, orientation already 1
    xmp: bytes | None = None
    icc: bytes | None = None
    source: Path | None = None
    format: str = "PNG"

    def __post_init__(self) -> None:
        p = self.pixels
        if not isinstance(p, np.ndarray) or p.ndim != 3 or p.shape[2] not in (1, 3) or p.dtype != np.float32:
            raise ValueError("Photo.pixels must be a float32 array of shape HxWx1 or HxWx3")
        if self.alpha is not None and self.alpha.shape != p.shape[:2]:
            raise ValueError(f"Photo.alpha shape {self.alpha.shape} does not match the pixels {p.shape[:2]}")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"Photo.bit_depth must be 8 or 16, not {self.bit_depth!r}")
        if self.format not in FORMATS:
            raise ValueError(f"Photo.format must be one of {FORMATS}, not {self.format!r}")

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        """The same photo (metadata, alpha, source) with new pixels of the same size."""
        arr = np.asarray(pixels, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[:2] != self.pixels.shape[:2]:
            raise ValueError(f"new pixels {arr.shape[:2]} differ in size from the photo {self.pixels.shape[:2]}")
        return dataclasses.replace(self, pixels=arr)


# --------------------------------------------------------------------------------------------- loading

def load_photo(path: str | os.PathLike[str], max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
               max_memory: int | None = None) -> Photo:
    """Load a photo, upright, with its metadata. Raises PhotoError (file name + reason) on any failure.

    A photo whose header declares more than `max_megapixels`, or a size whose run would need more memory
    than `max_memory` bytes (None: than is free now; core.io.memory), is refused before any pixel is decoded."""
    p = Path(path)

    def read() -> Photo:
        dec = _decode(p, max_megapixels, max_memory)
        assert dec is not None  # only header_only returns None
        return _to_photo(dec, p)

    return _reading(p, read)


def load_pixels(path: str | os.PathLike[str], max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                max_memory: int | None = None) -> tuple[np.ndarray, int]:
    """Upright integer pixels (HxWxC uint8 or uint16, C = 1 or 3) and their bit depth, decoded and checked as
    load_photo does but without the float copy, the alpha plane or the metadata: how training and
    evaluation read photos. Raises PhotoError."""
    p = Path(path)

    def read() -> tuple[np.ndarray, int]:
        dec = _decode(p, max_megapixels, max_memory)
        assert dec is not None  # only header_only returns None
        return apply_orientation(dec.pixels, _orientation(dec)), dec.bit_depth

    return _reading(p, read)


def check_photo_header(path: str | os.PathLike[str], max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                       max_memory: int | None = None) -> None:
    """The refusals load_photo makes before decoding (missing, empty, not a supported image, too many
    pixels, more memory than allowed), from the file's first bytes and header only: a run can refuse a
    photo before it loads a model. Formats read by tifffile or LibRaw are checked when they load."""
    p = Path(path)
    _reading(p, lambda: _decode(p, max_megapixels, max_memory, header_only=True))


def _reading(p: Path, read: Callable[[], _T]) -> _T:
    """Run `read`, turning every failure into a one-line PhotoError that names the file."""
    try:
        return read()
    except DecodeError as exc:
        raise PhotoError(f"{p}: {exc}") from None
    except MemoryError:
        raise PhotoError(f"{p}: not enough memory to load this image") from None
    except PermissionError:
        raise PhotoError(f"{p}: permission denied (cannot read the file)") from None
    except OSError as exc:
        if "truncated" in str(exc):
            raise PhotoError(f"{p}: the file is truncated (incomplete image data)") from None
        raise PhotoError(f"{p}: cannot read the image, the file is damaged or truncated ({_exc_text(exc)})") from None
    except Exception as exc:  # decoders raise many types (SyntaxError, struct.error, zlib.error...)
        log.debug("decoding %s failed", p, exc_info=True)
        raise PhotoError(f"{p}: cannot read the image, the file is damaged ({_exc_text(exc)})") from None


def _exc_text(exc: BaseException) -> str:
    """The exception's message on one line (at most 200 characters), for an error that names the file."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _decode(p: Path, max_megapixels: float, max_memory: int | None, header_only: bool = False) -> Decoded | None:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DecodeError("file not found") from None
    if p.is_dir():
        raise DecodeError("is a folder, not a photo")
    if st.st_size == 0:
        raise DecodeError("the file is empty (0 bytes)")
    with _open_for_read(p) as f:
        head = f.read(512)
    suffix = p.suffix.lower()
    if suffix in RAW_EXTENSIONS:
        return None if header_only else decode_raw(p, max_megapixels, max_memory)
    try:
        im = open_pillow(p, max_megapixels, max_memory)
    except UnidentifiedImageError:
        if head[:4] in (b"II*\x00", b"MM\x00*"):  # a TIFF layout Pillow does not know
            return None if header_only else decode_tiff(p, max_megapixels, max_memory)
        raise DecodeError(_unidentified_reason(head, suffix)) from None
    with im:
        if im.format not in PILLOW_FORMATS:
            raise DecodeError(f"unsupported format {im.format}; {_SUPPORTED_TEXT}")
        return None if header_only else decode_pillow_file(im, p, head)


def _open_for_read(p: Path) -> BinaryIO:
    """Separate so tests can simulate an unreadable file even when running as root."""
    return open(p, "rb")


def _unidentified_reason(head: bytes, suffix: str) -> str:
    known = sniff_unsupported(head)
    if known:
        return f"unsupported format {known}; {_SUPPORTED_TEXT}"
    if suffix and suffix not in SUPPORTED_EXTENSIONS:
        return f"unsupported file type {suffix!r}; {_SUPPORTED_TEXT}"
    return f"not an image (the contents are not a picture in a supported format; {_SUPPORTED_TEXT})"


def _orientation(dec: Decoded) -> int:
    return 1 if dec.oriented else meta.exif_orientation(dec.exif)


def _to_photo(dec: Decoded, p: Path) -> Photo:
    orientation = _orientation(dec)
    pixels = apply_orientation(dec.pixels, orientation)
    alpha = None if dec.alpha is None else apply_orientation(dec.alpha, orientation)
    exif = meta.exif_with_orientation(dec.exif, 1) if dec.exif else None
    return Photo(to_float(pixels, dec.bit_depth), alpha, dec.bit_depth, exif, dec.xmp, dec.icc, p, dec.format)


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright for EXIF orientation 1..8 (works on HxW and HxWxC arrays)."""
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: np.swapaxes(x[::-1, ::-1], 0, 1),
        8: lambda x: np.rot90(x, 1),
    }
    op = ops.get(orientation)
    return a if op is None else np.ascontiguousarray(op(a))


def to_float(arr: np.ndarray, bit_depth: int) -> np.ndarray:
    """uint → float32 0..1 in row blocks, so a 45 MP photo never needs a float64 temporary."""
    scale = np.float32(255.0 if bit_depth == 8 else 65535.0)
    out = np.empty(arr.shape, np.float32)
    for y in range(0, arr.shape[0], _ROWS):
        np.divide(arr[y:y + _ROWS], scale, out=out[y:y + _ROWS])
    return out


# ---------------------------------------------------------------------------------------------- saving

def output_suffix(photo: Photo, fmt: str = "keep") -> str:
    """The file extension save_photo uses for `fmt` (".jpg", ".tif"...); "keep" keeps the source's own
    spelling (".jpeg", ".tiff") when it has one."""
    name = _format_name(photo, fmt, "output")
    if fmt.lower() == "keep" and photo.source is not None:
        src = photo.source.suffix.lower()
        if src in FORMAT_EXTENSIONS[name]:
            return src
    return FORMAT_EXTENSIONS[name][0]


def _format_name(photo: Photo, fmt: str, where: str) -> str:
    f = str(fmt).lower()
    if f not in SAVE_FORMATS:
        raise PhotoError(f"{where}: unknown output format {fmt!r}; choose one of {', '.join(SAVE_FORMATS)}")
    return f.upper() if f != "keep" else kept_format(photo.format)


def resolve_target(photo: Photo, path: str | os.PathLike[str], fmt: str = "keep") -> tuple[str, Path]:
    """(format name, final path) for a save. A known image suffix on `path` picks the format under
    "keep" and must agree with an explicit `fmt`; a path without one gets output_suffix appended."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in RAW_EXTENSIONS:
        raise PhotoError(f"{p}: cannot save in a camera RAW format ({suffix}); choose jpeg, png, tiff or webp")
    by_suffix = FORMAT_OF_SUFFIX.get(suffix)
    name = _format_name(photo, fmt, str(p))
    if by_suffix is not None:
        if str(fmt).lower() != "keep" and by_suffix != name:
            raise PhotoError(f"{p}: the file name ends in {suffix} but the requested format is {fmt}")
        return by_suffix, p
    return name, p.with_name(p.name + output_suffix(photo, fmt))


def save_photo(photo: Photo, path: str | os.PathLike[str], fmt: str = "keep", quality: int = 95,
               overwrite: bool = False) -> Path:
    """Write the photo atomically (temp file in the target folder, then rename) with its EXIF (orientation
    1), ICC and XMP. Never touches the source file; an existing file is replaced only with overwrite=True.
    Returns the path written (with the suffix added if `path` had none)."""
    name, target = resolve_target(photo, path, fmt)
    if not 1 <= int(quality) <= 100:
        raise PhotoError(f"{target}: quality must be between 1 and 100, not {quality}")
    check_target(photo, target, overwrite)
    try:
        atomic_write(target, _writer(photo, name, int(quality)), overwrite)
    except PhotoError:
        raise
    except FileExistsError:  # appeared while this photo was encoded
        raise PhotoError(f"{target}: already exists (not overwriting it)") from None
    except MemoryError:
        raise PhotoError(f"{target}: not enough memory to encode the image") from None
    except PermissionError:
        raise PhotoError(f"{target}: permission denied (cannot write in {target.parent})") from None
    except OSError as exc:
        raise PhotoError(f"{target}: cannot write the file ({_exc_text(exc)})") from None
    except Exception as exc:
        log.debug("encoding %s failed", target, exc_info=True)
        raise PhotoError(f"{target}: cannot encode the image as {name} ({_exc_text(exc)})") from None
    return target


def check_target(photo: Photo, target: Path, overwrite: bool) -> None:
    """Raise PhotoError if save_photo would refuse `target` (a resolved path): call it before a long
    denoise, so a run does not fail only at the end."""
    if photo.source is not None and _same_file(photo.source, target):
        raise PhotoError(f"{target}: refusing to overwrite the original photo; choose another output name")
    if not target.parent.is_dir():
        raise PhotoError(f"{target}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise PhotoError(f"{target}: is a folder")
    if target.exists() and not overwrite:
        raise PhotoError(f"{target}: already exists (not overwriting it)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _writer(photo: Photo, name: str, quality: int) -> Callable[[BinaryIO], None]:
    """Convert pixels and metadata for the target format; return the function that writes the bytes."""
    bits = photo.bit_depth if name in ("PNG", "TIFF") else 8
    px = write.to_uint(photo.pixels, bits)
    alpha = write.alpha_as(photo.alpha, bits)
    exif = meta.exif_with_orientation(photo.exif, 1) if photo.exif else None
    channels_out = 3 if name in ("WEBP", "HEIF", "AVIF") else px.shape[2]
    icc = _icc_for(photo.icc, channels_out)
    if alpha is not None and name in ("JPEG", "BMP"):
        log.warning("%s has no dependable transparency: the alpha channel is not saved", name)
        alpha = None
    if name == "JPEG":
        return lambda f: write.write_jpeg(f, px, exif, icc, photo.xmp, quality)
    if name == "WEBP":
        return lambda f: write.write_webp(f, px, alpha, exif, icc, photo.xmp, quality)
    if name in ("HEIF", "AVIF"):
        return lambda f: write.write_heif(f, px, alpha, exif, icc, photo.xmp, quality, name)
    if name == "BMP":
        return lambda f: write.write_bmp(f, px)
    if name == "PNG":
        return lambda f: write.write_png(f, px, alpha, exif, icc, photo.xmp)
    return lambda f: write.write_tiff(f, px, alpha, exif, icc, photo.xmp)


def _icc_for(icc: bytes | None, channels: int) -> bytes | None:
    """An ICC profile is only valid for pixels of its own colour space (a GRAY profile on RGB is not)."""
    space = meta.icc_colour_space(icc)
    if not icc or (channels == 3 and space == "RGB") or (channels == 1 and space == "GRAY"):
        return icc or None
    log.info("ICC profile for %s data dropped: the output has %d channel(s)", space or "unknown", channels)
    return None
