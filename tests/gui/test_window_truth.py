"""The window tells the truth (issue 22): Auto never previews with a missing strength, Save writes what is on
screen (and says so, in the file too), Cancel answers at once and within a tile, a change made during a run
is previewed after it, and the small things: Enter in Save, a failed open, the model on show."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from guitest_util import TINY_MODEL, write_photo
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

LONG = 120_000  # ms; a generous ceiling on a busy 2-core machine, not a timing assertion


def open_photo(qtbot, window, path: Path):
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
        window.open_path(path)
    return blocker.args[0]


@pytest.fixture
def boxes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, title, text, *a: shown.append((title, text)))
    return shown


def gate(monkeypatch: pytest.MonkeyPatch, name: str) -> threading.Event:
    """Hold jobs.<name> on its worker until the returned event is set (then it runs for real)."""
    import denoiser.gui.jobs as jobs

    real, release = getattr(jobs, name), threading.Event()

    def held(*args, **kwargs):
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, name, held)
    return release


def test_auto_preview_waits_for_the_estimate_instead_of_raising(qtbot, window, photo_path: Path,
                                                                monkeypatch) -> None:
    release = gate(monkeypatch, "estimate")
    loaded = open_photo(qtbot, window, photo_path)
    assert window.controls.sigma() is None and loaded.sigma is None  # Auto, its estimate still running
    window.controls.set_passes(2)  # asks for a preview of the new quality
    qtbot.wait(400)  # past the debounce: the preview must not start without a strength
    assert window.previewer.pending and window.compare.preview is None
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        release.set()
    assert float(blocker.args[0].sigma) == pytest.approx(float(loaded.sigma))  # the Auto strength, once known
    assert "Previewing" not in window.controls.status.text()


def test_save_writes_what_the_view_shows_and_records_it(qtbot, window, photo_path: Path, tmp_path: Path) -> None:
    from denoiser.core.io.photo import load_photo

    open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 10.0)
    with qtbot.waitSignal(window.denoised, timeout=LONG):
        window.denoise()
    with qtbot.waitSignal(window.preview_shown, timeout=LONG):
        window.controls.set_strength(False, 30.0)  # the view now shows a preview at 30
    assert not window.state.result_is_current()
    assert "30.0" in window.state.save_plan() and "first" in window.state.save_plan()
    target = tmp_path / "out.png"
    runs: list = []
    window.denoised.connect(runs.append)
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(target, "png")
    assert [float(r.sigma) for r in runs] == [30.0]  # the whole photo was denoised at the shown strength first
    saved = load_photo(target)
    assert np.abs(saved.pixels - runs[0].photo.pixels).max() <= 1 / 255 + 1e-6
    xmp = saved.xmp.decode()
    assert f'pdn:Model="{TINY_MODEL}"' in xmp and 'pdn:Strength="30.0"' in xmp and 'pdn:Passes="1"' in xmp
    assert window.state.result_is_current() and "Saves the denoised photo" in window.state.save_plan()


def test_cancel_says_cancelling_at_once_and_keeps_saying_it(qtbot, window, photo_path: Path, monkeypatch) -> None:
    from denoiser.core.progress import Cancelled

    started, late = threading.Event(), threading.Event()

    def slow_run(*_args, progress, **_kwargs):
        started.set()
        while not progress.cancelled:
            threading.Event().wait(0.01)
        progress.report(0.5, "tile 2/4")  # the tile in flight finishes and reports
        late.set()
        raise Cancelled

    monkeypatch.setattr("denoiser.gui.jobs.denoise", slow_run)
    open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 20.0)
    window.denoise()
    qtbot.waitUntil(started.is_set, timeout=LONG)
    with qtbot.waitSignal(window.run_cancelled, timeout=LONG):
        window.acts.cancel.trigger()  # Esc
        assert window.controls.status.text().startswith("Cancelling")  # before any event is processed
        assert window.controls.cancel_button.text() == "Cancelling…"
        assert not window.controls.cancel_button.isEnabled()
    assert late.is_set() and "Cancelled" in window.controls.status.text()
    qtbot.waitUntil(window.controls.denoise_button.isEnabled, timeout=LONG)  # idle again once the job is over


def test_a_real_run_stops_within_one_small_tile(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    open_photo(qtbot, window, write_photo(tmp_path / "big.png", 1100, 1100))
    window.controls.set_strength(False, 20.0)
    tiles: list[str] = []

    def on_worker(_fraction: float, message: str) -> None:  # runs on the worker, right after each tile
        if message.startswith("tile"):
            tiles.append(message)
            window._run_job.token.cancel()

    start = window.compute.start
    monkeypatch.setattr(window.compute, "start", lambda job: (
        job.signals.progress.connect(on_worker, Qt.ConnectionType.DirectConnection), start(job))[1])
    with qtbot.waitSignal(window.run_cancelled, timeout=LONG):
        window.denoise()
    assert len(tiles) == 1  # the next tile never started
    assert int(tiles[0].split("/")[1]) >= 9  # interactive tiles of at most 512 px: 1100 px takes 3 x 3
    assert window.result is None


def test_a_change_during_a_run_is_previewed_after_it(qtbot, window, photo_path: Path, monkeypatch) -> None:
    open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 10.0)
    release = gate(monkeypatch, "denoise")
    window.denoise()
    window.controls.set_strength(False, 35.0)  # while the run holds the compute lane
    qtbot.wait(400)
    assert window.previewer.pending
    shown: list = []
    window.preview_shown.connect(shown.append)
    with qtbot.waitSignal(window.denoised, timeout=LONG):
        release.set()
    qtbot.waitUntil(lambda: bool(shown), timeout=LONG)
    assert float(shown[0].sigma) == 35.0


def test_enter_in_the_save_dialog_saves_and_never_reopens_browse(qtbot, photo_path: Path, monkeypatch) -> None:
    from denoiser.gui.dialogs.save_dialog import SaveDialog

    browsed: list[bool] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: browsed.append(True) or ("", ""))
    dlg = SaveDialog(None, photo_path, "JPEG", 8, plan="Saves the denoised photo: model m, strength σ 12.0")
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.path_edit.setFocus()
    qtbot.keyClick(dlg.path_edit, Qt.Key.Key_Return)
    assert browsed == [] and dlg.result() == QDialog.DialogCode.Accepted
    assert "strength σ 12.0" in dlg.plan.text()


def test_a_failed_open_leaves_no_stale_text_and_no_denoise_button(qtbot, window, tmp_path: Path, boxes) -> None:
    bad = tmp_path / "trunc.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with qtbot.waitSignal(window.failed, timeout=LONG):
        window.open_path(bad)
    assert "Opening" not in window.controls.status.text() and "trunc.jpg" in window.controls.status.text()
    assert not window.controls.denoise_button.isEnabled() and not window.acts.denoise.isEnabled()


def test_the_model_in_use_is_shown_in_the_status_bar(qtbot, window) -> None:
    assert window.status.model.text() == f"model: {TINY_MODEL}"


def test_the_compute_and_analysis_lanes_never_share_a_denoiser(qtbot, window, photo_path: Path) -> None:
    loaded = open_photo(qtbot, window, photo_path)
    qtbot.waitUntil(lambda: loaded.estimated, timeout=LONG)
    with qtbot.waitSignal(window.denoised, timeout=LONG):
        window.denoise()
    analysis, compute = window.analysis_cache._denoiser, window.cache._denoiser  # what each lane loaded and ran
    assert analysis is not None and compute is not None
    # each lane's OOM fallback may swap its own device and model only
    assert analysis is not compute and analysis.model is not compute.model
