"""The window's state in one small object: the model catalogue, the open photo (with Auto's measurement of it)
and the last full result, plus what the panel's settings mean for that photo (RunSettings). The actions, the
dialog launcher, the previewer and the saver observe it through its signals and read it; none of them reads
the window's attributes, and the window only feeds it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from denoiser.core.noise.level import NoiseLevel
from denoiser.gui.quality import Quality, int8_unavailable

if TYPE_CHECKING:
    from denoiser.gui import jobs
    from denoiser.gui.controls import ControlsPanel


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a run's pixels: compared between the panel, a preview and a full result."""

    model: str
    level: NoiseLevel  # Auto (its measured map × the panel's scale) or a fixed σ
    passes: int
    controls: Any  # core.inference.controls.Controls
    precision: str = "fp32"  # the network's arithmetic: "fp32" | "int8" (Quality Fast: the model's INT8 build)

    def key(self) -> tuple:
        return self.model, tuple(sorted(self.level.to_record().items())), self.passes, self.controls, self.precision

    def quality(self) -> Quality:
        return Quality(self.passes, self.precision)

    def same_as(self, other: RunSettings | None) -> bool:
        return other is not None and self.key() == other.key()


def describe_level(level: NoiseLevel) -> str:
    """The level in a photographer's words: 'Auto × 1.10 (noise level 13.3)' or 'noise level 15.0 (fixed)'."""
    if level.is_auto:
        return f"Auto × {level.scale:.2f} (noise level {level.sigma:.1f})"
    return f"noise level {level.sigma:.1f} (fixed)"


class WindowState(QObject):
    catalogue_changed = Signal()
    photo_changed = Signal()  # a photo opened (the previous result and preview no longer apply)
    level_changed = Signal()  # Auto's measurement of the open photo landed (or was started again)
    result_changed = Signal()

    def __init__(self, controls: ControlsPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controls = controls
        self.catalogue: jobs.Catalogue | None = None
        self.photo: jobs.LoadedPhoto | None = None
        self.result: jobs.DenoiseResult | None = None
        self.result_settings: RunSettings | None = None  # what the window asked for when it ran `result`
        self._estimate_token = 0

    # --- feeding (the window) -----------------------------------------------------------------
    def set_catalogue(self, catalogue: jobs.Catalogue) -> None:
        self.catalogue = catalogue
        self.catalogue_changed.emit()

    def set_photo(self, photo: jobs.LoadedPhoto) -> None:
        self.photo, self.result, self.result_settings = photo, None, None
        self.photo_changed.emit()

    def set_result(self, result: jobs.DenoiseResult, settings: RunSettings) -> None:
        self.result, self.result_settings = result, settings
        self.result_changed.emit()

    def measuring(self) -> int:
        """Auto's measurement of the open photo starts (again): earlier measurements no longer count."""
        self._estimate_token += 1
        if self.photo is not None:
            self.photo.sigma, self.photo.estimated = None, False
        self.level_changed.emit()
        return self._estimate_token

    def measured(self, photo: jobs.LoadedPhoto, token: int, level: NoiseLevel | None) -> bool:
        """A measurement landed; False (ignored) when it is for another photo or an older request."""
        if photo is not self.photo or token != self._estimate_token:
            return False
        photo.sigma, photo.estimated = level, True
        self.level_changed.emit()
        return True

    # --- reading ------------------------------------------------------------------------------
    def level_shown(self) -> NoiseLevel | None:
        """The level the panel stands for: a fixed σ, or Auto's measurement with the panel's scale applied (its
        map kept); None while Auto's measurement is pending or impossible (a photo too small to tell)."""
        fixed = self.controls.sigma()
        if fixed is not None:
            return NoiseLevel.fixed(fixed)
        auto = self.photo.sigma if self.photo is not None else None
        return None if auto is None else auto.scaled(self.controls.strength_scale())

    def shown_settings(self) -> RunSettings | None:
        """The settings on the panel for the open photo; None while they cannot be known yet."""
        model, level = self.controls.model_name(), self.level_shown()
        if level is None or not model:
            return None
        quality = self.controls.quality()
        return RunSettings(model, level, quality.passes, self.controls.tone_controls(), quality.precision)

    def fast_unavailable(self) -> str | None:
        """Why Quality Fast (the model's INT8 build) cannot run with the panel's model and device; None: it can."""
        return int8_unavailable(self.controls.model_name(), self.controls.device(), self.catalogue)

    def result_is_current(self) -> bool:
        """The last full run was made with the settings on the panel."""
        return self.result is not None and self.shown_settings() is not None and \
            self.shown_settings().same_as(self.result_settings)

    def save_plan(self) -> str:
        """One line for the Save dialog: what will be written, in the panel's words."""
        settings = self.shown_settings()
        if settings is None and self.result_settings is not None:
            settings = self.result_settings
        if settings is None:
            return "The whole photo is denoised once Auto has measured its noise, then saved."
        what = f"{describe_level(settings.level)}, model {settings.model}, {settings.quality().words()}"
        if self.result_is_current():
            return f"Saves the denoised photo: {what}."
        return f"The whole photo is denoised first with the settings on screen ({what}), then saved."
