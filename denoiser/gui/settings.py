"""Typed access to the preferences in QSettings, each key and default in one place."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from denoiser.core.inference.ensemble import PASSES
from denoiser.core.inference.precision import PRECISIONS
from denoiser.gui.quality import Quality
from denoiser.gui.theme import DEFAULT_THEME, THEMES

ORGANIZATION = "photo-denoiser"
APPLICATION = "Photo Denoiser"
MAX_RECENT = 10
DEFAULT_SIGMA = 15.0


class AppSettings:
    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    def _get(self, key: str, default: Any, kind: type | None = None) -> Any:  # a thin QSettings wrapper
        value = self.q.value(key, default)
        if kind is bool and isinstance(value, str):  # INI files store booleans as text
            return value.lower() == "true"
        try:
            return kind(value) if kind is not None and value is not None else value
        except (TypeError, ValueError):
            return default

    # --- window -------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self.q.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    # --- files --------------------------------------------------------------------------------
    @property
    def last_folder(self) -> str:
        return self._get("files/last_folder", "", str)

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self.q.setValue("files/last_folder", str(folder))

    @property
    def last_output_folder(self) -> str:
        """Where the last photo was saved: the Save dialog proposes it (the photo's own folder until then)."""
        return self._get("files/last_output_folder", "", str)

    @last_output_folder.setter
    def last_output_folder(self, folder: str) -> None:
        self.q.setValue("files/last_output_folder", str(folder))

    def recent_files(self) -> list[str]:
        value = self.q.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, path: Path) -> list[str]:
        entry = str(Path(path).resolve())
        files = [entry] + [f for f in self.recent_files() if f != entry]
        self.q.setValue("files/recent", files[:MAX_RECENT])
        return files[:MAX_RECENT]

    def remove_recent(self, path: str) -> None:
        self.q.setValue("files/recent", [f for f in self.recent_files() if f != path])

    def clear_recent(self) -> None:
        self.q.setValue("files/recent", [])

    # --- processing ---------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self._get("denoise/model", "", str)

    @model.setter
    def model(self, name: str) -> None:
        self.q.setValue("denoise/model", name)

    @property
    def device(self) -> str:
        return self._get("denoise/device", "auto", str)

    @device.setter
    def device(self, name: str) -> None:
        self.q.setValue("denoise/device", name)

    @property
    def strength_auto(self) -> bool:
        return self._get("denoise/strength_auto", True, bool)

    @strength_auto.setter
    def strength_auto(self, auto: bool) -> None:
        self.q.setValue("denoise/strength_auto", bool(auto))

    @property
    def strength_sigma(self) -> float:
        return self._get("denoise/strength_sigma", DEFAULT_SIGMA, float)

    @strength_sigma.setter
    def strength_sigma(self, sigma: float) -> None:
        self.q.setValue("denoise/strength_sigma", float(sigma))

    @property
    def strength_scale(self) -> float:
        """The scale on Auto's noise map (1.0 = Auto as estimated)."""
        value = self._get("denoise/strength_scale", 1.0, float)
        return value if 0.25 <= value <= 3.0 else 1.0

    @strength_scale.setter
    def strength_scale(self, scale: float) -> None:
        self.q.setValue("denoise/strength_scale", float(scale))

    @property
    def passes(self) -> int:
        value = self._get("denoise/passes", 1, int)
        return value if value in PASSES else 1

    @passes.setter
    def passes(self, passes: int) -> None:
        self.q.setValue("denoise/passes", int(passes))

    @property
    def quality(self) -> Quality | None:
        """The Quality box's choice: passes and the network's precision (gui.quality); None while the user has
        chosen none (the panel then follows gui.quality.default_quality)."""
        if not (self.q.contains("denoise/precision") or self.q.contains("denoise/passes")):
            return None
        precision = self._get("denoise/precision", "fp32", str)
        return Quality(self.passes, precision if precision in PRECISIONS else "fp32")

    @quality.setter
    def quality(self, quality: Quality) -> None:
        self.passes = quality.passes
        self.q.setValue("denoise/precision", quality.precision)

    @property
    def view_mode(self) -> str:
        return self._get("view/mode", "side", str)

    @view_mode.setter
    def view_mode(self, mode: str) -> None:
        self.q.setValue("view/mode", mode)

    @property
    def theme(self) -> str:
        """'dark' (the default), 'light' or 'system' (gui/theme.py)."""
        value = self._get("view/theme", DEFAULT_THEME, str)
        return value if value in THEMES else DEFAULT_THEME

    @theme.setter
    def theme(self, theme: str) -> None:
        self.q.setValue("view/theme", theme)

    def follow(self, controls: Any, compare: Any) -> None:
        """Remember the panel's (gui.controls.ControlsPanel) and the view's choices as they change."""
        def strength() -> None:
            self.strength_auto = controls.sigma() is None
            self.strength_sigma = controls.manual_sigma()
            self.strength_scale = controls.strength_scale()

        controls.strength_changed.connect(strength)
        def quality() -> None:  # the user's choices only, not the default following the model
            if not controls.quality_is_default:
                self.quality = controls.quality()

        controls.quality_changed.connect(quality)
        controls.device_changed.connect(lambda device: setattr(self, "device", device))
        compare.mode_changed.connect(lambda mode: mode != "toggle" and setattr(self, "view_mode", mode))

    def sync(self) -> None:
        self.q.sync()
