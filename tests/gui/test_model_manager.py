"""Model manager dialog: lists models with cards, protects shipped ones, calls the core and reports back."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from guitest_util import TINY_MODEL
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox


@pytest.fixture
def dialog(qtbot, data_dir: Path):
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    return dlg


def test_lists_user_models_with_their_card(dialog) -> None:
    assert dialog.list.count() == 1
    assert dialog.current().name == TINY_MODEL
    assert "tiny test model" in dialog.details.text()
    assert dialog.buttons["delete"].isEnabled() and dialog.buttons["rename"].isEnabled()


def test_delete_goes_through_the_core_and_signals_a_change(qtbot, dialog, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(dialog.models_changed, timeout=5000):
        dialog.buttons["delete"].click()
    assert not (data_dir / "models" / f"{TINY_MODEL}.safetensors").exists()
    assert dialog.list.count() == 0 and not dialog.buttons["delete"].isEnabled()


def test_a_damaged_model_file_is_shown_and_can_be_deleted(qtbot, data_dir: Path, monkeypatch) -> None:
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    (data_dir / "models" / "broken.safetensors").write_bytes(b"\x00" * 40)
    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    rows = [dlg.list.item(i).text() for i in range(dlg.list.count())]
    assert "broken  (damaged, cannot be used, 40 bytes)" in rows  # with its size, as every kept file
    dlg.list.setCurrentRow(rows.index("broken  (damaged, cannot be used, 40 bytes)"))
    assert "is damaged and cannot be used" in dlg.summary.text() and "broken.safetensors" in dlg.summary.text()
    assert dlg.buttons["delete"].isEnabled()
    assert not any(dlg.buttons[k].isEnabled() for k in ("use", "export", "rename"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dlg.buttons["delete"].click()
    assert not (data_dir / "models" / "broken.safetensors").exists()
    assert [dlg.list.item(i).text() for i in range(dlg.list.count())] == rows[:1]


def test_a_refused_rename_is_shown_and_nothing_changes(qtbot, dialog, data_dir: Path, monkeypatch) -> None:
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
        qtbot, data_dir: Path, monkeypatch) -> None:
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


def test_the_manager_lists_every_kept_file_with_its_size_and_deletes_a_stopped_run(
        qtbot, data_dir: Path, monkeypatch) -> None:
    """Issue 30 item 6: a stopped fine-tune's checkpoint is listed with its size and deletable."""
    from PySide6.QtWidgets import QMessageBox

    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    run = data_dir / "runs" / "holiday"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"\0" * 1_200_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert all(" kB" in t or " MB" in t for t in texts)  # every kept file with its size
    row = next(i for i, t in enumerate(texts) if "holiday" in t)
    assert "1.2 MB" in texts[row] and "unfinished" in texts[row]
    dialog.list.setCurrentRow(row)
    assert dialog.buttons["delete"].isEnabled() and not dialog.buttons["use"].isEnabled()
    dialog.buttons["delete"].click()
    assert not run.exists()
    assert not any("holiday" in dialog.list.item(i).text() for i in range(dialog.list.count()))


def test_a_fine_tune_says_how_many_photos_trained_and_how_little_a_short_run_proves() -> None:
    """'Trained on 6 photos' was said when 5 were trained and 1 held out; +2.53 dB after 6 steps had no caveat."""
    from types import SimpleNamespace

    from denoiser.gui.dialogs.model_manager import summary_html

    card = SimpleNamespace(training={"base_model": "default", "folder": "/p/holiday", "mode": "noisy", "images": 6,
                                     "train_images": 5, "val_images": ["a.jpg"], "steps": 6},
                           metrics={"val_before": 30.0, "val_after": 32.53}, created="")
    text = summary_html(SimpleNamespace(name="mine", builtin=False, card=card))
    assert "Trained on</b> 5 photos" in text and "1 more kept out of training" in text
    assert "on 1 photo of the folder kept out of training: 2.53 dB better" in text
    assert "1 held-out photo and 6 training steps this is a rough sign" in text


def test_a_community_model_is_listed_with_its_size_and_deletable(qtbot, data_dir: Path, tmp_path: Path,
                                                                  monkeypatch) -> None:
    """Every file the app keeps: an imported community model too (it was missing from the window's list)."""
    import torch

    from denoiser.core.model.foreign import foreign_cards, import_foreign
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    g = torch.Generator().manual_seed(0)
    sd = {"model.0.weight": torch.randn(8, 3, 3, 3, generator=g) * 0.02, "model.0.bias": torch.zeros(8),
          "model.2.weight": torch.randn(3, 8, 3, 3, generator=g) * 0.02, "model.2.bias": torch.zeros(3)}
    torch.save(sd, tmp_path / "dncnn.pth")
    import_foreign(tmp_path / "dncnn.pth", "dncnn")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    row = next(i for i, t in enumerate(texts) if t.startswith("dncnn"))
    assert "community" in texts[row] and " kB" in texts[row]
    dialog.list.setCurrentRow(row)
    assert "community model you imported" in dialog.summary.text()
    assert dialog.buttons["delete"].isEnabled() and not dialog.buttons["rename"].isEnabled()
    dialog.buttons["delete"].click()
    assert "dncnn" not in foreign_cards()
