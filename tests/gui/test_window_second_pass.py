"""The window, second pass (issue 30): previews that match the panel after Auto's measurement lands, Save
available on open, the detail map's score is what it shows, no key bound twice, the zoom shown and typeable,
the last output folder remembered, a dark theme by default."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guitest_util import TINY_MODEL, write_photo
from PySide6.QtGui import QAction, QPalette

LONG = 120_000  # ms; a generous ceiling on a busy 2-core machine, not a timing assertion


def open_photo(qtbot, window, path: Path):
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
        window.open_path(path)
    loaded = blocker.args[0]
    qtbot.waitUntil(lambda: loaded.estimated, timeout=LONG)
    return loaded


def test_no_two_actions_share_a_key_sequence(window) -> None:
    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for seq in action.shortcuts():
            key = seq.toString()
            assert key not in seen, f"{key} is bound to both {seen[key]!r} and {action.text()!r}"
            seen[key] = action.text()
    assert {"Ctrl+-", "Ctrl++", "Ctrl+Shift+S", "Ctrl+S", "Ctrl+O", "Ctrl+Q"} <= set(seen) and "" not in seen


def test_ctrl_minus_zooms_out(qtbot, window, photo_path: Path) -> None:
    from PySide6.QtCore import Qt

    open_photo(qtbot, window, photo_path)
    window.compare.state.set_zoom(2.0)
    window.activateWindow()
    qtbot.keyClick(window.compare.after_canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.compare.state.zoom == pytest.approx(1.6)


def test_preview_follows_auto_when_its_measurement_lands(qtbot, window, photo_path: Path,
                                                         monkeypatch) -> None:
    """A preview shown at a first estimate is made again when a new measurement lands (the map arriving
    after the quick estimate, or a re-measure for another model): the preview on screen always stands for
    the panel's settings."""
    import denoiser.gui.jobs as jobs

    loaded = open_photo(qtbot, window, photo_path)
    assert window.controls.sigma() is None  # Auto
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        window.controls.tone_sliders["luma"].setValue(90)  # any change asks for a preview
    first = blocker.args[0]
    assert float(first.sigma) == pytest.approx(float(loaded.sigma))
    real = jobs.estimate

    def stronger(*args, **kwargs):
        level = real(*args, **kwargs)
        return level.scaled(1.5)

    monkeypatch.setattr(jobs, "estimate", stronger)
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        window._start_estimate(loaded)  # what a model change (or the catalogue arriving) does
    again = blocker.args[0]
    assert float(again.sigma) == pytest.approx(1.5 * float(first.sigma), rel=1e-3)
    assert window.previewer.on_screen.same_as(window.state.shown_settings())
    assert f"{float(again.sigma):.1f}" in window.controls.status.text()


def test_a_superseded_measurement_is_ignored(qtbot, window, photo_path: Path) -> None:
    loaded = open_photo(qtbot, window, photo_path)
    level = loaded.sigma
    old = window.state.measuring()
    window.state.measuring()  # a newer measurement started
    assert not window.state.measured(loaded, old, level)  # the older one lands: ignored
    assert not loaded.estimated and window.state.shown_settings() is None


def test_save_is_available_on_open_and_writes_the_shown_settings(qtbot, window, photo_path: Path,
                                                                 tmp_path: Path, monkeypatch) -> None:
    from denoiser.core.io.photo import load_photo

    open_photo(qtbot, window, photo_path)
    assert window.acts.save_as.isEnabled() and window.result is None  # before any run
    window.controls.set_strength(False, 22.5)
    target = tmp_path / "saved.png"
    runs: list = []
    window.denoised.connect(runs.append)
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(target, "png")
    assert [float(r.sigma) for r in runs] == [22.5]  # the whole photo was run with the panel's settings
    assert window.state.result_is_current()
    xmp = load_photo(target).xmp.decode()
    assert f'pdn:Model="{TINY_MODEL}"' in xmp and 'pdn:Strength="22.5"' in xmp


def test_save_shortcut_opens_the_dialog_before_any_run(qtbot, window, photo_path: Path,
                                                       monkeypatch) -> None:
    from denoiser.gui.dialogs import save_dialog

    opened: list[str] = []
    monkeypatch.setattr(save_dialog.SaveDialog, "exec", lambda self: opened.append(self.plan.text()) or 0)
    open_photo(qtbot, window, photo_path)
    window.acts.save_as.trigger()
    assert opened and "first" in opened[0]  # it says the whole photo is run first


