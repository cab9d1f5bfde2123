"""Random training crops streamed from folders of photos, with a bounded in-memory pool."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from denoiser.core.io.formats import FORMAT_OF_SUFFIX, IMAGE_EXTENSIONS
from denoiser.core.io.photo import DEFAULT_MAX_MEGAPIXELS, load_pixels
from denoiser.core.io.read import NO_MEMORY_LIMIT

log = logging.getLogger(__name__)

IMAGE_EXTS = IMAGE_EXTENSIONS  # training and evaluation read the decodable formats (not RAW)
# Training decodes one photo at a time and keeps it downscaled or cropped: the app's megapixel limit bounds it,
# not the memory estimate of a whole denoise run.
TRAIN_MAX_MEGAPIXELS = DEFAULT_MAX_MEGAPIXELS


def list_images(folders: list[Path], recursive: bool = True) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder")
        it = folder.rglob("*") if recursive else folder.glob("*")
        files += [p for p in it if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    return sorted(files)


def split_validation(files: list[Path], fraction: float, max_count: int) -> tuple[list[Path], list[Path]]:
    """Deterministic split by a hash of the file name, so it never changes between runs."""
    if len(files) < 2 or fraction <= 0:
        return list(files), []
    ranked = sorted(files, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
    n_val = max(1, min(max_count, int(round(len(files) * fraction))))
    val = set(ranked[:n_val])
    return [f for f in files if f not in val], [f for f in files if f in val]


def centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    """The centre of img (H,W,...) at most side x side (contiguous); img itself when it already fits."""
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return img
    ch, cw = min(h, side), min(w, side)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


# IJG's base luminance quantisation table (JPEG standard, Annex K); only its sum is used.
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                      14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                      18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


def check_native_quality(quality: int) -> int:
    """The JPEG quality at and above which training keeps a JPEG's native scale; 0 halves every JPEG."""
    if not 0 <= quality <= 100:
        raise ValueError(f"jpeg_native_quality must be 0..100 (0: halve every JPEG), got {quality}")
    return quality


def jpeg_quality(path: Path | BinaryIO) -> int | None:
    """The IJG quality (1-100) a JPEG's luminance table corresponds to; None if not a readable JPEG.

    Reads the header only (of a file, or of bytes already read). Tables that are not scaled IJG tables
    give the nearest equivalent.
    """
    from PIL import Image  # header only: Pillow parses the quantisation tables without decoding

    try:
        with Image.open(path) as im:
            tables = getattr(im, "quantization", None) or {}
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if 0 not in tables:
        return None
    scale = 100.0 * float(np.sum(tables[0])) / float(_IJG_LUMA.sum())  # IJG: table = base * scale / 100
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


def load_rgb8(path: Path, jpeg_downscale: int = 2, max_side: int = 2048, native_quality: int = 0) -> np.ndarray:
    """HxWx3 uint8 RGB for training. JPEGs are area-downscaled to hide their block artefacts,
    except those of quality >= native_quality (when it is > 0): their artefacts lie far below the
    training noise, and keeping their native scale keeps the photo's own texture statistics."""
    pixels, bits = load_pixels(path, TRAIN_MAX_MEGAPIXELS, NO_MEMORY_LIMIT)  # PhotoError (a ValueError)
    img = as_rgb8(pixels, bits)
    scale = 1
    if FORMAT_OF_SUFFIX.get(Path(path).suffix.lower()) == "JPEG":
        quality = jpeg_quality(path) if native_quality > 0 else None
        scale = 1 if quality is not None and quality >= native_quality else jpeg_downscale
    h, w = img.shape[:2]
    scale = max(scale, int(np.ceil(max(h, w) / max_side)))
    if scale > 1 and min(h, w) // scale >= 64:
        img = cv2.resize(img, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def as_rgb8(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """HxWx3 uint8 of load_pixels' output: 16-bit values rounded to 8, grey repeated to three channels."""
    if bit_depth == 16:
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


class PatchPool:
    """Holds up to `size` decoded images; swaps one for a fresh random file every `refresh` draws.

    Memory stays bounded whatever the folder size; skipped (unreadable) files are remembered.
    """

    def __init__(self, files: list[Path], size: int, rng: np.random.Generator, refresh: int = 4,
                 jpeg_downscale: int = 2, min_side: int = 64, native_quality: int = 0) -> None:
        if not files:
            raise ValueError("no images to train on")
        self.files = list(files)
        self.size = min(size, len(files))
        self.refresh = refresh
        self.jpeg_downscale = jpeg_downscale
        self.native_quality = native_quality
        self.min_side = min_side
        self.skipped: dict[str, str] = {}
        self.rng = rng
        self.indices: list[int] = []
        self.images: list[np.ndarray] = []
        self.draws = 0

    def fill(self, indices: list[int] | None = None) -> None:
        """Load the pool (given indices reproduce a saved pool exactly on resume)."""
        self.indices, self.images = [], []
        order = indices if indices is not None else list(self.rng.permutation(len(self.files)))
        for i in order:
            if len(self.images) >= self.size:
                break
            img = self._load(int(i))
            if img is not None:
                self.indices.append(int(i))
                self.images.append(img)
        if not self.images:
            raise ValueError(f"none of the {len(self.files)} images could be read "
                             f"({'; '.join(list(self.skipped.values())[:3])})")

    def _load(self, i: int) -> np.ndarray | None:
        path = self.files[i]
        if str(path) in self.skipped:
            return None
        try:
            img = load_rgb8(path, self.jpeg_downscale, native_quality=self.native_quality)
        except (ValueError, OSError, cv2.error) as exc:
            self.skipped[str(path)] = str(exc)
            log.warning("skipping %s", exc)
            return None
        if min(img.shape[:2]) < self.min_side:
            self.skipped[str(path)] = f"{path}: smaller than {self.min_side} px"
            log.warning("skipping %s: too small", path)
            return None
        return img

    def _maybe_refresh(self) -> None:
        self.draws += 1
        if self.size >= len(self.files) or self.draws % self.refresh:
            return
        i = int(self.rng.integers(len(self.files)))
        if i in self.indices:
            return
        img = self._load(i)
        if img is not None:
            slot = int(self.rng.integers(len(self.images)))
            self.indices[slot], self.images[slot] = i, img

    def batch(self, n: int, patch: int) -> np.ndarray:
        """(n, patch, patch, 3) float32 in [0,1] with random flips and 90-degree rotations."""
        self._maybe_refresh()
        out = np.empty((n, patch, patch, 3), np.float32)
        for k in range(n):
            img = self.images[int(self.rng.integers(len(self.images)))]
            h, w = img.shape[:2]
            ph, pw = min(patch, h), min(patch, w)
            y = int(self.rng.integers(h - ph + 1))
            x = int(self.rng.integers(w - pw + 1))
            crop = img[y:y + ph, x:x + pw]
            if (ph, pw) != (patch, patch):
                crop = cv2.resize(crop, (patch, patch), interpolation=cv2.INTER_CUBIC)
            crop = np.rot90(crop, int(self.rng.integers(4)))
            if self.rng.integers(2):
                crop = crop[:, ::-1]
            out[k] = crop.astype(np.float32) / 255.0
        return out
