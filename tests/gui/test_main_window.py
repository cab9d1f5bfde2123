"""The main window end to end with a tiny seeded model: open, denoise in the worker, cancel, preview, save,
errors, settings. Everything goes through the same methods the menus and buttons call."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guitest_util import EXIF_MAKE, TINY_MODEL, make_settings, write_photo
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

LONG = 120_000  # ms; a generous ceiling on a busy 2-core machine, not a timing assertion


def open_photo(qtbot, window, path: Path):
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
        window.open_path(path)
    return blocker.args[0]


def run_denoise(qtbot, window):
    with qtbot.waitSignal(window.denoised, timeout=LONG) as blocker:
        window.acts.denoise.trigger()
    return blocker.args[0]


@pytest.fixture
def boxes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Message boxes the window showed, instead of modal dialogs."""
    shown: list[tuple[str, str]] = []

    def record(_parent, title, text, *args, **kwargs):
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "critical", record)
    monkeypatch.setattr(QMessageBox, "information", record)
    monkeypatch.setattr(QMessageBox, "about", lambda _p, title, text: shown.append((title, text)))
    return shown


def test_file_open_menu_loads_in_a_worker(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    photo_path = write_photo(tmp_path / "noisy.png")  # PNG: JPEG chroma subsampling fools the estimator
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(photo_path), ""))
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
        window.acts.open.trigger()
    loaded = blocker.args[0]
    assert "measuring" in window.controls.estimate_label.text()  # shown before the estimate is ready
    qtbot.waitUntil(lambda: loaded.sigma is not None, timeout=LONG)  # then the estimate job fills it in
    assert loaded.photo.source == photo_path
    assert (loaded.photo.width, loaded.photo.height) == (128, 96)
    assert loaded.sigma is not None and float(loaded.sigma) > 5  # the photo carries sigma-20 noise
    assert window.compare.original.size.width() == 128
    assert f"{loaded.sigma:.1f}" in window.controls.estimate_label.text()
    assert f"{loaded.sigma:.1f}" in window.status.noise.text()
    assert "128 × 96" in window.status.size.text() and "8-bit" in window.status.size.text()
    assert str(photo_path.resolve()) in window.settings.recent_files()
    assert [a.text() for a in window.acts.recent_menu.actions()][0] == photo_path.name
    assert window.acts.denoise.isEnabled() and window.acts.save_as.isEnabled()  # Save runs the photo first


def test_several_photos_open_the_first_and_keep_the_rest_in_open_recent(qtbot, window, tmp_path: Path) -> None:
    """A drop of several files, or the desktop file's %F with several photos (the command line too)."""
    from denoiser.gui.app import parse_args

    paths = [write_photo(tmp_path / f"p{i}.png", 40, 48) for i in range(3)]
    assert parse_args([str(p) for p in paths]).image == paths
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
        window.dropEvent(ev)
    assert blocker.args[0].photo.source == paths[0]
    recent = window.settings.recent_files()
    assert recent[:3] == [str(p.resolve()) for p in paths]  # the opened one first, then the others in order
    assert [a.text() for a in window.acts.recent_menu.actions()][1:3] == ["p1.png", "p2.png"]


def test_dropping_a_file_opens_it_and_a_folder_opens_the_batch_window(qtbot, window, photo_path: Path,
                                                                        monkeypatch) -> None:
    def drop(path: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                        Qt.KeyboardModifier.NoModifier)
        window.dropEvent(ev)

    with qtbot.waitSignal(window.photo_loaded, timeout=LONG):
        drop(photo_path)
    folders: list[Path] = []
    monkeypatch.setattr(window.dialogs, "batch", folders.append)
    drop(photo_path.parent)
    assert folders == [photo_path.parent]


