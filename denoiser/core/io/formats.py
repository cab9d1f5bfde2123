"""The one source of truth for photo formats, file extensions and output naming (light: no heavy imports,
so the command line can check names before numpy, Pillow or torch load)."""
from __future__ import annotations

FORMAT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
    "BMP": (".bmp",),
    "HEIF": (".heic", ".heif", ".hif"),  # phones' photos (HEVC in HEIF); read and written with pillow-heif
    "AVIF": (".avif",),  # AV1 in HEIF; Pillow's own codec
}
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf",
                            ".orf", ".rw2", ".rwl", ".pef", ".srw", ".3fr", ".iiq", ".erf", ".kdc",
                            ".mrw", ".x3f"})
FORMAT_OF_SUFFIX = {e: name for name, exts in FORMAT_EXTENSIONS.items() for e in exts}  # ".jpe" -> "JPEG"
IMAGE_EXTENSIONS = frozenset(e for exts in FORMAT_EXTENSIONS.values() for e in exts)  # decoded without rawpy
SUPPORTED_EXTENSIONS = frozenset(IMAGE_EXTENSIONS | RAW_EXTENSIONS)
SAVE_FORMATS = ("keep", "jpeg", "png", "tiff", "webp", "heif", "avif", "dng")  # "keep": the input's own format
SAVE_SUFFIX = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "heif": ".heic", "avif": ".avif",
               "dng": ".dng"}
# A DNG is written from a camera raw itself (core.inference.raw_path), never from developed pixels; a RAW kept
# as it is becomes one.
DNG = "DNG"
DNG_EXTENSIONS = (".dng",)
SUFFIX_SAVE_FORMAT = {e: fmt.lower() for fmt, exts in FORMAT_EXTENSIONS.items() for e in exts
                      if fmt.lower() in SAVE_SUFFIX}
DENOISED_SUFFIX = "-denoised"  # photo.jpg -> photo-denoised.jpg
DEFAULT_TEMPLATE = "{stem}" + DENOISED_SUFFIX + ".{ext}"  # batch output names


def kept_format(source_format: str) -> str:
    """The format "keep" writes for a photo read as `source_format` ("JPEG", "BMP", "RAW"...): its own, except
    RAW, which cannot be written and goes to its lossless 16-bit home, TIFF."""
    return "TIFF" if source_format == "RAW" else source_format


def kept_format_of_suffix(suffix: str) -> str:
    """The format "keep" writes for a file with this suffix, known before decoding (a camera raw: DNG, its
    denoised raw; unknown: TIFF)."""
    suffix = suffix.lower()
    return DNG if suffix in RAW_EXTENSIONS else kept_format(FORMAT_OF_SUFFIX.get(suffix, "TIFF"))


def planned_format(source_suffix: str, fmt: str) -> str:
    """The format a run writes for an input with this suffix under `fmt` ("keep", "jpeg", ... "dng")."""
    return kept_format_of_suffix(source_suffix) if fmt.lower() == "keep" else fmt.upper()


def format_extensions(name: str) -> tuple[str, ...]:
    """The file extensions of an output format ("JPEG", ..., "DNG"), the usual one first."""
    return DNG_EXTENSIONS if name == DNG else FORMAT_EXTENSIONS[name]


def dng_problem(source_suffix: str, fmt: str) -> str:
    """Why this input cannot be written as `fmt` when that is DNG ("" when it can): a DNG holds a raw."""
    if fmt.lower() == "dng" and source_suffix.lower() not in RAW_EXTENSIONS:
        return ("is not a camera RAW file; --format dng writes denoised raw files only "
                "(choose jpeg, png, tiff or webp)")
    return ""
