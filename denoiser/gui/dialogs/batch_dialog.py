"""Batch… : clean a folder from the window. The job (core.batch, through gui/jobs.batch) runs on a lane of
the main window (a workers.JobRunner), like every other long job; this dialog only collects the options,
shows the model, the queue, the progress (with ETA) and the summary.

Non-modal (the main window calls .show()), so the single-photo view stays usable while a batch runs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from denoiser.core.io.formats import DEFAULT_TEMPLATE, DENOISED_SUFFIX, SAVE_FORMATS
from denoiser.core.noise.level import SCALE_RANGE, SIGMA_MAX
from denoiser.core.progress import format_duration
from denoiser.gui import jobs
from denoiser.gui.controls import offer_int8, quality_combo
from denoiser.gui.quality import STANDARD, Quality
from denoiser.gui.workers import Job, JobRunner

MIN_TABLE_ROWS = 8  # the results table shows at least this many photos
COLUMNS = ("File", "Status", "Measured noise", "Strength used", "Model", "Removed detail", "Seconds", "Reason")
COLUMN_TIPS = ("The photo, relative to the input folder", "queued, running, done, skipped or failed",
               "The noise level Auto measured in the photo (the mean of its noise map); empty for a fixed strength",
               "The strength the photo was denoised with: Auto times its scale, or a fixed noise level",
               "The model that made the output (a camera profile when one matched the photo's EXIF)",
               "Share of the photo where the removed signal had structure (edges, texture): check those first",
               "Seconds this photo took", "Why it was skipped or failed")
FORMAT_LABELS = {"keep": "Same as the original", "jpeg": "JPEG", "png": "PNG", "tiff": "16-bit TIFF", "webp": "WebP",
                 "heif": "HEIC", "avif": "AVIF", "dng": "DNG (camera RAW files only)"}
FORMATS = tuple((FORMAT_LABELS[fmt], fmt) for fmt in SAVE_FORMATS)  # core's list; a new format needs a label


def _row(first: QWidget, second: QWidget) -> QWidget:
    """Two widgets side by side in one form row; the first stretches."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(first, 1)
    layout.addWidget(second)
    return row


def tone_text(controls: Any) -> str:
    """The Noise and detail settings (core.inference.controls.Controls) in words; None: the plain run."""
    if controls is None:
        return "Luminance 100 %, colour 100 %, detail 0 %"

    def part(c: Any) -> str:
        return {"auto": "100 %", "scale": f"{c.value * 100:.0f} %"}.get(c.kind, f"noise level {c.value:g}")

    return f"Luminance {part(controls.luma)}, colour {part(controls.chroma)}, detail {controls.detail * 100:.0f} %"


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.replace(";", ",").split(",") if p.strip())


def model_name_text(name: str | None) -> str:
    """The model the batch uses, as the batch window shows it."""
    if not name:
        return "the default model"
    return Path(name).stem if name.endswith(".safetensors") else name


