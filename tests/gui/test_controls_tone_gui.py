"""The window's Noise-and-detail sliders (core.inference.controls) and the removed-detail map view (key M)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from guitest_util import write_photo
from PySide6.QtWidgets import QApplication

from denoiser.core.inference.controls import AUTO, Component, Controls

LONG = 120_000  # ms; a generous ceiling on a busy machine, not a timing assertion


def _open_and_denoise(qtbot, window, path: Path):
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG):
        window.open_path(path)
    window.controls.set_strength(False, 25.0)
    with qtbot.waitSignal(window.denoised, timeout=LONG) as blocker:
        window.acts.denoise.trigger()
    return blocker.args[0]


def test_sliders_map_to_controls(qtbot) -> None:
    from denoiser.gui.controls import ControlsPanel

    panel = ControlsPanel()
    qtbot.addWidget(panel)
    assert panel.tone_controls() == Controls() and panel.tone_kwargs() == {}
    with qtbot.waitSignal(panel.tone_changed, timeout=1000):
        panel.tone_sliders["luma"].setValue(40)
    panel.tone_sliders["detail"].setValue(25)
    assert panel.tone_controls() == Controls(luma=Component("scale", 0.4), chroma=AUTO, detail=0.25)
    assert panel.tone_kwargs() == {"controls": panel.tone_controls()}


def test_detail_100_gives_back_the_photo_and_the_saved_file_says_so(qtbot, window, tmp_path) -> None:
    from denoiser.core.io.photo import load_photo

    path = write_photo(tmp_path / "p.png")
    window.controls.tone_sliders["detail"].setValue(100)
    result = _open_and_denoise(qtbot, window, path)
    np.testing.assert_array_equal(result.photo.pixels, load_photo(path).pixels)
    assert result.controls.detail == 1.0 and result.detail_score == 0.0
    target = tmp_path / "out.png"
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(target, "png")
    assert b'pdn:Detail="100%"' in load_photo(target).xmp


def test_moving_a_slider_previews_and_makes_the_result_stale(qtbot, window, tmp_path) -> None:
    result = _open_and_denoise(qtbot, window, write_photo(tmp_path / "p.png", 200, 240))
    assert window.state.result_is_current() and result.detail_map is not None
    assert window.compare.detail_map is result.detail_map
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as blocker:
        window.controls.tone_sliders["chroma"].setValue(0)
    preview = blocker.args[0]
    assert not window.state.result_is_current()  # saving now re-runs the whole photo with the new setting
    assert preview.detail_map is not None and window.compare.preview_detail_map is preview.detail_map
    assert preview.detail_map.rect == preview.patch.rect
    assert window.wait_for_workers(LONG)


def test_key_m_shows_the_removed_detail_map(qtbot, window, tmp_path) -> None:
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


def _camera_photo(path: Path, make: str | None, model: str = "", iso: int = 0) -> Path:
    from guitest_util import noisy_array
    from PIL import Image

    exif = Image.Exif()
    if make:
        exif[0x010F], exif[0x0110] = make, model
        exif.get_ifd(0x8769)[0x8827] = iso
    Image.fromarray(noisy_array()).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


@pytest.fixture
def profile_models(data_dir: Path, tiny_model_file: Path, tmp_path: Path) -> None:
    """A shipped tiny 'default', a fine-tuned 'r5' profile (Canon EOS R5, ISO 3200-6400) and a community DnCNN."""
    import torch

    from denoiser.core.model.file import ModelCard, load_model, save_model
    from denoiser.core.model.foreign import import_foreign

    model, card = load_model(tiny_model_file)
    shipped = Path(os.environ["DENOISER_RESOURCES"]) / "models"
    save_model(shipped / "default.safetensors", model, ModelCard(name="default", config=card.config))
    camera = {"make": "Canon", "model": "Canon EOS R5", "iso_min": 3200, "iso_max": 6400, "photos": 9}
    save_model(data_dir / "models" / "r5.safetensors", model,
               ModelCard(name="r5", config=card.config, training={"mode": "noisy", "camera": camera}))
    g = torch.Generator().manual_seed(0)
    sd = {"model.0.weight": torch.randn(8, 3, 3, 3, generator=g) * 0.02, "model.0.bias": torch.zeros(8),
          "model.2.weight": torch.randn(3, 8, 3, 3, generator=g) * 0.02, "model.2.bias": torch.zeros(3)}
    torch.save(sd, tmp_path / "dncnn.pth")
    import_foreign(tmp_path / "dncnn.pth", "dncnn")


def test_auto_model_uses_the_camera_profile_and_says_so(qtbot, profile_models, window, tmp_path) -> None:
    assert window.controls.model_name() == "auto"  # offered first once a profile exists
    labels = [window.controls.model_combo.itemText(i) for i in range(window.controls.model_combo.count())]
    assert "dncnn  (community)" in labels and "r5  (yours)" in labels
    messages = []
    window.status.bar.messageChanged.connect(messages.append)
    result = _open_and_denoise(qtbot, window, _camera_photo(tmp_path / "r5.jpg", "Canon", "Canon EOS R5", 4000))
    assert result.model_name == "r5"
    assert any("using camera profile r5 (Canon EOS R5, ISO 4000)" in m for m in messages)
    assert _open_and_denoise(qtbot, window, _camera_photo(tmp_path / "x.jpg", None)).model_name == "default"


def test_a_community_model_runs_in_the_window(qtbot, profile_models, window, tmp_path) -> None:
    combo = window.controls.model_combo
    combo.setCurrentIndex(combo.findData("dncnn"))
    result = _open_and_denoise(qtbot, window, _camera_photo(tmp_path / "r5.jpg", "Canon", "Canon EOS R5", 4000))
    assert result.model_name == "dncnn"  # pinned: the matching profile is not used
    assert result.photo.pixels.shape == (96, 128, 3)
