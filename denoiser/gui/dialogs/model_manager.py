"""Model ▸ Manage models…: list installed models with what a photographer wants to know (made from what,
for which noise, how good, how fast) and the card's raw details behind a disclosure; import, export,
rename, delete (user models only: shipped ones can never be deleted); "Use shipped default".

The operations are core functions in denoiser.core.model.store (import_model, export, rename, delete,
reset_to_default), the same ones `denoiser models` uses; this dialog only collects names and paths, and
shows any refusal (a taken name, a damaged file) in a message box while staying open.
"""
from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.core.model.kept import UnfinishedRun
from denoiser.core.model.registry import DamagedModel

BENCHMARK = "CBSD68"  # the standard colour test set whose scores the summary quotes
NOISE_WORDS = {15: "light", 25: "medium", 50: "heavy"}


def _store():
    from denoiser.core.model import store as model_store

    return model_store


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def summary_html(entry: Any) -> str:
    """What a photographer wants to know about a model, in plain words."""
    card, t, m = entry.card, entry.card.training, entry.card.metrics
    e = html.escape
    rows = [f"<b>{e(entry.name)}</b>"]
    if entry.builtin:
        rows.append("Shipped with the app: a general model for photos of every kind.")
        images = _number(t.get("train_images"))
        if images:
            rows.append(f"<b>Trained on</b> {images:.0f} varied everyday photos.")
        rows.append("<b>For</b> noise from light to heavy, including real camera noise; Auto sets the strength "
                    "for each photo.")
    elif t.get("base_model"):
        folder = Path(str(t.get("folder", ""))).name or "your folder"
        noisy = t.get("mode") == "noisy"
        trained, held = _number(t.get("train_images")), len(t.get("val_images") or [])
        trained = trained if trained is not None else _number(t.get("images"))
        rows.append(f"Yours: fine-tuned from “{e(str(t['base_model']))}”.")
        kept_out = f" ({held} more kept out of training to measure it)" if held else ""
        rows.append(f"<b>Trained on</b> {f'{trained:.0f} ' if trained else ''}photos in “{e(folder)}”{kept_out}: "
                    f"{'noisy photos, their own noise' if noisy else 'clean photos with added noise'}.")
        sigma = _number(t.get("sigma"))
        if sigma is not None:
            rows.append(f"<b>For</b> noise like that in those photos (measured level {sigma:.1f})." if noisy
                        else f"<b>For</b> noise of strength σ {sigma:.1f}.")
    else:
        rows.append("Yours: imported.")
    rows += _quality_rows(m, len(t.get("val_images") or []), _number(t.get("steps")))
    speed = _number(m.get("s_per_mp_cpu_2threads"))
    if speed:
        rows.append(f"<b>Speed</b> about {speed:.1f} s per megapixel on a 2-core CPU (a 24 MP photo: "
                    f"about {_seconds_or_minutes(speed * 24)}); much faster on a GPU.")
    if card.created:
        rows.append(f"Made {e(card.created[:10])}.")
    return "<br>".join(rows)


def _seconds_or_minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _quality_rows(metrics: dict[str, Any], held_out: int = 0, steps: float | None = None) -> list[str]:
    """How much cleaner: standard test photos with added noise, and (fine-tunes) the user's held-out photos."""
    rows = []
    scores = []
    for key, value in metrics.items():
        found = re.fullmatch(rf"{BENCHMARK}_sigma(\d+)", str(key))
        if found and _number(value) is not None and int(found[1]) in NOISE_WORDS:
            sigma = int(found[1])
            noisy = 20 * math.log10(255 / sigma)  # PSNR of the noisy input at that level
            scores.append(f"{NOISE_WORDS[sigma]} noise {noisy:.1f} → {float(value):.1f} dB")
    if scores:
        rows.append("<b>How good</b> on 68 standard test photos with added noise: " + ", ".join(scores)
                    + " (the higher, the closer to the clean photo).")
    before, after = _number(metrics.get("val_before")), _number(metrics.get("val_after"))
    if before is not None and after is not None:
        gain = after - before
        rows.append(f"<b>How good</b> on {held_out or 'the'} photo{'s' if held_out != 1 else ''} of the folder kept "
                    f"out of training: {abs(gain):.2f} dB {'better' if gain >= 0 else 'worse'} than the model it "
                    f"started from ({before:.2f} → {after:.2f} dB PSNR){rough_sign(held_out, steps)}.")
    return rows


def rough_sign(held_out: int, steps: float | None) -> str:
    """The caveat a small measurement needs: a few held-out photos and a short run say little."""
    if held_out and held_out < 5 or steps is not None and steps < 200:
        what = [f"{held_out} held-out photo{'s' if held_out != 1 else ''}" if held_out else "",
                f"{steps:.0f} training steps" if steps is not None else ""]
        return f"; with {' and '.join(w for w in what if w)} this is a rough sign, not a promise"
    return ""


def details_html(entry: Any) -> str:
    """The card as stored (architecture, every metric and training field), for the curious; values are cut
    before escaping, so no entity is ever cut in half."""
    from denoiser.core.model.store import describe

    card, info = entry.card, describe(entry)
    e = lambda v, n=120: html.escape(str(v)[:n] + ("…" if len(str(v)) > n else ""))  # noqa: E731
    rows = [e(card.description, 400) if card.description else "",
            f"{e(info['architecture'])}, {int(info['parameters']) / 1e6:.2f} M parameters",
            *(f"{e(k)}: {e(v)}" for k, v in card.metrics.items()),
            *(f"{e(k)}: {e(v)}" for k, v in card.training.items()),
            f"heavy-noise expert: {e(info['heavy_expert'] or 'none', 400)}",
            e(entry.path, 400)]
    return "<small>" + "<br>".join(r for r in rows if r) + "</small>"