class BatchDialog(QDialog):
    """Folder job panel: folders, options, queue table, progress with ETA, Start/Cancel, summary."""

    batch_finished = Signal(object)  # BatchResult, after the summary is shown

    def __init__(self, parent: QWidget | None, model_name: str | None, device: str,
                 input_dir: Path | None = None, quality: Quality = STANDARD, runner: JobRunner | None = None,
                 controls: Any = None, strength_scale: float = 1.0, fast_unavailable: str | None = None) -> None:
        """quality: the main window's (gui.quality); fast_unavailable: why Fast (INT8) cannot run the model, as
        gui.quality.int8_unavailable says (None: it can)."""
        super().__init__(parent)
        self.setWindowTitle("Batch clean a folder")
        self.model_name, self.device = model_name, device
        self.controls, self.strength_scale = controls, strength_scale  # the window's noise/detail and Auto scale
        self.runner = runner if runner is not None else JobRunner(self)
        self.job: Job | None = None
        self.result: Any = None
        self._started_at = 0.0
        self._close_when_done = False
        self._build(quality)
        offer_int8(self.passes_combo, fast_unavailable)
        if input_dir is not None:
            self.set_input_dir(Path(input_dir))
        self._update_buttons()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self, quality: Quality) -> None:
        self.input_edit, self.output_edit = QLineEdit(), QLineEdit()
        self.input_edit.setPlaceholderText("folder of photos")
        self.output_edit.setPlaceholderText("folder for the cleaned photos (not inside the input)")
        in_btn, out_btn = QPushButton("Browse…"), QPushButton("Browse…")
        in_btn.clicked.connect(self._browse_input)
        out_btn.clicked.connect(self._browse_output)
        self.recursive = QCheckBox("Include sub-folders")
        self.include_edit, self.exclude_edit = QLineEdit(), QLineEdit()
        self.include_edit.setPlaceholderText("e.g. *.jpg, *.nef (empty: every photo)")
        self.exclude_edit.setPlaceholderText("e.g. rejects/*")
        self.template_edit = QLineEdit(DEFAULT_TEMPLATE)
        self.template_edit.setToolTip("Fields: {stem} {ext} {name} {parent}")
        self.format_combo = QComboBox()
        for label, value in FORMATS:
            self.format_combo.addItem(label, value)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(95)
        self.quality.setToolTip("JPEG and WebP compression quality of the cleaned files")
        self.quality.setPrefix("quality ")
        self.passes_combo = quality_combo(quality)  # starts at the main window's Quality; a change here is for this job
        self.auto_strength = QCheckBox("Auto: measure each photo's noise, ×")
        self.auto_strength.setChecked(True)
        self.auto_strength.setToolTip("Auto measures each photo's noise pixel by pixel; the number is a scale on "
                                      "it (1.00 = as measured), taken from the main window's slider")
        self.scale = QDoubleSpinBox()
        self.scale.setRange(*SCALE_RANGE)
        self.scale.setSingleStep(0.05)
        self.scale.setValue(self.strength_scale)
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, SIGMA_MAX)
        self.strength.setValue(25.0)
        self.strength.setPrefix("fixed noise level ")
        self.strength.setToolTip("With Auto off: the one noise level (0-255 units) removed from every photo")
        self.strength.setEnabled(False)
        self.auto_strength.toggled.connect(lambda on: (self.strength.setEnabled(not on), self.scale.setEnabled(on)))
        self.overwrite = QCheckBox("Replace existing outputs (otherwise they are skipped)")
        self.cluster_edit = QLineEdit()
        self.cluster_edit.setPlaceholderText("this computer (or local:2, tcp://10.0.0.5:8786)")
        self.cluster_edit.setToolTip("A Dask cluster to make the photos on: local:N worker processes here, or the "
                                     "address of a scheduler whose workers share these folders (see the README)")
        strength_row = _row(_row(self.auto_strength, self.scale), self.strength)
        self.tone_label = QLabel(tone_text(self.controls))
        self.tone_label.setToolTip("The main window's Noise and detail sliders when this window opened")

        self.model_label = QLabel(model_name_text(self.model_name))
        self.model_label.setToolTip("The model chosen in the main window (Model box) when this window opened")
        self.device_label = QLabel(f"on device: {self.device}")
        self.device_label.setToolTip("The device chosen in the main window when this window opened")
        files, work = QFormLayout(), QFormLayout()  # side by side: the results table keeps the height
        files.addRow("Input folder", _row(self.input_edit, in_btn))
        files.addRow("Output folder", _row(self.output_edit, out_btn))
        files.addRow("", self.recursive)
        files.addRow("Only files", self.include_edit)
        files.addRow("Leave out", self.exclude_edit)
        files.addRow("File name", self.template_edit)
        work.addRow("Model", _row(self.model_label, self.device_label))
        work.addRow("Strength", strength_row)
        work.addRow("Noise and detail", self.tone_label)
        work.addRow("Denoise quality", self.passes_combo)
        work.addRow("Format", _row(self.format_combo, self.quality))
        work.addRow("", self.overwrite)
        work.addRow("Run on", self.cluster_edit)
        form = QHBoxLayout()
        form.addLayout(files, 1)
        form.addLayout(work, 1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(MIN_TABLE_ROWS * self.table.verticalHeader().defaultSectionSize())

        self.overall = QProgressBar()
        self.overall.setRange(0, 1000)
        self.overall.setValue(0)
        self.overall.setFormat("%p%")
        self.per_file = QProgressBar()
        self.per_file.setRange(0, 100)
        self.status_label = QLabel("Choose a folder and press Start.")
        self.status_label.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.hide()

        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.open_btn, self.close_btn = QPushButton("Open output folder"), QPushButton("Close")
        self.report_btn = QPushButton("Save report…")
        self.report_btn.setToolTip("Save the per-file results (status, noise, seconds, reason) as CSV or JSON")
        self.report_btn.clicked.connect(self._choose_report)
        self.start_btn.setDefault(True)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.open_btn.clicked.connect(self.open_output)
        self.close_btn.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_btn)
        buttons.addWidget(self.report_btn)
        buttons.addStretch(1)
        for b in (self.start_btn, self.cancel_btn, self.close_btn):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(QLabel("Overall"))
        layout.addWidget(self.overall)
        layout.addWidget(QLabel("Current photo"))
        layout.addWidget(self.per_file)
        layout.addWidget(self.status_label)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.resize(1100, 680)  # fits a 1366x768 screen with its panel

    # --- folders and options ----------------------------------------------------------------------
    def set_input_dir(self, folder: Path) -> None:
        self.input_edit.setText(str(folder))
        if not self.output_edit.text().strip():
            self.output_edit.setText(str(folder.parent / f"{folder.name}{DENOISED_SUFFIX}"))

    @Slot()
    def _browse_input(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos", self.input_edit.text())
        if folder:
            self.set_input_dir(Path(folder))

    @Slot()
    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)

    def options(self) -> Any:
        """The BatchOptions the widgets describe (validated by the core when the job starts)."""
        from denoiser.core.batch.plan import BatchOptions  # no torch on the GUI thread

        return BatchOptions(
            input_dir=Path(self.input_edit.text().strip()), output_dir=Path(self.output_edit.text().strip()),
            recursive=self.recursive.isChecked(), include=_patterns(self.include_edit.text()),
            exclude=_patterns(self.exclude_edit.text()), name_template=self.template_edit.text().strip(),
            fmt=self.format_combo.currentData(), quality=self.quality.value(),
            strength=None if self.auto_strength.isChecked() else self.strength.value(),
            strength_scale=self.scale.value() if self.auto_strength.isChecked() else 1.0,
            overwrite=self.overwrite.isChecked(), model=self.model_name, device=self.device,
            passes=self.passes_combo.currentData().passes, precision=self.passes_combo.currentData().precision,
            **({"controls": self.controls} if self.controls else {}))

    # --- running ------------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.job is not None

    def _update_buttons(self) -> None:
        busy = self.running()
        self.start_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.open_btn.setEnabled(not busy and self.result is not None)
        self.report_btn.setEnabled(not busy and self.result is not None)
        for w in (self.input_edit, self.output_edit, self.recursive, self.include_edit, self.exclude_edit,
                  self.template_edit, self.format_combo, self.quality, self.auto_strength, self.overwrite,
                  self.passes_combo, self.cluster_edit):
            w.setEnabled(not busy)
        self.strength.setEnabled(not busy and not self.auto_strength.isChecked())
        self.scale.setEnabled(not busy and self.auto_strength.isChecked())

    @Slot()
    def start(self) -> None:
        if self.running():
            return
        if not self.input_edit.text().strip() or not self.output_edit.text().strip():
            self._show_error("Choose an input folder and an output folder.")
            return
        self.result = None
        self.table.setRowCount(0)
        self.summary.hide()
        self.overall.setValue(0)
        self.per_file.setValue(0)
        self.status_label.setText("Finding photos…")
        job = Job(jobs.batch, self.options(), name="batch", keep_cancelled_result=True,  # the partial summary
                  cluster=self.cluster_edit.text().strip())
        job.signals.event.connect(self._on_event)
        job.signals.progress.connect(self._on_progress)
        job.signals.result.connect(self._on_finished)
        job.signals.error.connect(lambda exc: self._on_error(str(exc) or type(exc).__name__))
        job.signals.finished.connect(lambda j=job: self._job_finished(j))
        self.job = job
        self._started_at = time.monotonic()
        self.runner.start(job)
        self._update_buttons()

    @Slot()
    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status_label.setText("Cancelling… (stops after the current tile)")
            self.cancel_btn.setEnabled(False)

    def shutdown(self) -> None:
        """The main window is closing: stop the job (finished photos stay; a new Start resumes)."""
        self.cancel()

    def _job_finished(self, job: Job) -> None:
        if self.job is job:
            self.job = None
        self._update_buttons()
        if self._close_when_done:
            self.close()

    @Slot(str, object)
    def _on_event(self, kind: str, payload: Any) -> None:
        if kind == "planned":
            self._on_planned(payload)
        elif kind == "file":
            self._on_file(*payload)
        elif kind == "file_progress":
            self._on_file_progress(payload)

    # --- worker signals -----------------------------------------------------------------------------
    @Slot(object)
    def _on_planned(self, items: list) -> None:
        self.table.setRowCount(len(items))
        for row, item in enumerate(items):
            self.table.setItem(row, 0, QTableWidgetItem(str(item.rel)))
            self._set_row(row, item)
        todo = sum(1 for i in items if i.status == "queued")
        self.status_label.setText(f"{len(items)} files, {todo} to clean")

    def _set_row(self, row: int, item: Any) -> None:
        level = getattr(item, "level", None)
        measured = f"{level.base:.1f}" if level is not None and level.is_auto else ""
        used = "" if level is None else (f"Auto × {level.scale:.2f} = {level.sigma:.1f}" if level.is_auto
                                         else f"{level.sigma:.1f} (fixed)")
        detail = "" if item.detail_score is None else f"{item.detail_score:.1f} %"
        seconds = f"{item.seconds:.1f}" if item.status in ("done", "failed") and item.seconds else ""
        for col, text in enumerate((item.status, measured, used, item.model, detail, seconds, item.reason), 1):
            cell = QTableWidgetItem(text)
            if text and col == len(COLUMNS) - 1:
                cell.setToolTip(text)
            self.table.setItem(row, col, cell)
        self.table.resizeRowToContents(row)

    @Slot(int, object)
    def _on_file(self, row: int, item: Any) -> None:
        if row < self.table.rowCount():
            self._set_row(row, item)
            if item.status == "running":
                self.per_file.setValue(0)
                self.table.scrollToItem(self.table.item(row, 0))

    @Slot(float)
    def _on_file_progress(self, fraction: float) -> None:
        self.per_file.setValue(int(round(100 * fraction)))

    @Slot(float, str)
    def _on_progress(self, fraction: float, message: str) -> None:
        self.overall.setValue(int(round(1000 * max(0.0, min(1.0, fraction)))))
        elapsed = time.monotonic() - self._started_at
        eta = f", about {format_duration(elapsed * (1 - fraction) / fraction)} left" if 0.01 < fraction < 1 else ""
        if self.job is not None and not self.job.token.cancelled:
            self.status_label.setText(f"{message}{eta}")

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        self.result = result
        self.summary.setText(self.summary_text(result))
        self.summary.show()
        self.status_label.setText("" if result.cancelled else f"The cleaned photos are in {self.output_edit.text()}")
        self.overall.setValue(self.overall.maximum() if not result.cancelled else self.overall.value())
        self.job = None  # before the signal: a listener may start the next run at once
        self._update_buttons()
        self.batch_finished.emit(result)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        """The dialog's one error handler: a job that could not start says why, in place."""
        self.summary.setText(f"<b>Could not run the batch:</b> {message}")
        self.summary.show()
        self.status_label.setText("Not started.")

    @staticmethod
    def summary_text(result: Any) -> str:
        c = result.counts
        head = "Stopped" if result.cancelled else "Finished"
        lines = [f"{head} in {format_duration(result.seconds)}: {c['done']} cleaned, {c['skipped']} skipped, "
                 f"{c['failed']} failed."]
        if result.cancelled:
            lines.append("Start again to resume: finished photos are skipped.")
        if result.failed:
            lines.append("Failed:")
            lines += [f"• {i.rel}: {i.reason}" for i in result.failed]
        return "\n".join(lines)

    @Slot()
    def open_output(self) -> None:
        folder = Path(self.output_edit.text().strip())
        if folder.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    @Slot()
    def _choose_report(self) -> None:
        start = str(Path(self.output_edit.text().strip()) / "denoise-report.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Save batch report", start, "CSV (*.csv);;JSON (*.json)")
        if path:
            self.save_report(Path(path))

    def save_report(self, path: Path) -> bool:
        """Write the last run's per-file report (.csv, otherwise JSON); says in the summary where, or why not."""
        from denoiser.core.batch.runner import write_report  # no torch on the GUI thread until needed

        if self.result is None:
            return False
        if path.suffix.lower() not in (".csv", ".json"):
            path = Path(f"{path}.csv")
        try:
            write_report(path, self.result)
        except OSError as exc:
            self.status_label.setText(f"Could not save the report to {path}: {exc.strerror or exc}")
            return False
        self.status_label.setText(f"Report saved to {path}")
        return True

    def closeEvent(self, event: Any) -> None:
        if self.running():
            self._close_when_done = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)
