"""Fine-tune panel: a tiny job through the real core to completion; the new model is then listed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guitest_util import TINY_MODEL
from PIL import Image


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
def dialog(qtbot, data_dir: Path):
    from denoiser.gui.dialogs.finetune_dialog import FinetuneDialog

    dlg = FinetuneDialog(None, TINY_MODEL, "cpu")
    qtbot.addWidget(dlg)
    yield dlg
    dlg.shutdown()


def test_tiny_job_runs_to_completion_and_model_is_listed(qtbot, dialog, photos: Path) -> None:
    from denoiser.core.model.registry import list_models

    dialog.set_folder(str(photos))
    assert dialog.name.text() == "my photos-finetuned"
    qtbot.waitUntil(lambda: dialog.suggestion.text().startswith("Measured"), timeout=60_000)
    dialog.mode.setCurrentIndex(dialog.mode.findData("clean"))
    dialog.steps.setValue(3)
    with qtbot.waitSignal(dialog.model_created, timeout=120_000) as sig:
        dialog.start_btn.click()
        assert dialog.cancel_btn.isEnabled() and not dialog.start_btn.isEnabled() and not dialog.browse_btn.isEnabled()
    assert sig.args == ["my photos-finetuned"]
    assert dialog.steps_x == [1, 2, 3] and all(np.isfinite(dialog.losses))
    assert dialog.curve.getData()[0] is not None and len(dialog.curve.getData()[0]) == 3
    assert not dialog.after.pixmap().isNull() and not dialog.before.pixmap().isNull()
    assert "is ready" in dialog.phase.text() and dialog.start_btn.isEnabled()
    said = dialog.phase.text() + dialog.status.text()
    assert "dB" in said and "val_" not in said and "psnr" not in said.lower()  # words, not the card's keys
    entry = {e.name: e for e in list_models()}["my photos-finetuned"]
    assert entry.card.training["base_model"] == TINY_MODEL and entry.card.training["mode"] == "clean"


def test_cancel_then_resume_finishes_the_same_run(qtbot, dialog, photos: Path) -> None:
    dialog.folder.setText(str(photos))
    dialog.name.setText("resumable")
    dialog.mode.setCurrentIndex(dialog.mode.findData("noisy"))
    dialog.steps.setValue(4)
    first: list[int] = []
    plot_step = dialog._step

    def cancel_on_first_step(info) -> None:
        first.append(info.step)
        plot_step(info)
        dialog.cancel()

    dialog._step = cancel_on_first_step  # connected when the worker is made, i.e. before it runs
    dialog.start_btn.click()
    # "Stopped" arrives first, the job's end (which enables Resume) just after
    qtbot.waitUntil(lambda: "Stopped" in dialog.phase.text() and dialog.job is None, timeout=120_000)
    assert "Resume continues" in dialog.phase.text()
    assert dialog.resume_btn.isEnabled() and first[0] == 1
    dialog._step = plot_step
    with qtbot.waitSignal(dialog.model_created, timeout=120_000):
        dialog.resume_btn.click()
    assert dialog.last_result.steps == 4 and not dialog.resume_btn.isEnabled()


def test_a_bad_folder_is_reported_in_the_panel(qtbot, dialog, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    dialog.folder.setText(str(tmp_path / "empty"))
    dialog.name.setText("x")
    dialog.steps.setValue(1)
    dialog.start_btn.click()
    qtbot.waitUntil(lambda: "Could not fine-tune" in dialog.phase.text() and dialog.start_btn.isEnabled(),
                    timeout=60_000)  # the error arrives first, the job's end (which enables Start) just after
    assert "no images found" in dialog.phase.text()


@pytest.fixture
def noisy_photos(tmp_path: Path) -> Path:
    """Camera-like photos: smooth scenes with spatially correlated noise (blurred Gaussian, std ~2.8), which
    the estimator reads at about 2.5, as it reads real camera noise (Nam25: 2.1-2.3)."""
    import cv2

    rng = np.random.default_rng(3)
    folder = tmp_path / "camera"
    folder.mkdir()
    y, x = np.mgrid[0:256, 0:256]
    for i in range(3):
        scene = np.stack([x / 256, y / 256, 0.5 + 0 * x], 2) * 180 + 30 + 10 * i
        noise = cv2.GaussianBlur(rng.normal(0, 8, scene.shape), (0, 0), 0.8)
        Image.fromarray(np.clip(scene + noise, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_where_clean_and_noisy_folders_measure_alike_the_mode_is_left_to_the_user(qtbot, dialog,
                                                                                 noisy_photos: Path) -> None:
    """Camera noise reading ~2.5 is also what clean photos read (benchmarks/finetune_suggestion.py): the window
    says it cannot tell and keeps the user's mode, instead of calling clean low-ISO photos noisy (issue 30)."""
    dialog.mode.setCurrentIndex(dialog.mode.findData("clean"))
    dialog.set_folder(str(noisy_photos))
    qtbot.waitUntil(lambda: dialog.suggestion.text().startswith("Measured"), timeout=60_000)
    assert dialog.mode.currentData() == "clean" and "cannot tell" in dialog.suggestion.text()