def magenta_share(image) -> float:
    from denoiser.gui.display import DisplayImage

    assert isinstance(image, DisplayImage)
    q = image.levels[0]
    arr = np.frombuffer(q.constBits(), np.uint8).reshape(q.height(), q.bytesPerLine())
    px = arr[:, : q.width() * (q.bytesPerLine() // q.width())].reshape(q.height(), q.width(), -1)[..., :3]
    magenta = (px[..., 0] == 255) & (px[..., 1] == 0) & (px[..., 2] == 255)
    return 100.0 * float(magenta.mean())


def test_detail_map_caption_is_the_flagged_share_of_what_it_shows(qtbot, window, tmp_path: Path) -> None:
    path = write_photo(tmp_path / "edges.png", 96, 128)
    open_photo(qtbot, window, path)
    window.controls.set_strength(False, 75.0)  # far too strong: it eats the checker's edges
    with qtbot.waitSignal(window.denoised, timeout=LONG) as blocker:
        window.denoise()
    result = blocker.args[0]
    window.compare.set_mode("detail_map")
    share = magenta_share(result.detail_map)
    assert share > 0  # something is flagged, so the comparison means something
    caption = window.compare.after_canvas.left.caption
    assert f"{share:.2f} % of the photo" in caption
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        window.controls.set_strength(False, 70.0)
    preview = blocker.args[0]
    region_share = magenta_share(preview.detail_map.image)
    assert f"{region_share:.2f} % of the previewed region" in window.compare.after_canvas.left.caption


def test_zoom_is_shown_and_typeable(qtbot, window, photo_path: Path) -> None:
    open_photo(qtbot, window, photo_path)
    box = window.acts.zoom_box
    window.compare.state.set_zoom(2.0)
    assert box.lineEdit().text() == "200 %"
    box.lineEdit().setText("150")
    box.lineEdit().returnPressed.emit()
    assert window.compare.state.zoom == pytest.approx(1.5)
    box.lineEdit().setText("banana")
    box.lineEdit().returnPressed.emit()
    assert window.compare.state.zoom == pytest.approx(1.5) and box.lineEdit().text() == "150 %"
    box.lineEdit().setText("Fit")
    box.lineEdit().returnPressed.emit()
    assert window.compare.state.fit


def test_save_dialog_proposes_the_last_output_folder(qtbot, window, tmp_path: Path) -> None:
    from denoiser.gui.dialogs.save_dialog import SaveDialog

    photos, out = tmp_path / "photos", tmp_path / "exports"
    photos.mkdir(), out.mkdir()
    path = write_photo(photos / "a.png")
    open_photo(qtbot, window, path)
    window.controls.set_strength(False, 10.0)
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(out / "first.png", "png")
    open_photo(qtbot, window, write_photo(photos / "b.png", seed=1))
    dlg = SaveDialog(window, window.photo.photo.source, "PNG", 8, window.settings.last_output_folder)
    qtbot.addWidget(dlg)
    assert dlg.path().parent == out and dlg.path().name == "b-denoised.png"


def test_dark_theme_by_default_light_as_an_option(qtbot, window, monkeypatch) -> None:
    from PySide6.QtWidgets import QApplication

    from denoiser.gui import theme

    def lightness() -> int:
        return QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness()

    assert window.settings.theme == "dark" and lightness() < 80
    window.acts.theme_actions["light"].trigger()
    assert window.settings.theme == "light" and lightness() > 180
    monkeypatch.setattr(theme, "system_is_dark", lambda: True)
    window.acts.theme_actions["system"].trigger()
    assert lightness() < 80
    monkeypatch.setattr(theme, "system_is_dark", lambda: False)
    window.set_theme("system")
    assert lightness() > 180
    monkeypatch.setattr(theme, "system_is_dark", lambda: None)  # the system says nothing: dark
    window.set_theme("system")
    assert lightness() < 80 and window.acts.theme_actions["system"].isChecked()
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    monkeypatch.setattr(theme, "system_is_dark", lambda: False)  # the system switches to light while open
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert lightness() > 180
    window.set_theme("dark")


def test_the_panel_speaks_plainly_and_every_control_has_a_tooltip(qtbot, window, photo_path: Path) -> None:
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QGroupBox, QLabel, QSlider

    open_photo(qtbot, window, photo_path)
    panel = window.controls
    for kind in (QSlider, QComboBox, QAbstractButton):
        for widget in panel.findChildren(kind):
            assert widget.toolTip().strip(), f"{kind.__name__} {widget.objectName() or widget} has no tooltip"
    texts = [w.text() for w in panel.findChildren(QLabel)] + [b.title() for b in panel.findChildren(QGroupBox)]
    texts += [window.status.noise.text()]
    assert not [t for t in texts if "σ" in t], texts
    assert "Noise level" in [b.title() for b in panel.findChildren(QGroupBox)]


def test_saved_xmp_and_save_dialog_record_auto_and_fixed_apart(qtbot, window, photo_path: Path,
                                                               tmp_path: Path) -> None:
    """An Auto x1.10 output and a fixed output are told apart in the file and in the Save dialog's words."""
    from denoiser.core.io.photo import load_photo

    loaded = open_photo(qtbot, window, photo_path)
    window.controls.set_strength(True, 15.0, 1.1)
    assert window.state.save_plan().count("Auto × 1.10") == 1
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(tmp_path / "auto.png", "png")
    auto = load_photo(tmp_path / "auto.png").xmp.decode()
    assert 'pdn:StrengthMode="auto"' in auto and 'pdn:StrengthScale="1.1"' in auto
    assert f'pdn:NoiseMapMean="{loaded.sigma.base:.2f}"' in auto and 'pdn:Estimator="' in auto
    sigma = float(loaded.sigma.scaled(1.1))
    assert f'pdn:Strength="{sigma:.1f}"' in auto
    window.controls.set_strength(False, round(sigma * 2) / 2)  # a fixed strength close to Auto's
    assert "(fixed)" in window.state.save_plan()
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(tmp_path / "fixed.png", "png")
    fixed = load_photo(tmp_path / "fixed.png").xmp.decode()
    assert 'pdn:StrengthMode="fixed"' in fixed and "StrengthScale" not in fixed and "NoiseMapMean" not in fixed


def test_the_window_opens_a_phones_heic_and_saves_it_as_heic(qtbot, window, tmp_path: Path) -> None:
    from guitest_util import noisy_array
    from PIL import Image

    import denoiser.core.io.read  # noqa: F401 - registers the HEIF opener
    from denoiser.core.io.photo import load_photo
    from denoiser.gui.dialogs.save_dialog import SaveDialog

    path = tmp_path / "IMG_0001.heic"
    exif = Image.Exif()
    exif[0x010F] = "PhoneCam"
    Image.fromarray(noisy_array()).save(path, "HEIF", quality=95, exif=exif.tobytes())
    loaded = open_photo(qtbot, window, path)
    assert loaded.photo.format == "HEIF" and loaded.estimated
    dlg = SaveDialog(window, path, "HEIF", 8)
    qtbot.addWidget(dlg)
    assert dlg.fmt() == "heif" and dlg.path().name == "IMG_0001-denoised.heic" and dlg.quality.isEnabled()
    window.controls.set_strength(False, 12.0)
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(tmp_path / "out.heic", "heif")
    saved = load_photo(tmp_path / "out.heic")
    assert saved.format == "HEIF" and b"PhoneCam" in saved.exif and b'pdn:Strength="12.0"' in saved.xmp


def test_dialogs_are_readable_at_1366x768(qtbot, window, data_dir: Path) -> None:
    """Issue 30 item 8: the batch table shows at least 8 rows and Manage models gives its description room,
    at sizes that fit a 1366x768 screen."""
    from denoiser.gui.dialogs.batch_dialog import MIN_TABLE_ROWS, BatchDialog
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    batch = BatchDialog(window, TINY_MODEL, "cpu")
    qtbot.addWidget(batch)
    batch.show()
    qtbot.waitExposed(batch)
    assert batch.width() <= 1366 and batch.height() <= 768 - 40
    rows = batch.table.viewport().height() / batch.table.verticalHeader().defaultSectionSize()
    assert rows >= MIN_TABLE_ROWS
    manager = ModelManagerDialog(window)
    qtbot.addWidget(manager)
    manager.show()
    qtbot.waitExposed(manager)
    assert manager.width() <= 1366 and manager.height() <= 768 - 40
    assert manager.summary.width() >= 380  # was squeezed into ~120 px
    assert manager.summary.wordWrap() and not manager.details.isVisible()  # details behind the disclosure
