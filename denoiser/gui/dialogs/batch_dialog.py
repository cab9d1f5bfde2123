"""Batch… : clean a folder from the window. The job runs in core.batch on a QThread; this dialog only
collects the options, shows the queue, the progress (with ETA) and the summary.

Non-modal (the main window calls .show()), so the single-photo view stays usable while a batch runs.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from denoiser.gui.controls import quality_combo
from denoiser.gui.workers import SignalProgress as _SignalProgress

COLUMNS = ("File", "Status", "Noise", "Seconds", "Reason")
FORMATS = (("Same as the original", "keep"), ("JPEG", "jpeg"), ("PNG", "png"), ("16-bit TIFF", "tiff"),
           ("WebP", "webp"))


class BatchWorker(QObject):
    """Calls core.batch on its thread. Items are sent as copies: the worker keeps mutating its own."""

    planned = Signal(object)  # list[BatchItem]
    progress = Signal(float, str)
    file_status = Signal(int, object)  # plan index, BatchItem copy
    file_progress = Signal(float)
    finished = Signal(object)  # BatchResult
    error = Signal(str)

    def __init__(self, options: Any) -> None:
        super().__init__()
        self.options = options
        self.token = _SignalProgress(self.progress)

    def cancel(self) -> None:
        self.token.cancel()

    @Slot()
    def run(self) -> None:
        from denoiser.core.batch import plan_batch, run_batch

        try:
            plan = plan_batch(self.options)
            self.planned.emit([dataclasses.replace(i) for i in plan.items])
            result = run_batch(self.options, progress=self.token, plan=plan,
                               on_file=lambda k, n, item: self.file_status.emit(k, dataclasses.replace(item)),
                               on_file_progress=self.file_progress.emit)
        except Exception as exc:  # noqa: BLE001 - shown by the dialog's one error handler
            self.error.emit(str(exc) or type(exc).__name__)
        else:
            self.finished.emit(result)


def _row(first: QWidget, second: QWidget) -> QWidget:
    """Two widgets side by side in one form row; the first stretches."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(first, 1)
    layout.addWidget(second)
    return row


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.replace(";", ",").split(",") if p.strip())