def test_denoise_runs_in_the_worker_until_the_result_signal(qtbot, window, photo_path: Path) -> None:
    loaded = open_photo(qtbot, window, photo_path)
    progress: list[float] = []
    window.controls.progress.valueChanged.connect(progress.append)
    result = run_denoise(qtbot, window)
    assert result.model_name == TINY_MODEL
    assert result.photo.pixels.shape == loaded.photo.pixels.shape
    assert result.photo.exif == loaded.photo.exif  # metadata travels with the result
    assert not np.array_equal(result.photo.pixels, loaded.photo.pixels)
    assert result.device_name.startswith("cpu")
    assert window.result is result and window.acts.save_as.isEnabled()
    assert window.compare.result is result.display and window.compare.difference is result.difference
    assert "last run" in window.status.last_run.text() and "cpu" in window.status.device.text()
    assert progress and max(progress) > 0
    qtbot.waitUntil(lambda: not window.controls.progress.isVisible(), timeout=LONG)  # idle again
    assert window.controls.denoise_button.isEnabled()


def test_manual_strength_is_passed_to_the_core(qtbot, window, photo_path: Path) -> None:
    open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 12.5)
    assert float(run_denoise(qtbot, window).sigma) == 12.5
    window.controls.set_strength(True, 12.5)
    qtbot.waitUntil(lambda: window.photo.sigma is not None, timeout=LONG)
    auto = run_denoise(qtbot, window).sigma
    assert auto.is_auto and float(auto) != 12.5 and float(auto) == pytest.approx(float(window.photo.sigma), rel=1e-6)


def test_quality_passes_are_passed_to_the_core(qtbot, window, photo_path: Path) -> None:
    loaded = open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 15.0)
    assert window.controls.passes() == 1
    window.controls.set_passes(4)
    assert window.settings.passes == 4
    result = run_denoise(qtbot, window)
    engine = window.cache.get(TINY_MODEL, "auto")
    expected = engine.denoise(loaded.photo.pixels, 15.0, passes=4)
    assert np.abs(result.photo.pixels - expected).max() < 1e-6
    assert np.abs(result.photo.pixels - engine.denoise(loaded.photo.pixels, 15.0)).max() > 1e-4


def test_cancel_stops_the_run_and_keeps_the_window_usable(qtbot, window, photo_path: Path) -> None:
    open_photo(qtbot, window, photo_path)
    with qtbot.waitSignal(window.run_cancelled, timeout=LONG):
        window.acts.denoise.trigger()
        window.acts.cancel.trigger()  # Esc
    assert window.result is None
    assert "Cancelled" in window.controls.status.text()
    run_denoise(qtbot, window)  # and it still works afterwards
    assert window.result is not None


