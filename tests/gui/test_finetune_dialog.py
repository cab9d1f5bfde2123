"""Fine-tune panel: a tiny job through the real core to completion; the new model is then listed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from guitest_util import TINY_MODEL


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "my photos"
    folder.mkdir()
    for i in range(3):
        small = np.clip(rng.normal(128, 50, (12, 12, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(small).resize((160, 160), Image.BICUBIC).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def dialog(qtbot, data_dir: Path):  # noqa: ANN001, ANN201
    from denoiser.gui.dialogs.finetune_dialog import FinetuneDialog

    dlg = FinetuneDialog(None, TINY_MODEL, "cpu")
    qtbot.addWidget(dlg)
    yield dlg
    dlg.shutdown()


def test_tiny_job_runs_to_completion_and_model_is_listed(qtbot, dialog, photos: Path) -> None:  # noqa: ANN001
    from denoiser.core.registry import list_models

    dialog.set_folder(str(photos))
    assert dialog.name.text() == "my photos-finetuned"
    qtbot.waitUntil(lambda: dialog.suggestion.text().startswith("Suggested"), timeout=60_000)
    dialog.mode.setCurrentIndex(dialog.mode.findData("clean"))
    dialog.steps.setValue(3)
    with qtbot.waitSignal(dialog.model_created, timeout=120_000) as sig:
        dialog.start_btn.click()
        assert dialog.cancel_btn.isEnabled() and not dialog.start_btn.isEnabled()
    assert sig.args == ["my photos-finetuned"]
    assert dialog.steps_x == [1, 2, 3] and all(np.isfinite(dialog.losses))
    assert dialog.curve.getData()[0] is not None and len(dialog.curve.getData()[0]) == 3
    assert not dialog.after.pixmap().isNull() and not dialog.before.pixmap().isNull()
    assert "is ready" in dialog.status.text() and dialog.start_btn.isEnabled()
    entry = {e.name: e for e in list_models()}["my photos-finetuned"]
    assert entry.card.training["base_model"] == TINY_MODEL and entry.card.training["mode"] == "clean"


def test_cancel_then_resume_finishes_the_same_run(qtbot, dialog, photos: Path) -> None:  # noqa: ANN001
    dialog.folder.setText(str(photos))
    dialog.name.setText("resumable")
    dialog.mode.setCurrentIndex(dialog.mode.findData("noisy"))
    dialog.steps.setValue(4)
    first: list[int] = []
    plot_step = dialog._step

    def cancel_on_first_step(info) -> None:  # noqa: ANN001
        first.append(info.step)
        plot_step(info)
        dialog.cancel()

    dialog._step = cancel_on_first_step  # connected when the worker is made, i.e. before it runs
    dialog.start_btn.click()
    qtbot.waitUntil(lambda: "Stopped" in dialog.status.text(), timeout=120_000)
    assert dialog.resume_btn.isEnabled() and first[0] == 1
    dialog._step = plot_step
    with qtbot.waitSignal(dialog.model_created, timeout=120_000):
        dialog.resume_btn.click()
    assert dialog.last_result.steps == 4 and not dialog.resume_btn.isEnabled()


def test_a_bad_folder_is_reported_in_the_panel(qtbot, dialog, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "empty").mkdir()
    dialog.folder.setText(str(tmp_path / "empty"))
    dialog.name.setText("x")
    dialog.steps.setValue(1)
    dialog.start_btn.click()
    qtbot.waitUntil(lambda: "Could not fine-tune" in dialog.status.text(), timeout=60_000)
    assert "no images found" in dialog.status.text() and dialog.start_btn.isEnabled()
