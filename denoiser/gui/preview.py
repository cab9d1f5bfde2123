"""Debounced preview of the visible region after the strength (or model) changes, before a full run.

Progressive only where it is needed: when the whole region is predicted (from the speed of the last preview
on this machine) to take longer than PROGRESSIVE_ABOVE_S, the centre quarter is shown first (about 4x sooner),
then the whole region replaces it; otherwise one pass, which shows the whole region soonest (the centre pass
costs ~30 % extra). Both run on the compute lane, in order.

A preview that cannot start yet (a full run holds the compute lane, or Auto's strength is still being
estimated) is kept pending and starts as soon as that is over, so the view always catches up with the controls.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRect, QTimer, Slot

from denoiser.gui import jobs
from denoiser.gui.workers import Job

if TYPE_CHECKING:
    from denoiser.gui.main_window import MainWindow

PREVIEW_DELAY_MS = 150  # debounce: the slider fires on every pixel of movement
PREVIEW_MAX_PIXELS = 1024 * 1024
PROGRESSIVE_MIN_PIXELS = 256 * 256  # below this the whole region is quick enough on its own
PROGRESSIVE_ABOVE_S = 2.0  # predicted seconds for the whole region above which the centre comes first


class Previewer(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.w = window
        self.jobs: list[Job] = []
        self.pending = False  # asked for while it could not start; the window schedules it again
        self.seconds_per_mp: float | None = None  # measured by the last preview; None: not yet known
        self.timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self.timer.timeout.connect(self.start)

    def schedule(self) -> None:
        w = self.w
        if w.photo is not None and w.catalogue is not None and w.controls.model_name():
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.pending = False
        for job in self.jobs:
            job.cancel()
        self.jobs = []

    def rect(self) -> QRect:
        """The visible region, shrunk about its centre to at most PREVIEW_MAX_PIXELS."""
        r = self.w.compare.visible_image_rect()
        area = r.width() * r.height()
        if area > PREVIEW_MAX_PIXELS:
            k = math.sqrt(PREVIEW_MAX_PIXELS / area)
            w, h = max(1, int(r.width() * k)), max(1, int(r.height() * k))
            r = QRect(r.center().x() - w // 2, r.center().y() - h // 2, w, h)
        return r

    @Slot()
    def start(self) -> None:
        w = self.w
        if w.photo is None:
            return
        sigma = w.controls.sigma()
        sigma = sigma if sigma is not None else w.strength_shown()
        if w.running() or (sigma is None and not w.photo.estimated):
            self.pending = True  # after the run / once Auto's estimate is in
            return
        rect = self.rect()
        if rect.isEmpty() or sigma is None:  # None: the photo is too small for Auto to tell
            return
        self.stop()
        parts = [rect]
        if self.progressive(rect):
            cw, ch = rect.width() // 2, rect.height() // 2
            parts.insert(0, QRect(rect.center().x() - cw // 2, rect.center().y() - ch // 2, cw, ch))
        for part in parts:
            job = Job(jobs.preview, w.cache, w.photo.photo, part, w.controls.model_name(), w.controls.device(),
                      sigma, w.controls.passes(), name="preview", **w.controls.tone_kwargs())
            final = part is parts[-1]
            job.signals.result.connect(lambda r, j=job, f=final: self._shown(r, j, f))
            job.signals.error.connect(self._failed)
            self.jobs.append(job)
            w.compute.start(job)
        w.controls.set_message("Previewing the visible region…")

    def progressive(self, rect: QRect) -> bool:
        """Whether to show the centre quarter first: the region is large and (as far as known) slow to do."""
        pixels = rect.width() * rect.height()
        if pixels < PROGRESSIVE_MIN_PIXELS:
            return False
        return self.seconds_per_mp is None or self.seconds_per_mp * pixels / 1e6 > PROGRESSIVE_ABOVE_S

    def _failed(self, exc: BaseException) -> None:
        self.stop()
        self.w.controls.set_message("")
        self.w.report_error("Preview failed", exc)

    def _shown(self, result: jobs.PreviewResult, job: Job, final: bool) -> None:
        w = self.w
        if job not in self.jobs:
            return  # superseded by a newer preview, a new photo or a full run
        if final:  # the whole region's speed predicts the next one's (the centre pass has more margin per pixel)
            r = result.patch.rect
            self.seconds_per_mp = result.seconds / max(r.width() * r.height() / 1e6, 1e-6)
        w.compare.set_preview(result.patch, result.difference, result.gain)
        w.compare.set_preview_detail_map(result.detail_map)
        if not final:
            w.controls.set_message(f"Preview of the centre at σ {result.sigma:.1f}; refining the rest…")
            w.preview_partial.emit(result)
            return
        w.controls.set_message(f"Preview at σ {result.sigma:.1f} ({result.seconds:.1f} s). "
                               "Denoise to apply it to the whole photo.")
        w.preview_shown.emit(result)