def test_strength_change_previews_only_the_visible_region(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("denoiser.gui.preview.PROGRESSIVE_MIN_PIXELS", 1000)  # the test view is small
    open_photo(qtbot, window, write_photo(tmp_path / "big.png", 300, 400))
    window.compare.state.set_zoom(4.0)  # 400x300 photo at 400 %: only part of it is visible
    QApplication.processEvents()
    visible = window.compare.visible_image_rect()
    assert visible.width() < 400
    partial = []
    window.preview_partial.connect(partial.append)
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        window.controls.set_strength(False, 30.0)  # debounced: the timer fires once
    preview = blocker.args[0]
    assert len(partial) == 1  # progressive: the centre quarter came first
    centre = partial[0].patch.rect
    assert visible.contains(centre) and centre.width() == visible.width() // 2
    assert float(preview.sigma) == 30.0
    assert preview.patch.rect == visible == window.compare.visible_image_rect()
    assert preview.patch.image.size.width() == visible.width()
    assert window.compare.preview is preview.patch
    assert window.result is None  # a preview is not a result: nothing to save yet

    # the previews measured this machine's speed; a region predicted to be quick comes in one pass
    assert window.previewer.seconds_per_mp is not None and window.previewer.seconds_per_mp > 0
    window.previewer.seconds_per_mp = 1e-3
    partial.clear()
    with qtbot.waitSignal(window.preview_shown, timeout=LONG):
        window.controls.set_strength(False, 20.0)
    assert partial == []
    window.previewer.seconds_per_mp = 1e6  # and one predicted to be slow shows the centre first again
    with qtbot.waitSignal(window.preview_shown, timeout=LONG):
        window.controls.set_strength(False, 25.0)
    assert len(partial) == 1


def test_save_keeps_metadata_and_never_touches_the_original(qtbot, window, photo_path: Path) -> None:
    original_bytes = photo_path.read_bytes()
    open_photo(qtbot, window, photo_path)
    run_denoise(qtbot, window)
    from denoiser.gui.dialogs.save_dialog import suggested_path

    target = suggested_path(photo_path, "", "jpeg")
    assert target.name == "noisy-denoised.jpg"
    with qtbot.waitSignal(window.saved, timeout=LONG) as blocker:
        window.save_to(target, "jpeg", 90)
    assert blocker.args[0] == target
    with Image.open(target) as im:
        assert im.getexif().get(0x010F) == EXIF_MAKE
        assert im.info.get("icc_profile")
        assert im.size == (128, 96)
    assert photo_path.read_bytes() == original_bytes
    assert suggested_path(photo_path, "", "jpeg").name == "noisy-denoised-2.jpg"  # never an existing file


def test_saving_over_the_original_is_refused_with_a_message(qtbot, window, photo_path: Path, boxes) -> None:
    original_bytes = photo_path.read_bytes()
    open_photo(qtbot, window, photo_path)
    run_denoise(qtbot, window)
    with qtbot.waitSignal(window.failed, timeout=LONG):
        window.save_to(photo_path, "jpeg", 90, overwrite=True)
    assert boxes and boxes[-1][0] == "Cannot save"
    assert photo_path.read_bytes() == original_bytes


def test_bad_file_shows_a_message_box_and_the_window_survives(qtbot, window, tmp_path: Path, photo_path: Path,
                                                               boxes) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with qtbot.waitSignal(window.failed, timeout=LONG):
        window.open_path(bad)
    assert len(boxes) == 1
    title, text = boxes[0]
    assert title == "Cannot open photo" and "broken.jpg" in text
    assert window.isVisible() and window.photo is None
    open_photo(qtbot, window, photo_path)  # still usable
    assert window.photo is not None


def test_missing_device_is_a_clear_error(qtbot, window, photo_path: Path, boxes) -> None:
    open_photo(qtbot, window, photo_path)
    window.controls.device_combo.addItem("CUDA GPU 7", "cuda:7")
    window.controls.device_combo.setCurrentIndex(window.controls.device_combo.count() - 1)
    with qtbot.waitSignal(window.failed, timeout=LONG):
        window.acts.denoise.trigger()
    assert boxes[-1][0] == "Denoising failed" and "cuda:7" in boxes[-1][1]
    window.controls.device_combo.setCurrentIndex(0)
    run_denoise(qtbot, window)


def test_settings_persist_across_a_new_window(qtbot, window, photo_path: Path, settings_file: Path) -> None:
    from denoiser.gui.main_window import MainWindow

    open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 22.5)
    window.controls.set_passes(8)
    window.compare.set_mode("split")
    window.resize(720, 520)  # fits the offscreen screen (restoreGeometry clamps to it)
    window.close()
    second = MainWindow(make_settings(settings_file))
    qtbot.addWidget(second)
    with qtbot.waitSignal(second.catalogue_loaded, timeout=LONG):
        second.show()
    assert second.controls.sigma() == 22.5 and second.controls.passes() == 8
    assert second.compare.mode.value == "split"
    assert second.controls.model_name() == TINY_MODEL and second.controls.device() == "auto"
    assert second.settings.recent_files() == [str(photo_path.resolve())]
    assert second.settings.last_folder == str(photo_path.parent)
    assert (second.width(), second.height()) == (720, 520)
    second.close()


