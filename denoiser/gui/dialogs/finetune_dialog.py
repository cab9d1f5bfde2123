"""Model ▸ Fine-tune…: teach the selected model a folder of the user's own photos.

Collects folder, mode (with the suggestion from the folder's noise level), time budget and name; the
work is core.training.finetune.finetune (through gui/jobs.finetune) on the main window's training lane, like every
other long job. Shows each phase with its own progress (measuring a noisy folder's noise comes before the
time budget), a live loss curve (pyqtgraph) and this run's preview crop before/after every few steps;
Cancel leaves a checkpoint that Resume continues, once training has begun.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from denoiser.gui import jobs
from denoiser.gui.dialogs.model_manager import rough_sign
from denoiser.gui.workers import Job, JobRunner

PREVIEW_SIZE = 192
LOSS_WINDOW = 20  # the plot's average line and the text both use this many steps
# Folders of 5 photos measure (core.training.finetune.estimate_folder_sigma) 0.26-7.60 when clean (CBSD68, Kodak24,
# McMaster, Nam25 and RENOIR50 references) and 1.43-16.84 when really noisy (Nam25, RENOIR50, RNI15):
# benchmarks/finetune_suggestion.py. Inside the overlap the window cannot tell and leaves the mode to the user.
UNSURE = (1.43, 7.60)


def to_pixmap(img: np.ndarray, size: int = PREVIEW_SIZE) -> QPixmap:
    arr = np.ascontiguousarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    h, w = arr.shape[:2]
    qimg = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation)


class FinetuneDialog(QDialog):
    model_created = Signal(str)

    def __init__(self, parent: QWidget | None, base_model: str, device: str, runner: JobRunner | None = None,
                 analysis: JobRunner | None = None) -> None:
        """runner: the lane the fine-tune runs on; analysis: the lane for the folder suggestion (the main
        window passes its own; a dialog made alone gets lanes of its own)."""
        super().__init__(parent)
        self.base_model, self.device = base_model or None, device or "auto"
        self.setWindowTitle("Fine-tune a model")
        self.resize(760, 620)
        self.runner = runner if runner is not None else JobRunner(self)
        self.analysis = analysis if analysis is not None else JobRunner(self)
        self.job: Job | None = None
        self._suggest_job: Job | None = None
        self._suggested_for = ""  # the folder the suggestion is (being) made for
        self.steps_x: list[float] = []
        self.losses: list[float] = []
        self.averages: list[float] = []
        self.last_result: Any = None
        self._build()
        self._set_running(False)

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        import pyqtgraph as pg

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("folder of your photos")
        self.folder.editingFinished.connect(self._suggest)
        self.browse_btn = QPushButton("Browse…")
        self.browse_btn.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse_btn)
        self.mode = QComboBox()
        self.mode.addItem("Clean photos (low noise): add synthetic noise", "clean")
        self.mode.addItem("Noisy photos only (the noise to remove)", "noisy")
        self.suggestion = QLabel("Choose a folder to get a suggestion.")
        self.suggestion.setWordWrap(True)
        self.sigma = QDoubleSpinBox(minimum=1, maximum=100, value=25, decimals=1)
        self.sigma.setToolTip("Clean photos: the noise level to train for (0..255 units).\n"
                              "Noisy photos: a strength you found right in the main window (optional).")
        self.use_strength = QCheckBox("Noisy photos: also teach the model to apply this strength automatically")
        self.minutes = QDoubleSpinBox(minimum=0.1, maximum=24 * 60, value=10, decimals=1, suffix=" min of training")
        self.minutes.setToolTip("Training time. With noisy photos, measuring their noise comes first and is not "
                                "counted (its own progress is shown).")
        self.steps = QSpinBox(minimum=0, maximum=10_000_000, value=0, specialValueText="no limit")
        self.name = QLineEdit()
        self.name.setPlaceholderText("name of the new model")
        self.name.textChanged.connect(lambda _t: self._set_running(self.running()))  # Resume follows the name
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
        self.plot = pg.PlotWidget(background=self.palette().color(self.backgroundRole()))
        self.plot.setLabel("left", "training loss (lower is better)")
        self.plot.setLabel("bottom", "step")
        self.plot.addLegend(offset=(-10, 10))
        self.raw_curve = self.plot.plot([], [], pen=pg.mkPen((150, 150, 150), width=1), name="each step")
        self.curve = self.plot.plot([], [], pen=pg.mkPen((90, 150, 230), width=2.5),
                                    name=f"average of the last {LOSS_WINDOW} steps")
        self.before, self.after = QLabel("before"), QLabel("after")
        for lab in (self.before, self.after):
            lab.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
        previews = QHBoxLayout()
        previews.addWidget(self.plot, 1)
        previews.addWidget(self.before)
        previews.addWidget(self.after)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.phase = QLabel("")
        self.phase.setWordWrap(True)
        font = self.phase.font()
        font.setBold(True)
        self.phase.setFont(font)
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
        layout.addWidget(self.phase)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def _set_running(self, running: bool) -> None:
        for w in (self.folder, self.browse_btn, self.mode, self.sigma, self.minutes, self.steps, self.name,
                  self.start_btn):
            w.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        self.resume_btn.setEnabled(not running and self._can_resume())
        self._mode_changed()

    def _can_resume(self) -> bool:
        from denoiser.core.training.finetune import has_unfinished_run

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
        if not folder or folder == self._suggested_for or self.running():
            return  # nothing new to look at (editingFinished also fires when the field merely loses focus)
        self._suggested_for = folder
        self.suggestion.setText("Estimating the noise level…")
        if self._suggest_job is not None:
            self._suggest_job.cancel()
        job = Job(jobs.suggest_mode, folder, name="suggest")
        job.signals.result.connect(lambda s, f=folder: self._suggested(f, s))
        job.signals.error.connect(lambda exc, f=folder: self._suggested(f, str(exc) or exc.__class__.__name__))
        self._suggest_job = job
        self.analysis.start(job)

    def _suggested(self, folder: str, s: object) -> None:
        if folder != self.folder.text().strip() or self.running():
            return  # an older folder's answer, or a run already started with the mode chosen
        if isinstance(s, str):
            self.suggestion.setText(s)
            return
        lo, hi = UNSURE
        measured = f"Measured noise {s.sigma:.1f} on {s.sampled} photo{'s' if s.sampled != 1 else ''}"
        if lo <= s.sigma <= hi:  # the mode the user chose stays
            self.suggestion.setText(f"{measured}: cannot tell. Folders of clean photos and of noisy ones both "
                                    f"measure between {lo:g} and {hi:g}, so choose yourself: “Noisy photos” if they "
                                    "show grain you want removed, else “Clean photos”.")
            return
        looks = "noisy" if s.sigma > hi else "clean (little noise)"
        self.suggestion.setText(f"{measured}: suggested, these photos look {looks}. Choose the other mode if "
                                "that is wrong.")
        self.mode.setCurrentIndex(self.mode.findData("noisy" if s.sigma > hi else "clean"))

    @Slot()
    def _mode_changed(self) -> None:
        idle, noisy = self.start_btn.isEnabled(), self.mode.currentData() == "noisy"
        self.use_strength.setEnabled(idle and noisy)
        self.sigma.setEnabled(idle and (not noisy or self.use_strength.isChecked()))

    # -- running ----------------------------------------------------------------------------------
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
            from denoiser.core.training.finetune import discard_run
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
            self.averages.clear()
            self.curve.setData([], [])
            self.raw_curve.setData([], [])
        for label, text in ((self.before, "before"), (self.after, "after")):  # this run's crops, not the last
            label.clear()
            label.setText(text)
        self.bar.setRange(0, 0)  # busy until the first measured fraction
        self.phase.setText("Reading the folder…")
        self.status.setText("")
        job = Job(jobs.finetune, kwargs, name="finetune")
        job.signals.progress.connect(self._progress)
        job.signals.event.connect(lambda kind, info: self._step(info) if kind == "step" else None)
        job.signals.result.connect(self._done)
        job.signals.cancelled.connect(self._stopped)
        job.signals.error.connect(lambda exc: self._failed(str(exc) or exc.__class__.__name__))
        job.signals.finished.connect(lambda j=job: self._job_finished(j))
        self.job = job
        self._set_running(True)
        self.runner.start(job)

    @Slot()
    def cancel(self) -> None:
        if self.job is not None and not self.job.done:
            self.job.cancel()
            self.cancel_btn.setEnabled(False)
            self.phase.setText("Cancelling… (stops after the current step)")

    @Slot(float, str)
    def _progress(self, fraction: float, message: str) -> None:
        if self.job is None or self.job.token.cancelled:
            return  # "Cancelling…" stays until the run has stopped
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(round(max(0.0, min(1.0, fraction)) * 1000)))
        if message.startswith("step"):  # the training loop's own reports: the loss is said by _step, as plotted
            eta = message.partition(" ETA ")[2]
            self.phase.setText("Training (the time budget counts from here)…" + (f" About {eta} left." if eta else ""))
        else:
            self.phase.setText(message)
            self.status.setText("")

    @Slot(object)
    def _step(self, info: Any) -> None:
        self.steps_x.append(info.step)
        self.losses.append(info.loss)
        recent = self.losses[-LOSS_WINDOW:]
        self.averages.append(float(np.mean(recent)))
        self.raw_curve.setData(self.steps_x, self.losses)
        self.curve.setData(self.steps_x, self.averages)
        self.status.setText(f"Step {info.step}: loss {info.loss:.4f}; average of the last {len(recent)} steps "
                            f"{self.averages[-1]:.4f} (the blue line)")
        if info.preview_before is not None:
            self.before.setPixmap(to_pixmap(info.preview_before))
            self.after.setPixmap(to_pixmap(info.preview_after))

    @Slot(object)
    def _done(self, res: Any) -> None:
        self.last_result = res
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000)
        self.phase.setText(f"Your model “{res.name}” is ready.")
        self.status.setText(finished_text(res, held_out_count(res.path)))
        self._job_finished(self.job)  # idle before anyone hears of the new model
        self.model_created.emit(res.name)

    @Slot()
    def _stopped(self) -> None:
        if self._can_resume():
            self.phase.setText("Stopped. A checkpoint was saved: Resume continues the same run.")
        else:
            self.phase.setText("Stopped before training began: there is nothing to resume; Start begins again.")
        self.status.setText("")

    def _failed(self, text: str) -> None:
        self.phase.setText(f"Could not fine-tune: {text}")
        self.status.setText("")

    def _job_finished(self, job: Job) -> None:
        if self.job is job:
            self.job = None
        self.bar.setRange(0, 1000)
        self._set_running(False)

    def running(self) -> bool:
        return self.job is not None

    def shutdown(self) -> None:
        """Stop the run at its next step (a checkpoint is kept) and any folder suggestion; the lanes they run
        on belong to the main window, which waits for them when it closes."""
        self.cancel()
        if self._suggest_job is not None:
            self._suggest_job.cancel()

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:  # Escape
        self.shutdown()
        super().reject()


def finished_text(res: Any, held_out: int = 0) -> str:
    """What a fine-tune achieved, in a photographer's words (the core's metric names stay in the card)."""
    took = f"{res.steps} training steps in {res.minutes:.1f} min."
    if res.val_before is not None and res.val_after is not None:
        photos = f"{held_out} held-out photo{'s' if held_out != 1 else ''}" if held_out else "held-out photos"
        on = (f"{photos} of this folder with added noise" if res.mode == "clean" else
              f"crops of {photos} with noise like theirs")
        gain = res.val_after - res.val_before
        took += (f" Measured on {on}: {abs(gain):.2f} dB {'better' if gain >= 0 else 'worse'} than the "
                 f"model it started from ({res.val_before:.2f} → {res.val_after:.2f} dB, higher is better)"
                 f"{rough_sign(held_out, res.steps)}.")
    if res.skipped:
        took += f" {len(res.skipped)} unreadable file(s) were skipped."
    return took


def held_out_count(model_path: Path) -> int:
    """How many photos the run kept out of training to measure it (from the new model's card)."""
    from denoiser.core.model.file import ModelFileError, read_card

    try:
        return len(read_card(Path(model_path)).training.get("val_images") or [])
    except (ModelFileError, OSError, ValueError):
        return 0
