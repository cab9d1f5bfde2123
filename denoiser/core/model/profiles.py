"""Camera profiles: a fine-tuned model remembers the camera (make, model, ISO range) of its photos, and a
photo taken with that camera at a similar ISO is denoised with it automatically.

The profile lives in the model card (training["camera"]), read from the EXIF of the fine-tuning folder.
A photo matches a profile when make and model agree (case and spacing ignored) and its ISO lies within
one stop of the profile's range; of several matches the one whose range is nearest in stops wins.
`--model auto` (the default) picks a matching profile, else the shipped default; naming a model pins it.
"""
from __future__ import annotations

import logging
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from denoiser.core.model.registry import ModelEntry, list_models

log = logging.getLogger(__name__)

AUTO_MODEL = "auto"
# What Pillow raises on a damaged file or EXIF block (its parsers use struct, and SyntaxError for bad headers);
# anything else is a bug and propagates.
EXIF_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, SyntaxError, EOFError, struct.error)
ISO_SLACK_STOPS = 1.0  # a photo up to one stop outside the profile's ISO range still matches
_MAKE, _MODEL, _EXIF_IFD, _ISO, _SENSITIVITY = 0x010F, 0x0110, 0x8769, 0x8827, 0x8833


@dataclass(frozen=True)
class Camera:
    make: str
    model: str
    iso: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Make and model compared case- and space-insensitively; a model that repeats the make
        ("Canon" + "Canon EOS R5") is the same camera as one that does not ("Canon" + "EOS R5")."""
        make = " ".join(self.make.split()).casefold()
        model = " ".join(self.model.split()).casefold()
        return make, model.removeprefix(make).strip()

    def __str__(self) -> str:
        name = self.model if self.model.casefold().startswith(self.make.casefold()) else f"{self.make} {self.model}"
        return f"{name}, ISO {self.iso}" if self.iso else name


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).replace("\0", "").strip() if value is not None else ""


def _iso(value: Any) -> int | None:
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    try:
        iso = int(value)
    except (TypeError, ValueError):
        return None
    return iso if iso > 0 else None


def camera_from_exif(exif: Image.Exif) -> Camera | None:
    make, model = _text(exif.get(_MAKE)), _text(exif.get(_MODEL))
    if not make and not model:
        return None
    sub = exif.get_ifd(_EXIF_IFD)
    return Camera(make, model, _iso(sub.get(_ISO, sub.get(_SENSITIVITY))))


def camera_of(exif_bytes: bytes | None) -> Camera | None:
    """The camera of a Photo's EXIF block (b"Exif\\0\\0" + TIFF), or None when it names none."""
    if not exif_bytes:
        return None
    exif = Image.Exif()
    try:
        exif.load(exif_bytes)
        return camera_from_exif(exif)
    except EXIF_ERRORS:  # a damaged EXIF block only means: no profile
        log.debug("unreadable EXIF block: no camera profile", exc_info=True)
        return None


def camera_of_file(path: Path) -> Camera | None:
    """The camera from a file's EXIF without decoding its pixels; None when unreadable or absent."""
    try:
        with Image.open(path) as im:
            return camera_from_exif(im.getexif())
    except EXIF_ERRORS:  # unreadable file or EXIF: no camera, and the folder's other photos decide
        log.debug("%s: no readable EXIF", path, exc_info=True)
        return None


def folder_profile(files: Iterable[Path]) -> dict[str, Any] | None:
    """The profile of a fine-tuning folder: its most common camera and that camera's ISO range."""
    cams = [c for c in map(camera_of_file, files) if c is not None]
    if not cams:
        return None
    key, _ = Counter(c.key for c in cams).most_common(1)[0]
    same = [c for c in cams if c.key == key]
    isos = [c.iso for c in same if c.iso]
    return {"make": same[0].make, "model": same[0].model, "iso_min": min(isos) if isos else None,
            "iso_max": max(isos) if isos else None, "photos": len(same)}


def profile_of(entry: ModelEntry) -> dict[str, Any] | None:
    camera = entry.card.training.get("camera")
    return camera if isinstance(camera, dict) and (camera.get("make") or camera.get("model")) else None


def describe_profile(profile: dict[str, Any]) -> str:
    cam = str(Camera(str(profile.get("make", "")), str(profile.get("model", ""))))
    lo, hi = profile.get("iso_min"), profile.get("iso_max")
    if lo and hi:
        return f"{cam}, ISO {lo}" if lo == hi else f"{cam}, ISO {lo}-{hi}"
    return cam


def _stops_outside(iso: int, lo: Any, hi: Any) -> float:
    """How many stops `iso` lies outside [lo, hi] (0 inside; 0 when the profile has no range)."""
    if not lo or not hi:
        return 0.0
    if iso < lo:
        return math.log2(lo / iso)
    return math.log2(iso / hi) if iso > hi else 0.0


def match_profile(camera: Camera | None, entries: list[ModelEntry] | None = None) -> ModelEntry | None:
    """The best profile model for this camera, or None."""
    if camera is None:
        return None
    best: tuple[float, str, ModelEntry] | None = None
    for entry in entries if entries is not None else list_models():
        prof = profile_of(entry)
        if prof is None or Camera(str(prof.get("make", "")), str(prof.get("model", ""))).key != camera.key:
            continue
        stops = _stops_outside(camera.iso, prof.get("iso_min"), prof.get("iso_max")) if camera.iso else 0.0
        if stops <= ISO_SLACK_STOPS and (best is None or (stops, entry.name) < best[:2]):
            best = (stops, entry.name, entry)
    return best[2] if best else None


@dataclass(frozen=True)
class Choice:
    model: str | None  # a model name or path; None: the shipped default
    reason: str  # one line for the user: which model and why

    @property
    def profile(self) -> bool:
        return self.reason.startswith("camera profile")


def choose_model(requested: str | None, exif: bytes | None, entries: list[ModelEntry] | None = None) -> Choice:
    """A pinned model as asked; with None or "auto", the camera profile matching the photo, else the default."""
    if requested not in (None, "", AUTO_MODEL):
        return Choice(requested, f"model {requested} (pinned)")
    camera = camera_of(exif)
    entry = match_profile(camera, entries)
    if entry is not None:
        return Choice(entry.name, f"camera profile {entry.name} ({camera})")
    return Choice(None, "default model" + (f" (no profile for {camera})" if camera else ""))


class ModelChooser:
    """Loads each model once and hands out the one a photo should use (core.inference.engine.Denoiser instances)."""

    def __init__(self, requested: str | None, load: Callable[[str | None], Any], first: Any = None) -> None:
        self.requested, self._load = requested, load
        self._cache: dict[str | None, Any] = {}
        if first is not None:
            self._cache[None if requested in (None, "", AUTO_MODEL) else requested] = first

    def for_exif(self, exif: bytes | None) -> tuple[Any, Choice]:
        choice = choose_model(self.requested, exif)
        if choice.model not in self._cache:
            self._cache[choice.model] = self._load(choice.model)
        return self._cache[choice.model], choice
