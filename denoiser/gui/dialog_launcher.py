"""Opens the window's secondary dialogs. Each is imported inside its slot, so the window starts fast and
keeps working even when one dialog module is missing or broken (the error goes to the one handler)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox

if TYPE_CHECKING:
    from denoiser.gui.main_window import MainWindow
    from denoiser.gui.window_state import WindowState


class DialogLauncher:
    def __init__(self, window: MainWindow, state: WindowState) -> None:
        self.w, self.state = window, state
        self.open_dialogs: list[QDialog] = []  # non-modal dialogs stay referenced while open

    def _keep(self, dlg: QDialog) -> QDialog:
        self.open_dialogs.append(dlg)
        dlg.finished.connect(lambda _r, d=dlg: self.open_dialogs.remove(d) if d in self.open_dialogs else None)
        return dlg

    def batch(self, folder: Path | None) -> None:
        """File ▸ Batch… and folders dropped on the window."""
        try:
            from denoiser.gui.dialogs.batch_dialog import BatchDialog

            c = self.w.controls
            dlg = BatchDialog(self.w, c.model_name() or "", c.device(), folder, c.quality(), runner=self.w.batch_lane,
                              controls=c.tone_controls(), strength_scale=c.strength_scale(),
                              fast_unavailable=self.state.fast_unavailable())
        except Exception as exc:
            self.w.report_error("Cannot open the batch window", exc)
            return
        self._keep(dlg).show()

    def finetune(self) -> None:
        try:
            from denoiser.gui.dialogs.finetune_dialog import FinetuneDialog

            base = self.w.controls.model_name() or ""
            base = "" if base == "auto" else base  # Auto (camera profiles) starts from the shipped default
            dlg = FinetuneDialog(self.w, base, self.w.controls.device(),
                                 runner=self.w.training_lane, analysis=self.w.io)
            dlg.model_created.connect(self._model_created)
        except Exception as exc:
            self.w.report_error("Cannot open fine-tuning", exc)
            return
        self._keep(dlg).show()

    def _model_created(self, name: str) -> None:
        """A fine-tune finished: the new model is listed, and becomes the one in use only if the user says so."""
        current = self.w.controls.model_name() or "the current model"
        answer = QMessageBox.question(
            self.w, "New model ready", f"Your fine-tuned model “{name}” is ready.\n\nUse it for your photos "
            f"from now on (in this window, for batches and next time)? Otherwise {current} stays in use; "
            "you can switch in the Model box or Model ▸ Manage models… at any time.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        use = answer == QMessageBox.StandardButton.Yes
        self.w.refresh_models(select=name if use else None)
        self.w.status.message(f"Now using your model “{name}”" if use else
                              f"Model “{name}” added; still using {current}")

    def shutdown(self) -> None:
        """The window is closing: cancel every open dialog's job (they run on the window's lanes)."""
        for dlg in list(self.open_dialogs):
            stop = getattr(dlg, "shutdown", None)
            if stop is not None:
                stop()
            dlg.hide()

    def model_manager(self) -> None:
        try:
            from denoiser.gui.dialogs.model_manager import ModelManagerDialog

            dlg = ModelManagerDialog(self.w)
            dlg.models_changed.connect(lambda: self.w.refresh_models())
            dlg.model_chosen.connect(lambda name: self.w.refresh_models(select=name))
        except Exception as exc:
            self.w.report_error("Cannot open the model manager", exc)
            return
        dlg.exec()

    def about(self) -> None:
        self.about_box().exec()

    def about_box(self) -> QMessageBox:
        """Help ▸ About: plain words first, the card's fields behind Show Details…"""
        from denoiser.gui.dialogs.about import about_html, details_text

        entry = self._active_entry()
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About Photo Denoiser", about_html(entry, self._device_text()),
                          QMessageBox.StandardButton.Close, self.w)
        box.setTextFormat(Qt.TextFormat.RichText)
        if details_text(entry):
            box.setDetailedText(details_text(entry))
        return box

    def _active_entry(self):
        cat, name = self.state.catalogue, self.state.controls.model_name()
        return next((e for e in (cat.models if cat else []) if e.name == name), None)

    def _device_text(self) -> str:
        result = self.state.result
        in_use = result.device_name if result else "not used yet"
        devices = ", ".join(self.state.catalogue.devices) if self.state.catalogue else "still loading"
        torch = sys.modules.get("torch")
        version = f"PyTorch {torch.__version__}" if torch else "PyTorch not loaded yet"
        return f"Selected: {self.w.controls.device()}; in use: {in_use}<br>Available: {devices}<br>{version}"
