"""Model manager dialog: lists models with cards, protects shipped ones, calls the core and reports back."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from guitest_util import TINY_MODEL


@pytest.fixture
def dialog(qtbot, data_dir: Path):  # noqa: ANN001, ANN201
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    return dlg


def test_lists_user_models_with_their_card(dialog) -> None:  # noqa: ANN001
    assert dialog.list.count() == 1
    assert dialog.current().name == TINY_MODEL
    assert "tiny test model" in dialog.details.text()
    assert dialog.buttons["delete"].isEnabled() and dialog.buttons["rename"].isEnabled()


def test_delete_goes_through_the_core_and_signals_a_change(qtbot, dialog, data_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(dialog.models_changed, timeout=5000):
        dialog.buttons["delete"].click()
    assert not (data_dir / "models" / f"{TINY_MODEL}.safetensors").exists()
    assert dialog.list.count() == 0 and not dialog.buttons["delete"].isEnabled()


def test_a_refused_rename_is_shown_and_nothing_changes(qtbot, dialog, data_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    import shutil

    for f in (data_dir / "models").glob(f"{TINY_MODEL}.*"):
        shutil.copy(f, data_dir / "models" / f"other{f.suffix}")
    dialog.reload(TINY_MODEL)
    shown: list[str] = []
    monkeypatch.setattr("denoiser.gui.dialogs.model_manager.QInputDialog.getText", lambda *a, **k: ("other", True))
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, _t, text: shown.append(text))
    changed: list[bool] = []
    dialog.models_changed.connect(lambda: changed.append(True))
    dialog.buttons["rename"].click()
    assert len(shown) == 1 and "other" in shown[0] and not changed  # the core refused: 'other' is taken
    assert dialog.current().name == TINY_MODEL
    assert (data_dir / "models" / f"{TINY_MODEL}.safetensors").exists()


def test_the_shipped_model_is_described_in_plain_words_with_details_behind_a_disclosure(
        qtbot, data_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    monkeypatch.setenv("DENOISER_RESOURCES", str(Path(__file__).resolve().parents[2] / "resources"))
    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    shipped = next(i for i in range(dlg.list.count()) if dlg.list.item(i).data(Qt.ItemDataRole.UserRole).builtin)
    dlg.list.setCurrentRow(shipped)
    summary = dlg.summary.text()
    for raw in ("CBSD68_sigma", "val_", "GFLOP", "s_per_mp", "{'", "&#"):
        assert raw not in summary  # no card keys, no config dicts, no half-cut entities
    assert "Trained on" in summary and "medium noise" in summary and "dB" in summary and "per megapixel" in summary
    assert not dlg.details.isVisible()
    dlg.disclosure.click()
    assert dlg.details.isVisible() and "CBSD68_sigma25" in dlg.details.text()
    assert all(e.endswith(";") for e in re.findall(r"&[#\w]*;?", dlg.details.text()))  # every entity complete
