"""Controls panel: strength in noise-level units or Auto, ETA text, device names, models list."""
from __future__ import annotations

from types import SimpleNamespace

from denoiser.gui.controls import ControlsPanel, device_title, format_eta


def test_eta_and_device_titles() -> None:
    assert format_eta(0.2, 0.5) == "estimating time left…"  # too early to tell
    assert format_eta(10.0, 0.5) == "about 10 s left"
    assert format_eta(60.0, 0.25) == "about 3 min left"
    assert [device_title(d) for d in ("auto", "cpu", "cuda:1", "mps")] == ["Auto", "CPU", "CUDA GPU 1", "MPS"]


def test_strength_is_auto_or_a_noise_level(qtbot) -> None:
    panel = ControlsPanel()
    qtbot.addWidget(panel)
    changes: list[bool] = []
    panel.strength_changed.connect(lambda: changes.append(True))
    assert panel.sigma() is None and panel.slider.isHidden() and not panel.scale_slider.isHidden()
    panel.set_strength(False, 17.5)
    assert panel.sigma() == 17.5 and not panel.slider.isHidden() and panel.scale_slider.isHidden()
    assert panel.slider_label.text() == "17.5"
    assert changes
    from denoiser.core.noise.level import NoiseLevel

    panel.set_estimated_sigma(NoiseLevel.auto(None, mean=12.34))
    assert panel.estimate_label.text() == "measured <small>12.3</small>"
    assert "one level for the whole photo" in panel.estimate_label.toolTip()


def test_with_auto_the_slider_is_a_scale_on_the_noise_map(qtbot) -> None:
    import numpy as np

    from denoiser.core.noise.level import NoiseLevel

    panel = ControlsPanel()
    qtbot.addWidget(panel)
    panel.set_strength(True, 20.0, 1.5)
    assert panel.sigma() is None and panel.strength_scale() == 1.5
    assert panel.slider_label.text() == "× 1.50"
    noise_map = np.full((4, 4), 8.0, np.float32)
    noise_map[:, 2:] = 16.0
    panel.set_estimated_sigma(NoiseLevel.auto(noise_map))
    assert panel.estimate_label.text() == "measured <small>12.0</small>"
    assert "pixel by pixel" in panel.estimate_label.toolTip()


def test_window_runs_auto_scaled_with_its_map(qtbot, window, monkeypatch) -> None:
    """The run and the save use Auto's map times the slider's scale (not one flat number)."""
    import numpy as np

    from denoiser.core.noise.level import NoiseLevel

    noise_map = np.full((8, 8), 6.0, np.float32)
    window.photo = type("P", (), {"sigma": NoiseLevel.auto(noise_map), "estimated": True})()
    window.controls.set_strength(True, 20.0, 2.0)
    shown = window.state.level_shown()
    assert isinstance(shown, NoiseLevel) and abs(float(shown) - 12.0) < 1e-4
    assert shown.map is noise_map and shown.scale == 2.0


def test_quality_offers_the_engine_passes_and_refuses_others(qtbot, tmp_path) -> None:
    from PySide6.QtCore import QSettings

    from denoiser.core.inference.ensemble import PASSES
    from denoiser.gui.settings import AppSettings

    panel = ControlsPanel()
    qtbot.addWidget(panel)
    offered = [panel.quality_combo.itemData(i) for i in range(panel.quality_combo.count())]
    assert tuple(q.passes for q in offered if q.precision == "fp32") == PASSES  # Standard, Better, High, Best
    assert [(q.passes, q.precision) for q in offered if q.precision != "fp32"] == [(1, "int8")]  # Fast
    assert panel.passes() == 1 and panel.precision() == "fp32"  # Standard by default, never Fast
    with qtbot.waitSignal(panel.quality_changed, timeout=1000):
        panel.set_passes(8)
    assert panel.passes() == 8 and "8" in panel.quality_combo.currentText()
    panel.set_passes(3)  # not a choice: back to one pass
    assert panel.passes() == 1 and panel.precision() == "fp32"
    settings = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert settings.passes == 1
    settings.passes = 4
    assert settings.passes == 4
    settings.q.setValue("denoise/passes", "7")  # a hand-edited settings file
    assert settings.passes == 1


def test_models_list_keeps_the_selection_and_handles_none(qtbot) -> None:
    panel = ControlsPanel()
    qtbot.addWidget(panel)
    entries = [SimpleNamespace(name="default", builtin=True), SimpleNamespace(name="mine", builtin=False)]
    panel.set_models(entries, "mine")
    assert panel.model_name() == "mine" and "yours" in panel.model_combo.currentText()
    panel.set_models(entries, "gone")
    assert panel.model_name() == "default"
    panel.set_models([], "")
    assert panel.model_name() is None and not panel.model_combo.isEnabled()
