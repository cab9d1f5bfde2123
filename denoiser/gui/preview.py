"""Debounced preview of the visible region after the settings change, before a full run.

Progressive only where it is needed: when the whole region is predicted (from the speed of the last preview
on this machine) to take longer than PROGRESSIVE_ABOVE_S, the centre quarter is shown first (about 4x sooner),
then the whole region replaces it; otherwise one pass, which shows the whole region soonest (the centre pass
costs ~30 % extra). Both run on the compute lane, in order.

A preview that cannot start yet (a full run holds the compute lane, or Auto is still measuring the noise) is
kept pending and starts as soon as that is over, so the view always catches up with the panel. Every preview
remembers the settings it was made with: one that no longer matches the panel when it arrives is dropped and
made again, and when Auto's measurement lands (or is started again) a preview on screen made with another
level leaves the view and is made again, so no preview ever stands for settings the panel does not show.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QObject, QRect, QTimer, Signal, Slot

from denoiser.gui import jobs
from denoiser.gui.compare_view import CompareView
from denoiser.gui.window_state import RunSettings, WindowState, describe_level
from denoiser.gui.workers import Job, JobRunner

PREVIEW_DELAY_MS = 150  # debounce: the slider fires on every pixel of movement
PREVIEW_MAX_PIXELS = 1024 * 1024
PROGRESSIVE_MIN_PIXELS = 256 * 256  # below this the whole region is quick enough on its own
PROGRESSIVE_ABOVE_S = 2.0  # predicted seconds for the whole region above which the centre comes first


class Previewer(QObject):
    partial = Signal(object)  # jobs.PreviewResult of the centre, shown first
    shown = Signal(object)  # jobs.PreviewResult of the whole visible region
    failed = Signal(object)  # the exception

    def __init__(self, state: WindowState, compare: CompareView, lane: JobRunner, cache: jobs.DenoiserCache,
                 busy: Callable[[], bool], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.compare, self.lane, self.cache, self.busy = state, compare, lane, cache, busy
        self.jobs: list[Job] = []
        self.pending = False  # asked for while it could not start; starts when that is over
        self.on_screen: RunSettings | None = None  # the settings of the preview the view shows
        self.seconds_per_mp: float | None = None  # measured by the last preview; None: not yet known
        self.timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self.timer.timeout.connect(self.start)
        state.photo_changed.connect(self.stop)
        state.level_changed.connect(self._level_changed)

    def schedule(self) -> None:
        s = self.state
        if s.photo is not None and s.catalogue is not None and s.controls.model_name():
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.pending = False
        for job in self.jobs:
            job.cancel()
        self.jobs = []

    @Slot()
    def _level_changed(self) -> None:
        """Auto's measurement landed or restarts: a preview made with another level goes, and is made again."""
        showing = self.on_screen if self.compare.preview is not None else None  # a full result clears it
        if showing is not None and not showing.same_as(self.state.shown_settings()):
            self.compare.set_preview(None)
            self.compare.set_preview_detail_map(None)
            self.on_screen = None
            self.pending = True
        if self.pending or self.jobs:
            self.schedule()

    def rect(self) -> QRect:
        """The visible region, shrunk about its centre to at most PREVIEW_MAX_PIXELS."""
        r = self.compare.visible_image_rect()
        area = r.width() * r.height()
        if area > PREVIEW_MAX_PIXELS:
            k = math.sqrt(PREVIEW_MAX_PIXELS / area)
            w, h = max(1, int(r.width() * k)), max(1, int(r.height() * k))
            r = QRect(r.center().x() - w // 2, r.center().y() - h // 2, w, h)
        return r

    @Slot()
    def start(self) -> None:
        s = self.state
        if s.photo is None:
            return
        settings = s.shown_settings()
        if self.busy() or (settings is None and not s.photo.estimated):
            self.pending = True  # after the run / once Auto's measurement is in
            return
        rect = self.rect()
        if rect.isEmpty() or settings is None:  # None: the photo is too small for Auto to tell
            return
        self.stop()
        parts = [rect]
        if self.progressive(rect):
            cw, ch = rect.width() // 2, rect.height() // 2
            parts.insert(0, QRect(rect.center().x() - cw // 2, rect.center().y() - ch // 2, cw, ch))
        for part in parts:
            controls = {} if settings.controls.plain else {"controls": settings.controls}
            job = Job(jobs.preview, self.cache, s.photo.photo, part, settings.model, s.controls.device(),
                      settings.level, settings.passes, name="preview", precision=settings.precision, **controls)
            final = part is parts[-1]
            job.signals.result.connect(lambda r, j=job, f=final, st=settings: self._arrived(r, j, f, st))
            job.signals.error.connect(self._failed)
            self.jobs.append(job)
            self.lane.start(job)
        s.controls.set_message("Previewing the visible region…")

    def progressive(self, rect: QRect) -> bool:
        """Whether to show the centre quarter first: the region is large and (as far as known) slow to do."""
        pixels = rect.width() * rect.height()
        if pixels < PROGRESSIVE_MIN_PIXELS:
            return False
        return self.seconds_per_mp is None or self.seconds_per_mp * pixels / 1e6 > PROGRESSIVE_ABOVE_S

    def _failed(self, exc: BaseException) -> None:
        self.stop()
        self.state.controls.set_message("")
        self.failed.emit(exc)

    def _arrived(self, result: jobs.PreviewResult, job: Job, final: bool, settings: RunSettings) -> None:
        if job not in self.jobs:
            return  # superseded by a newer preview, a new photo or a full run
        if not settings.same_as(self.state.shown_settings()):  # the panel moved on while it ran
            self.stop()
            self.schedule()
            return
        if final:  # the whole region's speed predicts the next one's (the centre pass has more margin per pixel)
            r = result.patch.rect
            self.seconds_per_mp = result.seconds / max(r.width() * r.height() / 1e6, 1e-6)
        self.compare.set_preview(result.patch, result.difference, result.gain)
        self.compare.set_preview_detail_map(result.detail_map, result.detail_score)
        self.on_screen = settings
        what = describe_level(settings.level) + (", INT8" if result.precision == "int8" else "")
        if not final:
            self.state.controls.set_message(f"Preview of the centre: {what}; refining the rest…")
            self.partial.emit(result)
            return
        self.state.controls.set_message(f"Preview: {what} ({result.seconds:.1f} s). "
                                        "Denoise or Save to apply it to the whole photo.")
        self.shown.emit(result)
