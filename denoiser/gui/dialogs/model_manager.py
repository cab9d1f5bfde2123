"""Model ▸ Manage models…: list installed models with their cards; import, export, rename, delete
(user models only: shipped ones can never be deleted); "Use shipped default".

The operations are core functions in denoiser.core.model_store (import_model, export, rename, delete,
reset_to_default), the same ones `denoiser models` uses; this dialog only collects names and paths, and
shows any refusal (a taken name, a damaged file) in a message box while staying open.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout, QWidget)


def _store():  # noqa: ANN202 - the core module, imported when first needed
    from denoiser.core import model_store

    return model_store


def card_html(entry: Any) -> str:
    from denoiser.core.model_store import describe

    card, info = entry.card, describe(entry)
    rows = [f"<b>{html.escape(entry.name)}</b> — {html.escape(str(info['origin']))}",
            html.escape(card.description) if card.description else "",
            f"{html.escape(str(info['architecture']))}, {int(info['parameters']) / 1e6:.2f} M parameters",
            f"created {html.escape(card.created)}" if card.created else "",
            *(f"{html.escape(str(k))}: {html.escape(str(v))[:80]}" for k, v in card.metrics.items()),
            *(f"{html.escape(str(k))}: {html.escape(str(v))[:80]}" for k, v in card.training.items()),
            f"<small>{html.escape(str(entry.path))}</small>"]
    return "<br>".join(r for r in rows if r)


class ModelManagerDialog(QDialog):
    models_changed = Signal()
    model_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Manage models")
        self.resize(640, 420)
        self.list = QListWidget()
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons: dict[str, QPushButton] = {}
        side = QVBoxLayout()
        for key, text, slot in (("use", "Use this model", self._use), ("import", "Import…", self._import),
                                ("export", "Export…", self._export), ("rename", "Rename…", self._rename),
                                ("delete", "Delete", self._delete), ("default", "Use shipped default", self._default)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            side.addWidget(b)
            self.buttons[key] = b
        side.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        top.addWidget(self.details, 2)
        top.addLayout(side)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(close)
        self.list.currentItemChanged.connect(self._selected)
        self.reload()

    def reload(self, select: str | None = None) -> None:
        from denoiser.core.registry import list_models

        self.list.clear()
        for entry in list_models():
            item = QListWidgetItem(f"{entry.name}  ({'shipped' if entry.builtin else 'yours'})")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            self.list.addItem(item)
            if entry.name == select:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self._selected()

    def current(self) -> Any | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    @Slot()
    def _selected(self, *_: object) -> None:
        entry = self.current()
        self.details.setText(card_html(entry) if entry else "No model installed.")
        user = entry is not None and not entry.builtin
        for key in ("rename", "delete"):
            self.buttons[key].setEnabled(user)  # shipped models can never be renamed or deleted
        for key in ("use", "export"):
            self.buttons[key].setEnabled(entry is not None)

    def _run(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - shown, the dialog stays usable
            QMessageBox.critical(self, what, str(exc) or exc.__class__.__name__)
            return None
        return result if result is not None else True

    @Slot()
    def _use(self) -> None:
        if self.current() is not None:
            self.model_chosen.emit(self.current().name)

    @Slot()
    def _default(self) -> None:
        """Reset to the shipped default: checked to load first, then selected; user models stay."""
        entry = self._run("Use shipped default", lambda: _store().reset_to_default())
        if entry:
            self.reload(entry.name)
            self.model_chosen.emit(entry.name)

    @Slot()
    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", "", "Models (*.safetensors)")
        if path:
            entry = self._run("Import", lambda: _store().import_model(Path(path)))
            if entry:
                self.reload(getattr(entry, "name", None))
                self.models_changed.emit()

    @Slot()
    def _export(self) -> None:
        entry = self.current()
        dest, _ = QFileDialog.getSaveFileName(self, "Export model", f"{entry.name}.safetensors",
                                              "Models (*.safetensors)")
        if dest and self._run("Export", lambda: _store().export(entry.name, Path(dest))):
            QMessageBox.information(self, "Export", f"Saved {dest}")

    @Slot()
    def _rename(self) -> None:
        entry = self.current()
        name, ok = QInputDialog.getText(self, "Rename model", "New name:", text=entry.name)
        if ok and name and name != entry.name and self._run("Rename", lambda: _store().rename(entry.name, name)):
            self.reload(name)
            self.models_changed.emit()

    @Slot()
    def _delete(self) -> None:
        entry = self.current()
        answer = QMessageBox.question(self, "Delete model", f"Delete your model “{entry.name}”? This cannot be undone.")
        if answer == QMessageBox.StandardButton.Yes and self._run("Delete", lambda: _store().delete(entry.name)):
            self.reload()
            self.models_changed.emit()
