"""The window opens the batch, fine-tune and model-manager dialogs from its menus (imported lazily), reacts
to a new model, and a dialog that fails to open reaches the one error handler."""
from __future__ import annotations

import shutil
from pathlib import Path

from guitest_util import TINY_MODEL
from PySide6.QtWidgets import QMessageBox


def test_batch_menu_opens_a_non_modal_batch_dialog(qtbot, window) -> None:
    from denoiser.gui.dialogs.batch_dialog import BatchDialog

    window.controls.set_passes(4)
    window.acts.batch.trigger()
    dialogs = [d for d in window.dialogs.open_dialogs if isinstance(d, BatchDialog)]
    assert len(dialogs) == 1 and dialogs[0].isVisible() and not dialogs[0].isModal()
    assert dialogs[0].options().passes == 4  # the window's quality setting carries over to the folder job
    assert dialogs[0].passes_combo.currentText().startswith("High")  # and is shown there
    dialogs[0].close()


def test_finetune_menu_and_a_new_model_is_selected_when_the_user_agrees(qtbot, window, data_dir: Path,
                                                                         monkeypatch) -> None:
    from denoiser.gui.dialogs.finetune_dialog import FinetuneDialog

    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    window.acts.finetune.trigger()
    dialogs = [d for d in window.dialogs.open_dialogs if isinstance(d, FinetuneDialog)]
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    for f in (data_dir / "models").glob(f"{TINY_MODEL}.*"):
        shutil.copy(f, data_dir / "models" / f"mine{f.suffix}")
    with qtbot.waitSignal(window.catalogue_loaded, timeout=60_000):
        dialogs[0].model_created.emit("mine")
    assert window.controls.model_name() == "mine"
    dialogs[0].close()


def test_a_dialog_that_cannot_open_shows_an_error_and_the_window_lives_on(qtbot, window, monkeypatch) -> None:
    import denoiser.gui.dialogs.batch_dialog as batch_module

    def broken(*args, **kwargs) -> None:
        raise RuntimeError("batch dialog exploded")

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(batch_module, "BatchDialog", broken)
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, title, text: shown.append((title, text)))
    window.acts.batch.trigger()
    assert shown and shown[0][0] == "Cannot open the batch window" and "exploded" in shown[0][1]
    assert window.isVisible()
