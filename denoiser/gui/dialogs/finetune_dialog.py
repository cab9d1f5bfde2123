"""Model ▸ Fine-tune…: teach the selected model a folder of the user's own photos.

Collects folder, mode (with the suggestion from the folder's noise level), time budget and name; the
work is core.finetune.finetune on a QThread. Shows a live loss curve (pyqtgraph) and a fixed preview
crop before/after every few steps; Cancel leaves a checkpoint that Resume continues.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from denoiser.gui.workers import SignalProgress as _SignalProgress

PREVIEW_SIZE = 192


class FinetuneWorker(QObject):
    """Calls core.finetune on its thread; every outcome leaves through exactly one signal."""

    progress = Signal(float, str)
    step = Signal(object)  # core.finetune.StepInfo
    done = Signal(object)  # FinetuneResult
    stopped = Signal()
    failed = Signal(str)

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.token = _SignalProgress(self.progress)

    def cancel(self) -> None:
        self.token.cancel()

    @Slot()
    def run(self) -> None:
        from denoiser.core.finetune import finetune
        from denoiser.core.progress import Cancelled

        try:
            result = finetune(progress=self.token, on_step=self.step.emit, **self.kwargs)
        except Cancelled:
            self.stopped.emit()
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, which stays usable
            self.failed.emit(str(exc) or exc.__class__.__name__)
        else:
            self.done.emit(result)


class SuggestWorker(QObject):
    """Estimates the folder's noise level off the GUI thread (reads a few photos)."""

    done = Signal(str, object)  # folder, Suggestion or error text

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    @Slot()
    def run(self) -> None:
        from denoiser.core.finetune import suggest_mode

        try:
            self.done.emit(self.folder, suggest_mode(Path(self.folder)))
        except Exception as exc:  # noqa: BLE001
            self.done.emit(self.folder, str(exc) or exc.__class__.__name__)


def to_pixmap(img: np.ndarray, size: int = PREVIEW_SIZE) -> QPixmap:
    arr = np.ascontiguousarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    h, w = arr.shape[:2]
    qimg = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation)


