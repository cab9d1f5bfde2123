"""File ▸ Save As: available as soon as a photo is open. It saves what the panel shows: unless the last full
run was made with those settings, the whole photo is denoised with them first (with progress in the panel),
then written on the io lane; the file's XMP records how it was made. The Save dialog proposes the folder the
last photo was saved to."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from denoiser.gui import jobs
from denoiser.gui.workers import Job

if TYPE_CHECKING:
    from denoiser.gui.main_window import MainWindow


class Saver(QObject):
    saved = Signal(object)  # Path

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w, self.state = window, window.state
        self.waiting: tuple[Path, str, int, bool] | None = None  # a save waiting for its full run
        window.denoised.connect(self._denoised)

    def dialog(self) -> None:
        w, photo = self.w, self.state.photo
        if photo is None:
            QMessageBox.information(w, "Save As", "Open a photo first.")
            return
        from denoiser.gui.dialogs.save_dialog import SaveDialog

        p = photo.photo
        dlg = SaveDialog(w, p.source, p.format, p.bit_depth, w.settings.last_output_folder, self.state.save_plan())
        if dlg.exec():
            self.save_to(dlg.path(), dlg.fmt(), dlg.quality.value(), dlg.overwrite)

    def save_to(self, path: Path, fmt: str, quality: int = 92, overwrite: bool = False) -> None:
        w = self.w
        if self.state.photo is None:
            w.report_error("Nothing to save", "Open a photo first.")
            return
        if w.running():
            w.report_error("Save As", "A run is in progress: save when it has finished.")
            return
        if not self.state.result_is_current():
            self.waiting = (Path(path), fmt, quality, overwrite)
            w.denoise()
            return
        job = Job(jobs.save, self.state.result, Path(path), fmt, quality, overwrite, name="save")
        job.signals.result.connect(self._written)
        job.signals.error.connect(lambda exc: w.report_error("Cannot save", exc))
        w.io.start(job)

    def _denoised(self, _result: object) -> None:
        if self.waiting is not None:
            target, self.waiting = self.waiting, None
            self.save_to(*target)

    def _written(self, path: Path) -> None:
        self.w.settings.last_output_folder = str(Path(path).parent)
        self.w.status.message(f"Saved {path}")
        self.saved.emit(Path(path))
