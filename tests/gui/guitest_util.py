"""Helpers shared by the window tests (a plain module: tests/ is not a package)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

TINY_MODEL = "tiny-test"
EXIF_MAKE = "TestCam"


def make_settings(path: Path):
    from PySide6.QtCore import QSettings

    return QSettings(str(path), QSettings.Format.IniFormat)


def noisy_array(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a checker, plus seeded Gaussian noise (sigma 20/255), as uint8 RGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w, y / h, 0.5 + 0.3 * ((x // 16 + y // 16) % 2)], axis=2) * 200 + 20
    img = img + rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_photo(path: Path, h: int = 96, w: int = 128, seed: int = 0) -> Path:
    """A JPEG (or PNG) with EXIF Make and an sRGB ICC profile, so saving can be checked for metadata."""
    exif = Image.Exif()
    exif[0x010F] = EXIF_MAKE
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.fromarray(noisy_array(h, w, seed))
    kwargs = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    im.save(path, exif=exif.tobytes(), icc_profile=icc, **kwargs)
    return path