class FinetuneDialog(QDialog):
    model_created = Signal(str)

    def __init__(self, parent: QWidget | None, base_model: str, device: str) -> None:
        super().__init__(parent)
        self.base_model, self.device = base_model or None, device or "auto"
        self.setWindowTitle("Fine-tune a model")
        self.resize(760, 620)
        self._thread: QThread | None = None
        self._worker: QObject | None = None
        self._threads: list[tuple[QThread, QObject]] = []
        self.steps_x: list[float] = []
        self.losses: list[float] = []
        self.last_result: Any = None
        self._build()
        self._set_running(False)

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        import pyqtgraph as pg

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("folder of your photos")
        self.folder.editingFinished.connect(self._suggest)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.mode = QComboBox()
        self.mode.addItem("Clean photos (low noise): add synthetic noise", "clean")
        self.mode.addItem("Noisy photos only (the noise to remove)", "noisy")
        self.suggestion = QLabel("Choose a folder to get a suggestion.")
        self.suggestion.setWordWrap(True)
        self.sigma = QDoubleSpinBox(minimum=1, maximum=100, value=25, decimals=1)
        self.sigma.setToolTip("Clean photos: the noise level to train for (0..255 units).\n"
                              "Noisy photos: a strength you found right in the main window (optional).")
        self.use_strength = QCheckBox("Noisy photos: also teach the model to apply this strength automatically")
        self.minutes = QDoubleSpinBox(minimum=0.1, maximum=24 * 60, value=10, decimals=1, suffix=" min")
        self.steps = QSpinBox(minimum=0, maximum=10_000_000, value=0, specialValueText="no limit")
        self.name = QLineEdit()
        self.name.setPlaceholderText("name of the new model")
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.use_strength.toggled.connect(self._mode_changed)
        form = QFormLayout()
        form.addRow("Folder", row)
        form.addRow("Photos are", self.mode)
        form.addRow("", self.suggestion)
        form.addRow("Noise level", self.sigma)
        form.addRow("", self.use_strength)
        form.addRow("Time budget", self.minutes)
        form.addRow("Max steps", self.steps)
        form.addRow("New model name", self.name)
        form.addRow("Starting from", QLabel(self.base_model or "the shipped default"))
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "loss")
        self.plot.setLabel("bottom", "step")
        self.curve = self.plot.plot([], [], pen=pg.mkPen("b", width=1.5))
        self.before, self.after = QLabel("before"), QLabel("after")
        for lab in (self.before, self.after):
            lab.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
        previews = QHBoxLayout()
        previews.addWidget(self.plot, 1)
        previews.addWidget(self.before)
        previews.addWidget(self.after)
        self.bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.resume_btn, self.close_btn = QPushButton("Resume"), QPushButton("Close")
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.resume_btn.clicked.connect(self.resume)
        self.close_btn.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.start_btn, self.cancel_btn, self.resume_btn, self.close_btn):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(previews, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def _set_running(self, running: bool) -> None:
        for w in (self.folder, self.mode, self.sigma, self.minutes, self.steps, self.name, self.start_btn):
            w.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        self.resume_btn.setEnabled(not running and self._can_resume())
        self._mode_changed()

    def _can_resume(self) -> bool:
        from denoiser.core.finetune import has_unfinished_run

        name = self.name.text().strip()
        try:
            return bool(name) and has_unfinished_run(name)
        except (OSError, ValueError):
            return False

    # -- folder and mode ------------------------------------------------------------------------
    @Slot()
    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of your photos", self.folder.text())
        if path:
            self.set_folder(path)

    def set_folder(self, path: str) -> None:
        self.folder.setText(path)
        if not self.name.text().strip():
            self.name.setText(f"{Path(path).name or 'my'}-finetuned")
        self._suggest()

    @Slot()
    def _suggest(self) -> None:
        folder = self.folder.text().strip()
        if not folder:
            return
        self.suggestion.setText("Estimating the noise level…")
        worker = SuggestWorker(folder)
        worker.done.connect(self._suggested)
        self._launch(worker, worker.run)

    @Slot(str, object)
    def _suggested(self, folder: str, s: object) -> None:
        if folder != self.folder.text().strip():
            return  # an older folder's answer
        if isinstance(s, str):
            self.suggestion.setText(s)
            return
        self.suggestion.setText(f"Suggested: {s.mode} photos — {s.reason}. Camera noise is often "
                                "underestimated; choose “noisy” if these photos show the grain to remove.")
        self.mode.setCurrentIndex(self.mode.findData(s.mode))

    @Slot()
    def _mode_changed(self) -> None:
        idle, noisy = self.start_btn.isEnabled(), self.mode.currentData() == "noisy"
        self.use_strength.setEnabled(idle and noisy)
        self.sigma.setEnabled(idle and (not noisy or self.use_strength.isChecked()))

    # -- running ----------------------------------------------------------------------------------
    def _launch(self, worker: QObject, entry: Any) -> None:
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(entry)
        for sig in ("done", "stopped", "failed"):
            if hasattr(worker, sig):
                getattr(worker, sig).connect(thread.quit)
        thread.finished.connect(lambda t=thread, w=worker: self._forget(t, w))
        self._threads.append((thread, worker))
        thread.start()

    def _forget(self, thread: QThread, worker: QObject) -> None:
        if (thread, worker) in self._threads:
            self._threads.remove((thread, worker))
        worker.deleteLater()
        thread.deleteLater()

    def options(self, resume: bool = False) -> dict[str, Any]:
        return {"folder": self.folder.text().strip(), "mode": self.mode.currentData(),
                "name": self.name.text().strip(), "base_model": self.base_model, "minutes": self.minutes.value()
                if not self.steps.value() else 0.0, "steps": self.steps.value(), "device": self.device,
                "resume": resume, "sigma": self.sigma.value() if self.mode.currentData() == "clean"
                or self.use_strength.isChecked() else None}

    @Slot()
    def start(self) -> None:
        if self._can_resume():
            box = QMessageBox(QMessageBox.Icon.Question, "Unfinished run",
                              f"A stopped run named “{self.name.text().strip()}” exists.", parent=self)
            resume = box.addButton("Resume it", QMessageBox.ButtonRole.AcceptRole)
            discard = box.addButton("Discard it and start again", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is resume:
                return self.resume()
            if box.clickedButton() is not discard:
                return None
            from denoiser.core.finetune import discard_run
            discard_run(self.name.text().strip())
        self._run(self.options())
        return None

    @Slot()
    def resume(self) -> None:
        self._run(self.options(resume=True))

    def _run(self, kwargs: dict[str, Any]) -> None:
        if not kwargs["resume"]:
            self.steps_x.clear()
            self.losses.clear()
            self.curve.setData([], [])
        self.bar.setValue(0)
        self.status.setText("Starting (reading the folder)…")
        worker = FinetuneWorker(kwargs)
        worker.progress.connect(self._progress)
        worker.step.connect(self._step)
        worker.done.connect(self._done)
        worker.stopped.connect(self._stopped)
        worker.failed.connect(self._failed)
        self._worker = worker
        self._set_running(True)
        self._launch(worker, worker.run)

    @Slot()
    def cancel(self) -> None:
        if isinstance(self._worker, FinetuneWorker):
            self._worker.cancel()
            self.status.setText("Stopping after this step (a checkpoint is kept)…")

    @Slot(float, str)
    def _progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(round(fraction * 100)))
        self.status.setText(message)

    @Slot(object)
    def _step(self, info: Any) -> None:
        self.steps_x.append(info.step)
        self.losses.append(info.loss)
        self.curve.setData(self.steps_x, self.losses)
        if info.preview_before is not None:
            self.before.setPixmap(to_pixmap(info.preview_before))
            self.after.setPixmap(to_pixmap(info.preview_after))

    @Slot(object)
    def _done(self, res: Any) -> None:
        self._worker, self.last_result = None, res
        self._set_running(False)
        self.bar.setValue(100)
        fmt = lambda v: "n/a" if v is None else f"{v:.2f} dB"  # noqa: E731
        self.status.setText(f"Model “{res.name}” is ready: {res.steps} steps in {res.minutes:.1f} min; "
                            f"{res.val_metric} on held-out photos {fmt(res.val_before)} → {fmt(res.val_after)}"
                            + (f"; {len(res.skipped)} unreadable file(s) skipped" if res.skipped else ""))
        self.model_created.emit(res.name)

    @Slot()
    def _stopped(self) -> None:
        self._worker = None
        self._set_running(False)
        self.status.setText("Stopped. A checkpoint was saved: Resume continues the same run.")

    @Slot(str)
    def _failed(self, text: str) -> None:
        self._worker = None
        self._set_running(False)
        self.status.setText(f"Could not fine-tune: {text}")

    def running(self) -> bool:
        return self._worker is not None

    def shutdown(self) -> None:
        """Stop the run at the next step (it writes a checkpoint) and wait for the threads."""
        self.cancel()
        for thread, _ in list(self._threads):
            thread.quit()
            thread.wait(120_000)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:  # Escape
        self.shutdown()
        super().reject()