def test_about_shows_version_model_card_and_device(qtbot, window, boxes) -> None:
    from denoiser import __version__

    box = window.dialogs.about_box()
    text = box.text()
    assert __version__ in text and TINY_MODEL in text and "tiny test model" in text and "cpu" in text
    assert "{" not in text and "[" not in text  # no raw dump of the card: its fields are behind Show Details…
    assert "architecture: unet" in box.detailedText().lower() and "\n" in box.detailedText()
    box.deleteLater()


@pytest.mark.parametrize("answer", [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No])
def test_a_new_fine_tuned_model_is_used_only_when_the_user_says_so(qtbot, window, data_dir: Path,
                                                                     tiny_model_file: Path, monkeypatch,
                                                                     answer) -> None:
    import shutil

    for f in (tiny_model_file, tiny_model_file.with_suffix(".json")):
        shutil.copy(f, data_dir / "models" / f"mine{f.suffix}")
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a: asked.append(text) or answer)
    with qtbot.waitSignal(window.catalogue_loaded, timeout=LONG):
        window.dialogs._model_created("mine")
    assert len(asked) == 1 and "mine" in asked[0] and TINY_MODEL in asked[0]
    expected = "mine" if answer == QMessageBox.StandardButton.Yes else TINY_MODEL
    assert window.controls.model_name() == expected and window.settings.model == expected
    assert window.status.model.text() == f"model: {expected}"  # the model in use is always on show
    assert "mine" in [window.controls.model_combo.itemData(i) for i in range(window.controls.model_combo.count())]


def test_a_saved_device_that_is_gone_is_reported_once(qtbot, data_dir: Path, settings_file: Path, boxes) -> None:
    from denoiser.gui.main_window import MainWindow
    from denoiser.gui.settings import AppSettings

    AppSettings(make_settings(settings_file)).device = "cuda:3"
    win = MainWindow(make_settings(settings_file))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.catalogue_loaded, timeout=LONG):
        win.show()
    assert boxes and boxes[0][0] == "Device not available" and "cuda:3" in boxes[0][1]
    assert win.controls.device() == "auto" and win.settings.device == "auto"
    win.close()


def test_closing_during_a_run_hides_at_once_and_cancels_behind_it(qtbot, window, photo_path: Path,
                                                                  monkeypatch) -> None:
    import threading

    from denoiser.core.progress import Cancelled

    started, seen = threading.Event(), {}

    def slow_run(*_args, progress, **_kwargs):
        started.set()
        while True:
            try:
                progress.check_cancelled()
            except Cancelled:
                seen["visible when the cancel arrived"] = window.isVisible()
                raise
            threading.Event().wait(0.01)

    monkeypatch.setattr("denoiser.gui.jobs.denoise", slow_run)
    open_photo(qtbot, window, photo_path)
    window.controls.set_strength(False, 20.0)
    window.acts.denoise.trigger()
    job = window._run_job
    qtbot.waitUntil(started.is_set, timeout=LONG)
    window.close()
    assert not window.isVisible() and job.token.cancelled
    assert window.wait_for_workers(LONG)  # bounded wait for every lane; no thread outlives it
    assert job.done and all(lane.idle() for lane in window.lanes())
    assert seen == {"visible when the cancel arrived": False}  # the window went first, then the run stopped


def test_macos_file_open_event_opens_the_photo(qtbot, window, photo_path: Path) -> None:
    from PySide6.QtGui import QFileOpenEvent

    from denoiser.gui.app import file_open_filter

    app = QApplication.instance()
    opener = file_open_filter(window)
    app.installEventFilter(opener)
    try:
        with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
            QApplication.sendEvent(app, QFileOpenEvent(str(photo_path)))
        assert blocker.args[0].photo.source == photo_path
    finally:
        app.removeEventFilter(opener)
