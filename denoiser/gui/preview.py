"""Debounced preview of the visible region after the strength (or model) changes, before a full run."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRect, QTimer, Slot

from . import jobs
from .workers import Job

if TYPE_CHECKING:
    from .main_window import MainWindow

PREVIEW_DELAY_MS = 350  # debounce: the slider fires on every pixel of movement
PREVIEW_MAX_PIXELS = 1024 * 1024


class Previewer(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.w = window
        self.job: Job | None = None
        self.timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self.timer.timeout.connect(self.start)

    def schedule(self) -> None:
        w = self.w
        if w.photo is not None and w.catalogue is not None and w.controls.model_name():
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        if self.job is not None:
            self.job.cancel()

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
        if w.photo is None or w.running():
            return
        rect = self.rect()
        if rect.isEmpty():
            return
        if self.job is not None:
            self.job.cancel()
        sigma = w.controls.sigma()
        sigma = sigma if sigma is not None else w.photo.sigma
        job = Job(jobs.preview, w.cache, w.photo.photo, rect, w.controls.model_name(), w.controls.device(), sigma,
                  name="preview")
        source = w.photo
        job.signals.result.connect(lambda r, src=source: self._shown(r, src))
        job.signals.error.connect(lambda exc: w.report_error("Preview failed", exc))
        self.job = job
        w.controls.set_message("Previewing the visible region…")
        w.compute.start(job)

    def _shown(self, result: jobs.PreviewResult, source: jobs.LoadedPhoto) -> None:
        w = self.w
        if source is not w.photo:
            return
        w.compare.set_preview(result.patch, result.difference, result.gain)
        w.controls.set_message(f"Preview at σ {result.sigma:.1f} ({result.seconds:.1f} s). "
                               "Denoise to apply it to the whole photo.")
        w.preview_shown.emit(result)