def format_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class BatchDialog(QDialog):
    """Folder job panel: folders, options, queue table, progress with ETA, Start/Cancel, summary."""

    batch_finished = Signal(object)  # BatchResult, after the summary is shown

    def __init__(self, parent: QWidget | None, model_name: str | None, device: str,
                 input_dir: Path | None = None, passes: int = 1) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch clean a folder")
        self.model_name, self.device = model_name, device
        self.thread: QThread | None = None
        self.worker: BatchWorker | None = None
        self.result: Any = None
        self._started_at = 0.0
        self._close_when_done = False
        self._build(passes)
        if input_dir is not None:
            self.set_input_dir(Path(input_dir))
        self._update_buttons()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self, passes: int) -> None:
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
        self.template_edit = QLineEdit("{stem}-denoised.{ext}")
        self.template_edit.setToolTip("Fields: {stem} {ext} {name} {parent}")
        self.format_combo = QComboBox()
        for label, value in FORMATS:
            self.format_combo.addItem(label, value)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(95)
        self.quality.setToolTip("JPEG and WebP compression quality of the cleaned files")
        self.passes_combo = quality_combo(passes)  # starts at the main window's Quality; a change here is for this job
        self.auto_strength = QCheckBox("Auto (estimate each photo)")
        self.auto_strength.setChecked(True)
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 255.0)
        self.strength.setValue(25.0)
        self.strength.setEnabled(False)
        self.auto_strength.toggled.connect(lambda on: self.strength.setEnabled(not on))
        self.overwrite = QCheckBox("Replace existing outputs (otherwise they are skipped)")
        strength_row = _row(self.auto_strength, self.strength)

        form = QFormLayout()
        form.addRow("Input folder", _row(self.input_edit, in_btn))
        form.addRow("Output folder", _row(self.output_edit, out_btn))
        form.addRow("", self.recursive)
        form.addRow("Only files", self.include_edit)
        form.addRow("Leave out", self.exclude_edit)
        form.addRow("File name", self.template_edit)
        form.addRow("Format", self.format_combo)
        form.addRow("File quality", self.quality)
        form.addRow("Strength", strength_row)
        form.addRow("Denoise quality", self.passes_combo)
        form.addRow("", self.overwrite)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)

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
        self.resize(760, 640)

    # --- folders and options ----------------------------------------------------------------------
    def set_input_dir(self, folder: Path) -> None:
        self.input_edit.setText(str(folder))
        if not self.output_edit.text().strip():
            self.output_edit.setText(str(folder.parent / f"{folder.name}-denoised"))

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
        from denoiser.core.batch_plan import BatchOptions  # no torch on the GUI thread

        return BatchOptions(
            input_dir=Path(self.input_edit.text().strip()), output_dir=Path(self.output_edit.text().strip()),
            recursive=self.recursive.isChecked(), include=_patterns(self.include_edit.text()),
            exclude=_patterns(self.exclude_edit.text()), name_template=self.template_edit.text().strip(),
            fmt=self.format_combo.currentData(), quality=self.quality.value(),
            strength=None if self.auto_strength.isChecked() else self.strength.value(),
            overwrite=self.overwrite.isChecked(), model=self.model_name, device=self.device,
            passes=self.passes_combo.currentData())

    # --- running ------------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.thread is not None

    def _update_buttons(self) -> None:
        busy = self.running()
        self.start_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.open_btn.setEnabled(not busy and self.result is not None)
        self.report_btn.setEnabled(not busy and self.result is not None)
        for w in (self.input_edit, self.output_edit, self.recursive, self.include_edit, self.exclude_edit,
                  self.template_edit, self.format_combo, self.quality, self.auto_strength, self.overwrite,
                  self.passes_combo):
            w.setEnabled(not busy)
        self.strength.setEnabled(not busy and not self.auto_strength.isChecked())

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
        self.worker = BatchWorker(self.options())
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.planned.connect(self._on_planned)
        self.worker.progress.connect(self._on_progress)
        self.worker.file_status.connect(self._on_file)
        self.worker.file_progress.connect(self._on_file_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.error.connect(self._on_error)
        self._started_at = time.monotonic()
        self.thread.start()
        self._update_buttons()

    @Slot()
    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("Stopping after the current tile…")
            self.cancel_btn.setEnabled(False)

    def _stop_thread(self) -> None:
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait()
            self.thread.deleteLater()
            self.worker.deleteLater()
        self.thread, self.worker = None, None
        self._update_buttons()
        if self._close_when_done:
            self.close()

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
        noise = "" if item.sigma is None else f"{item.sigma:.1f}"
        seconds = f"{item.seconds:.1f}" if item.status in ("done", "failed") and item.seconds else ""
        for col, text in ((1, item.status), (2, noise), (3, seconds), (4, item.reason)):
            cell = QTableWidgetItem(text)
            if col == 4 and item.reason:
                cell.setToolTip(item.reason)
            self.table.setItem(row, col, cell)

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
        eta = f", about {format_eta(elapsed * (1 - fraction) / fraction)} left" if 0.01 < fraction < 1 else ""
        if self.worker is not None and not self.worker.token.cancelled:
            self.status_label.setText(f"{message}{eta}")

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        self.result = result
        self.summary.setText(self.summary_text(result))
        self.summary.show()
        self.status_label.setText("Stopped." if result.cancelled else "Finished.")
        self.overall.setValue(self.overall.maximum() if not result.cancelled else self.overall.value())
        self._stop_thread()
        self.batch_finished.emit(result)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._show_error(message)
        self._stop_thread()

    def _show_error(self, message: str) -> None:
        """The dialog's one error handler: a job that could not start says why, in place."""
        self.summary.setText(f"<b>Could not run the batch:</b> {message}")
        self.summary.show()
        self.status_label.setText("Not started.")

    @staticmethod
    def summary_text(result: Any) -> str:
        c = result.counts
        head = "Stopped" if result.cancelled else "Finished"
        lines = [f"{head} in {format_eta(result.seconds)}: {c['done']} cleaned, {c['skipped']} skipped, "
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
        from denoiser.core.batch import write_report  # no torch on the GUI thread until needed

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

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self.running():
            self._close_when_done = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)
