"""The window's Noise-and-detail sliders (core.tone) and the removed-detail map view (key M)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from denoiser.core.tone import AUTO, Component, Controls
from guitest_util import write_photo

LONG = 120_000  # ms; a generous ceiling on a busy machine, not a timing assertion


def _open_and_denoise(qtbot, window, path: Path):  # noqa: ANN001, ANN202
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG):
        window.open_path(path)
    window.controls.set_strength(False, 25.0)
    with qtbot.waitSignal(window.denoised, timeout=LONG) as blocker:
        window.acts.denoise.trigger()
    return blocker.args[0]


def test_sliders_map_to_controls(qtbot) -> None:  # noqa: ANN001
    from denoiser.gui.controls import ControlsPanel

    panel = ControlsPanel()
    qtbot.addWidget(panel)
    assert panel.tone_controls() == Controls() and panel.tone_kwargs() == {}
    with qtbot.waitSignal(panel.tone_changed, timeout=1000):
        panel.tone_sliders["luma"].setValue(40)
    panel.tone_sliders["detail"].setValue(25)
    assert panel.tone_controls() == Controls(luma=Component("scale", 0.4), chroma=AUTO, detail=0.25)
    assert panel.tone_kwargs() == {"controls": panel.tone_controls()}


def test_detail_100_gives_back_the_photo_and_the_saved_file_says_so(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    from denoiser.core.photo import load_photo

    path = write_photo(tmp_path / "p.png")
    window.controls.tone_sliders["detail"].setValue(100)
    result = _open_and_denoise(qtbot, window, path)
    np.testing.assert_array_equal(result.photo.pixels, load_photo(path).pixels)
    assert result.controls.detail == 1.0 and result.detail_score == 0.0
    target = tmp_path / "out.png"
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(target, "png")
    assert b'pdn:Detail="100%"' in load_photo(target).xmp


def test_moving_a_slider_previews_and_makes_the_result_stale(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    result = _open_and_denoise(qtbot, window, write_photo(tmp_path / "p.png", 200, 240))
    assert window.result_is_current() and result.detail_map is not None
    assert window.compare.detail_map is result.detail_map
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        window.controls.tone_sliders["chroma"].setValue(0)
    preview = blocker.args[0]
    assert not window.result_is_current()  # saving now re-runs the whole photo with the new setting
    assert preview.detail_map is not None and window.compare.preview_detail_map is preview.detail_map
    assert preview.detail_map.rect == preview.patch.rect
    assert window.wait_for_workers(LONG)


def test_key_m_shows_the_removed_detail_map(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    from denoiser.gui.compare_view import Mode

    path = write_photo(tmp_path / "p.png")
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG):
        window.open_path(path)
    action = window.acts.mode_actions[Mode.DETAIL_MAP.value]
    assert action.shortcut().toString() == "M"
    action.trigger()
    assert window.compare.mode == Mode.DETAIL_MAP
    assert "removed-detail map" in window.compare.after_canvas.placeholder  # nothing to show yet
    _open_and_denoise(qtbot, window, path)
    QApplication.processEvents()
    assert window.compare.mode == Mode.DETAIL_MAP and window.compare.detail_map is not None
    assert "Removed detail" in window.compare._detail_map().caption