def run_html(run: UnfinishedRun) -> str:
    from denoiser.core.model.kept import human_size

    what = ("a stopped run's checkpoint: Model ▸ Fine-tune… with this name offers to resume it"
            if run.has_checkpoint else "the settings of a run that never finished")
    return (f"<b>{html.escape(run.name)}</b><br>An unfinished fine-tune: {what}. It takes "
            f"{human_size(run.bytes)}; Delete frees that space.")


class ModelManagerDialog(QDialog):
    models_changed = Signal()
    model_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Manage models")
        self.resize(1000, 560)  # readable at 1366x768; the description has room and scrolls when long
        self.list = QListWidget()
        self.list.setMinimumWidth(240)
        self.list.setMaximumWidth(320)
        self.summary = QLabel()
        self.details = QLabel()
        for label in (self.summary, self.details):
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignTop)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.hide()
        self.disclosure = QToolButton()
        self.disclosure.setText("Technical details")
        self.disclosure.setCheckable(True)
        self.disclosure.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.disclosure.setArrowType(Qt.ArrowType.RightArrow)
        self.disclosure.setAutoRaise(True)
        self.disclosure.toggled.connect(self._toggle_details)
        page = QWidget()
        info = QVBoxLayout(page)
        info.addWidget(self.summary)
        info.addWidget(self.disclosure)
        info.addWidget(self.details)
        info.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(page)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(420)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
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
        top.addWidget(self.list)
        top.addWidget(scroll, 1)
        top.addLayout(side)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(close)
        self.list.currentItemChanged.connect(self._selected)
        self.reload()

    def reload(self, select: str | None = None) -> None:
        from denoiser.core.model.foreign import community_entries
        from denoiser.core.model.kept import human_size, size_of, unfinished_runs
        from denoiser.core.model.registry import damaged_models, list_models

        self.list.clear()
        for entry in list_models():
            item = QListWidgetItem(f"{entry.name}  ({'shipped' if entry.builtin else 'yours'}, "
                                   f"{human_size(size_of(entry.path))})")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            self.list.addItem(item)
            if entry.name == select:
                self.list.setCurrentItem(item)
        for community in community_entries():
            item = QListWidgetItem(f"{community.name}  (community, {human_size(size_of(community.path))})")
            item.setData(Qt.ItemDataRole.UserRole, community)
            self.list.addItem(item)
            if community.name == select:
                self.list.setCurrentItem(item)
        for bad in damaged_models():  # a file that cannot be read: shown with the reason, yours deletable
            item = QListWidgetItem(f"{bad.name}  (damaged, cannot be used, {human_size(size_of(bad.path))})")
            item.setData(Qt.ItemDataRole.UserRole, bad)
            self.list.addItem(item)
        for run in unfinished_runs():  # files the app keeps too: listed with their size, deletable
            item = QListWidgetItem(f"{run.name}  (unfinished fine-tune, {human_size(run.bytes)})")
            item.setData(Qt.ItemDataRole.UserRole, run)
            self.list.addItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self._selected()

    def current(self) -> Any | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    @Slot()
    def _selected(self, *_: object) -> None:
        entry = self.current()
        run, damaged = isinstance(entry, UnfinishedRun), isinstance(entry, DamagedModel)
        community = getattr(entry, "architecture", None) is not None and getattr(entry, "card", 0) is None
        if run:
            self.summary.setText(run_html(entry))
            self.details.setText(f"<small>{html.escape(str(entry.path))}</small>")
        elif damaged:
            fix = ("Reinstall the app to repair it." if entry.builtin else
                   "Delete it, then import or fine-tune it again.")
            self.summary.setText(f"<b>{html.escape(entry.name)}</b> is damaged and cannot be used: "
                                 f"{html.escape(entry.problem)}<br>{fix}")
            self.details.setText(f"<small>{html.escape(str(entry.path))}</small>")
        elif community:
            self.summary.setText(f"<b>{html.escape(entry.name)}</b><br>A community model you imported "
                                 f"({html.escape(entry.architecture)}), used as its authors trained it.")
            self.details.setText(f"<small>{html.escape(str(entry.path))}</small>")
        else:
            self.summary.setText(summary_html(entry) if entry else "No model installed.")
            self.details.setText(details_html(entry) if entry else "")
        self.disclosure.setEnabled(entry is not None)
        user = entry is not None and (run or not entry.builtin)
        self.buttons["delete"].setEnabled(user)  # shipped models can never be renamed or deleted
        self.buttons["rename"].setEnabled(user and not run and not damaged and not community)
        self.buttons["use"].setEnabled(entry is not None and not run and not damaged)
        self.buttons["export"].setEnabled(entry is not None and not run and not damaged and not community)

    @Slot(bool)
    def _toggle_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.disclosure.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _run(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except Exception as exc:
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
        if isinstance(entry, UnfinishedRun):
            from denoiser.core.model.kept import delete_run, human_size

            answer = QMessageBox.question(self, "Delete unfinished fine-tune", f"Delete the unfinished fine-tuning "
                                          f"run “{entry.name}” ({human_size(entry.bytes)})? It cannot be resumed "
                                          "afterwards.")
            if answer == QMessageBox.StandardButton.Yes and self._run("Delete", lambda: delete_run(entry.name)):
                self.reload()
            return
        from denoiser.core.model.foreign import CommunityEntry, delete_foreign

        delete = delete_foreign if isinstance(entry, CommunityEntry) else _store().delete
        answer = QMessageBox.question(self, "Delete model", f"Delete your model “{entry.name}”? This cannot be undone.")
        if answer == QMessageBox.StandardButton.Yes and self._run("Delete", lambda: delete(entry.name)):
            self.reload()
            self.models_changed.emit()