@pytest.mark.parametrize("sigma, mode", [(12.0, "noisy"), (0.5, "clean")])
def test_outside_the_overlap_the_mode_is_suggested(qtbot, dialog, monkeypatch, tmp_path: Path, sigma: float,
                                                  mode: str) -> None:
    import denoiser.gui.jobs as jobs
    from denoiser.core.training.finetune import Suggestion

    monkeypatch.setattr(jobs, "suggest_mode", lambda folder, progress: Suggestion("noisy", sigma, 5, ""))
    other = "clean" if mode == "noisy" else "noisy"
    dialog.mode.setCurrentIndex(dialog.mode.findData(other))
    dialog.set_folder(str(tmp_path))
    qtbot.waitUntil(lambda: dialog.suggestion.text().startswith("Measured"), timeout=60_000)
    assert dialog.mode.currentData() == mode and "suggested" in dialog.suggestion.text()


def test_measuring_the_noise_has_its_own_progress_and_cancel_there_leaves_nothing_to_resume(
        qtbot, dialog, noisy_photos: Path) -> None:
    dialog.folder.setText(str(noisy_photos))
    dialog.name.setText("camera-model")
    dialog.mode.setCurrentIndex(dialog.mode.findData("noisy"))
    dialog.steps.setValue(2)
    from PySide6.QtCore import Qt

    fractions: list[float] = []
    phases: list[str] = []

    def on_worker(fraction: float, message: str) -> None:  # on the worker, as each run of the model starts
        if message.startswith("Measuring"):
            fractions.append(fraction)
            if len(fractions) == 3:
                dialog.job.token.cancel()  # Cancel while the noise is being measured

    def on_gui(_fraction: float, message: str) -> None:
        if message.startswith("Measuring"):
            phases.append(dialog.phase.text())

    start = dialog.runner.start
    dialog.runner.start = lambda job: (job.signals.progress.connect(on_worker, Qt.ConnectionType.DirectConnection),
                                       job.signals.progress.connect(on_gui), start(job))[2]
    dialog.start_btn.click()
    qtbot.waitUntil(lambda: not dialog.running(), timeout=120_000)
    assert fractions == sorted(fractions) and fractions[2] > fractions[0]  # the phase's own progress moves
    assert len(fractions) == 3  # stopped before the next run of the model
    assert phases and all("time budget" in p for p in phases)  # said beside the budget
    assert "nothing to resume" in dialog.phase.text() and not dialog.resume_btn.isEnabled()


def test_a_new_run_never_shows_the_last_runs_crops(qtbot, dialog, photos: Path, tmp_path: Path) -> None:
    dialog.folder.setText(str(photos))
    dialog.name.setText("first")
    dialog.mode.setCurrentIndex(dialog.mode.findData("clean"))
    dialog.steps.setValue(2)
    with qtbot.waitSignal(dialog.model_created, timeout=120_000):
        dialog.start_btn.click()
    assert not dialog.before.pixmap().isNull()
    (tmp_path / "empty").mkdir()
    dialog.folder.setText(str(tmp_path / "empty"))
    dialog.name.setText("second")
    dialog.start_btn.click()
    assert dialog.before.pixmap().isNull() and dialog.after.pixmap().isNull()  # at once, before any step
    qtbot.waitUntil(lambda: not dialog.running(), timeout=60_000)


def test_fine_tuning_from_the_window_runs_on_its_training_lane(qtbot, window) -> None:
    from denoiser.gui.dialogs.finetune_dialog import FinetuneDialog

    window.acts.finetune.trigger()
    dlg = next(d for d in window.dialogs.open_dialogs if isinstance(d, FinetuneDialog))
    assert dlg.runner is window.training_lane and dlg.analysis is window.io
    dlg.close()


def test_the_mode_chosen_is_never_changed_behind_the_users_back(qtbot, dialog, noisy_photos: Path) -> None:
    dialog.show()
    dialog.set_folder(str(noisy_photos))
    qtbot.waitUntil(lambda: dialog.suggestion.text().startswith("Measured"), timeout=60_000)
    dialog.mode.setCurrentIndex(dialog.mode.findData("clean"))  # the user overrides the suggestion
    dialog.suggestion.setText("")
    dialog.folder.setFocus()
    dialog.folder.editingFinished.emit()  # the field loses focus (Start disables it): same folder, no new look
    qtbot.wait(300)
    assert dialog.mode.currentData() == "clean" and dialog.suggestion.text() == ""


def test_the_loss_text_and_the_plot_say_the_same_and_the_result_says_how_it_was_measured(qtbot, dialog) -> None:
    """The text quoted the core's smoothed loss while the plot drew each step's; now both show the plot's
    numbers, and a short run's dB figure says how it was measured and how little it means."""
    from types import SimpleNamespace

    from denoiser.core.training.finetune import StepInfo
    from denoiser.gui.dialogs.finetune_dialog import finished_text

    dialog.job = SimpleNamespace(token=SimpleNamespace(cancelled=False), done=False)
    for step, loss in enumerate((0.5, 0.3, 0.1), 1):
        dialog._step(StepInfo(step, step / 10, loss))
        dialog._progress(step / 10, f"step {step} loss 0.9999 ETA 3 s")
    dialog.job = None
    x, y = dialog.curve.getData()
    assert list(x) == [1, 2, 3] and y[-1] == pytest.approx(0.3)
    assert "loss 0.1000" in dialog.status.text() and "0.3000 (the blue line)" in dialog.status.text()
    assert "0.9999" not in dialog.status.text() + dialog.phase.text()
    res = SimpleNamespace(steps=6, minutes=0.2, val_before=30.0, val_after=32.53, mode="noisy", skipped={})
    text = finished_text(res, held_out=1)
    assert "Measured on crops of 1 held-out photo" in text and "rough sign" in text
