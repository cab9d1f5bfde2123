"""Pixels -> what the screen shows: 8-bit QImages in sRGB, with a mip pyramid for fast zoomed-out painting.

Everything here may run in a worker thread (QImage, unlike QPixmap, is thread-safe), so the GUI thread
never converts a 24 MP float array itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QColorSpace, QImage

DIFF_TARGET_STD = 40 / 255  # amplify removed noise to about this spread: visible, rarely clipped
MAX_DIFF_GAIN = 8.0
MIN_LEVEL_SIDE = 256
COLOR_STRIP_ROWS = 64

if TYPE_CHECKING:  # numpy is imported where used: the window must not wait for it at start-up
    import numpy as np


@dataclass
class DisplayImage:
    """Level 0 is full resolution; level k is downscaled by 2**k (for painting at low zoom)."""

    levels: list[QImage] = field(default_factory=list)
    buffers: list = field(default_factory=list)  # the numpy arrays the levels' pixels live in

    @property
    def size(self) -> QSize:
        return self.levels[0].size() if self.levels else QSize()

    def level_for(self, scale: float) -> int:
        """The coarsest level whose resolution is still >= `scale` (screen pixels per image pixel),
        so painting never downscales by more than 2x and stays cheap at any zoom."""
        k = 0
        while k + 1 < len(self.levels) and scale <= 0.5 ** (k + 1):
            k += 1
        return k


@dataclass
class Patch:
    """A region of the image (image coordinates) replaced by another picture: a viewport preview."""

    image: DisplayImage
    rect: QRect


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float 0..1 HxWxC (C=1 or 3) -> uint8 HxWx3, contiguous."""
    import numpy as np

    arr = np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5
    out = arr.astype(np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out[..., :3])


def _wrap(rgb: np.ndarray) -> QImage:
    """A QImage over the array's memory, without a copy: copying 24 MP inside Qt holds the GIL for
    hundreds of ms and freezes the GUI thread. The caller keeps `rgb` alive (DisplayImage.buffers)."""
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)


def _downscale(rgb: np.ndarray) -> np.ndarray:
    """Halve by 2x2 box averaging (cheap, alias-free enough for a preview level)."""
    import numpy as np

    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    a = rgb[:h, :w].astype(np.uint16)
    s = a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]
    return ((s + 2) // 4).astype(np.uint8)


def color_space_from_icc(icc: bytes | None) -> QColorSpace | None:
    """The photo's colour space, or None when there is no usable RGB profile (then pixels are sRGB)."""
    if not icc:
        return None
    cs = QColorSpace.fromIccProfile(icc)
    if not cs.isValid() or cs == QColorSpace(QColorSpace.NamedColorSpace.SRgb):
        return None
    return cs


def _to_srgb(rgb: np.ndarray, space: QColorSpace) -> None:
    """Convert in place, in strips: each Qt call is short, so the GUI thread keeps getting the GIL."""
    import numpy as np

    srgb = QColorSpace(QColorSpace.NamedColorSpace.SRgb)
    h, w, _ = rgb.shape
    for y in range(0, h, COLOR_STRIP_ROWS):
        strip = rgb[y:y + COLOR_STRIP_ROWS]
        img = _wrap(strip)
        img.setColorSpace(space)
        out = img.convertedToColorSpace(srgb).convertToFormat(QImage.Format.Format_RGB888)
        rows = np.frombuffer(out.constBits(), np.uint8).reshape(out.height(), out.bytesPerLine())
        strip[...] = rows[:, : w * 3].reshape(out.height(), w, 3)


def make_display(pixels: np.ndarray, icc: bytes | None = None) -> DisplayImage:
    """Pixels in the photo's colour space -> sRGB display levels."""
    rgb = to_uint8(pixels)
    space = color_space_from_icc(icc) if pixels.ndim == 3 and pixels.shape[2] == 3 else None
    if space is not None:
        _to_srgb(rgb, space)
    buffers = [rgb]
    while min(rgb.shape[0], rgb.shape[1]) >= 2 * MIN_LEVEL_SIDE:
        rgb = _downscale(rgb)
        buffers.append(rgb)
    return DisplayImage([_wrap(b) for b in buffers], buffers)


def difference_gain(sigma: float | None) -> float:
    """Light noise needs more amplification than heavy noise to be seen; a fixed gain saturates at σ 25."""
    if not sigma or sigma <= 0:
        return MAX_DIFF_GAIN
    return round(max(1.0, min(MAX_DIFF_GAIN, DIFF_TARGET_STD * 255 / sigma)), 1)


def difference(original: np.ndarray, cleaned: np.ndarray, gain: float) -> np.ndarray:
    """What the denoiser removed, amplified around mid-grey: grey = nothing removed, structure = detail lost."""
    import numpy as np

    diff = (original.astype(np.float32) - cleaned.astype(np.float32)) * gain + 0.5
    return np.clip(diff, 0.0, 1.0)


def make_difference_display(original: np.ndarray, cleaned: np.ndarray, gain: float) -> DisplayImage:
    return make_display(difference(original, cleaned, gain))
