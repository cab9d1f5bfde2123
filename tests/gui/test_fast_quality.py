"""Quality *Fast* in the window and the batch window (issue 34 part 5): it runs the model's INT8 build (the engine
the lane holds, the result, the status line and the saved file's XMP say so), it is offered only where it can
run (a model with an INT8 build beside it, ONNX Runtime, the CPU), its tooltip gives the measured cost, and a
panel on Fast whose model has no INT8 build moves to Standard and says why."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from guitest_util import TINY_MODEL, write_photo
from PySide6.QtCore import Qt

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from denoiser.gui.quality import CHOICES, FAST, STANDARD, Quality, int8_unavailable

LONG = 120_000  # ms; a generous ceiling on a busy 2-core machine, not a timing assertion
INT8_MODEL = "tiny-int8"
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.fixture(scope="session")
def int8_model_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A tiny model with an INT8 build beside it (core.inference.quantized.build_int8, as packaging does)."""
    from denoiser.core.inference.quantized import build_int8, int8_path
    from denoiser.core.model.file import ModelCard, save_model
    from tests.conftest import make_tiny_model
    from tests.core.test_quantized import smooth_crops

    path = tmp_path_factory.mktemp("int8-model") / f"{INT8_MODEL}.safetensors"
    model = make_tiny_model(5)
    save_model(path, model, ModelCard(name=INT8_MODEL, config=model.config, description="tiny INT8 test model"),
               half=False)
    build_int8(path, smooth_crops(6), int8_path(path))
    return [path, path.with_suffix(".json"), int8_path(path)]


@pytest.fixture
def data_dir(data_dir: Path, int8_model_files: list[Path]) -> Path:
    """The window's data folder (conftest) with the INT8-built model installed beside the tiny one (none)."""
    for f in int8_model_files:
        shutil.copy(f, data_dir / "models" / f.name)
    return data_dir


def choose_model(qtbot, window, name: str) -> None:
    combo = window.controls.model_combo
    combo.setCurrentIndex(combo.findData(name))
    assert window.controls.model_name() == name


def fast_item(combo):
    index = next(i for i in range(combo.count()) if combo.itemData(i) == FAST)
    return combo.model().item(index), combo.itemData(index, Qt.ItemDataRole.ToolTipRole)


def open_fixed(qtbot, window, tmp_path: Path, sigma: float = 20.0):
    with qtbot.waitSignal(window.photo_loaded, timeout=LONG) as blocker:
        window.open_path(write_photo(tmp_path / "noisy.png"))
    window.controls.set_strength(False, sigma)
    return blocker.args[0]


def test_fast_runs_the_int8_build_and_every_record_says_so(qtbot, window, tmp_path: Path) -> None:
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.io.photo import load_photo
    from denoiser.gui.jobs import GUI_TILE

    choose_model(qtbot, window, INT8_MODEL)
    item, _tip = fast_item(window.controls.quality_combo)
    assert item.isEnabled()
    loaded = open_fixed(qtbot, window, tmp_path)
    with qtbot.waitSignal(window.preview_shown, timeout=LONG) as shown:
        window.controls.set_quality(FAST)
    assert shown.args[0].precision == "int8" and "INT8" in window.controls.status.text()
    assert window.settings.quality == FAST  # remembered for the next start
    with qtbot.waitSignal(window.denoised, timeout=LONG) as done:
        window.denoise()
    result = done.args[0]
    assert result.precision == "int8" and window.cache.key == (INT8_MODEL, "auto", "int8")
    assert "INT8" in window.status.last_run.text() and "INT8" in window.controls.status.text()
    pixels = loaded.photo.pixels
    int8 = Denoiser.from_name(INT8_MODEL, "cpu", tile=GUI_TILE, precision="int8").denoise(pixels, 20.0)
    fp32 = Denoiser.from_name(INT8_MODEL, "cpu", tile=GUI_TILE).denoise(pixels, 20.0)
    off_int8, off_fp32 = np.abs(result.photo.pixels - int8).max(), np.abs(result.photo.pixels - fp32).max()
    assert off_int8 < 1e-6 < 1e-4 < off_fp32, (off_int8, off_fp32)  # the INT8 build's pixels, not fp32's
    assert "1 pass, INT8" in window.state.save_plan()
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(tmp_path / "fast.png", "png")
    assert 'pdn:Precision="int8"' in load_photo(tmp_path / "fast.png").xmp.decode()

    window.controls.set_quality(STANDARD)  # the panel no longer shows what ran: Save runs fp32 first
    assert not window.state.result_is_current()
    runs: list = []
    window.denoised.connect(runs.append)
    with qtbot.waitSignal(window.saved, timeout=LONG):
        window.save_to(tmp_path / "standard.png", "png")
    assert [r.precision for r in runs] == ["fp32"]
    assert 'pdn:Precision="fp32"' in load_photo(tmp_path / "standard.png").xmp.decode()


def test_fast_is_disabled_for_a_model_without_an_int8_build(qtbot, window, tmp_path: Path) -> None:
    choose_model(qtbot, window, INT8_MODEL)
    window.controls.set_quality(FAST)
    assert window.controls.quality() == FAST
    choose_model(qtbot, window, TINY_MODEL)  # a user's model: no INT8 build beside it
    item, tip = fast_item(window.controls.quality_combo)
    assert not item.isEnabled() and "no INT8 build" in tip and TINY_MODEL in tip
    assert window.controls.quality() == STANDARD  # not silently kept: moved, and the panel says why
    assert "no INT8 build" in window.controls.status.text() and "Standard" in window.controls.status.text()
    window.controls.set_quality(FAST)  # asking for it again does not run it
    assert window.controls.quality() == STANDARD
    loaded = open_fixed(qtbot, window, tmp_path)
    assert loaded is not None
    with qtbot.waitSignal(window.denoised, timeout=LONG) as done:
        window.denoise()
    assert done.args[0].precision == "fp32" and window.cache.key == (TINY_MODEL, "auto", "fp32")
    choose_model(qtbot, window, INT8_MODEL)
    assert fast_item(window.controls.quality_combo)[0].isEnabled()


def test_fast_needs_an_int8_runtime_and_the_cpu(window, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from denoiser.gui.jobs import Catalogue

    cat = window.catalogue
    assert int8_unavailable(INT8_MODEL, "auto", cat) is None and int8_unavailable(INT8_MODEL, "cpu", cat) is None
    assert "CPU" in int8_unavailable(INT8_MODEL, "cuda:0", cat)
    gpu = Catalogue(cat.models, ["auto", "cpu", "cuda:0"])  # Auto would run on the GPU there
    assert "CPU" in int8_unavailable(INT8_MODEL, "auto", gpu) and int8_unavailable(INT8_MODEL, "cpu", gpu) is None
    assert "default is not installed" in int8_unavailable("auto", "cpu", cat)  # Auto's fallback, the shipped model
    choose_model(None, window, INT8_MODEL)
    window.controls.set_devices(["auto", "cpu", "cuda:0"], "cpu")  # as on a machine with a GPU
    window.controls.set_quality(FAST)
    assert window.controls.quality() == FAST
    window.controls.device_combo.setCurrentIndex(window.controls.device_combo.findData("cuda:0"))
    item, tip = fast_item(window.controls.quality_combo)
    assert not item.isEnabled() and "CPU" in tip and window.controls.quality() == STANDARD
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name))
    assert int8_unavailable(INT8_MODEL, "cpu", cat) is None  # OpenVINO alone runs it
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnxruntime", "openvino") else real(name))
    assert "OpenVINO or ONNX Runtime" in int8_unavailable(INT8_MODEL, "cpu", cat)


def test_batch_window_runs_fast_only_where_offered(qtbot, data_dir: Path, tmp_path: Path) -> None:
    from denoiser.gui.dialogs.batch_dialog import BatchDialog

    folder = tmp_path / "shoot"
    folder.mkdir()
    write_photo(folder / "a.png")
    dlg = BatchDialog(None, INT8_MODEL, "cpu", folder, FAST)
    qtbot.addWidget(dlg)
    assert (dlg.options().passes, dlg.options().precision) == (1, "int8")
    why = "Fast is not available for tiny-test: it has no INT8 build"
    refused = BatchDialog(None, TINY_MODEL, "cpu", folder, FAST, fast_unavailable=why)
    qtbot.addWidget(refused)
    item, tip = fast_item(refused.passes_combo)
    assert not item.isEnabled() and tip == why and why in refused.passes_combo.toolTip()
    assert (refused.options().passes, refused.options().precision) == (1, "fp32")


def test_the_batch_windows_job_records_the_precision_that_ran(qtbot, data_dir: Path, tmp_path: Path) -> None:
    """What the batch window asks for is what its job runs and what each output's XMP says."""
    from denoiser.core.batch.runner import run_batch
    from denoiser.core.io.photo import load_photo
    from denoiser.gui.dialogs.batch_dialog import BatchDialog

    folder = tmp_path / "shoot"
    folder.mkdir()
    write_photo(folder / "a.png")
    for quality in (FAST, STANDARD):
        dlg = BatchDialog(None, INT8_MODEL, "cpu", folder, quality)
        qtbot.addWidget(dlg)
        dlg.auto_strength.setChecked(False)
        dlg.output_edit.setText(str(tmp_path / f"out-{quality.precision}"))
        done = run_batch(dlg.options()).having("done")
        assert len(done) == 1 and done[0].output is not None
        assert f'pdn:Precision="{quality.precision}"' in load_photo(done[0].output).xmp.decode()
        assert done[0].model == INT8_MODEL + (", INT8" if quality == FAST else "")  # the report's model column


def test_fast_tooltip_gives_the_measured_speed_and_loss() -> None:
    """The figures the tooltip states are those of the committed benchmark results (rounded as shown)."""
    speed = json.loads((RESULTS / "speed_int8.json").read_text())["6mp_runtimes"]
    ship = json.loads((RESULTS / "ship_v13_heavy_expert_int8.json").read_text())  # the model and its expert
    base, cand = ship["baseline_table"]["table"], ship["candidate_table"]["table"]
    assert ship["candidate_table"]["precision"] == "int8" and "precision" not in ship["baseline_table"]
    assert ship["candidate_table"]["expert_sha256"] == ship["baseline_table"]["expert_sha256"]
    assert speed["int8 runtime"] == ship["candidate_table"]["runtime"] == "openvino"  # the runtime the app prefers
    losses = [max(base[k] - cand[k], 0.0) for k in base]  # a set where INT8 scores higher loses nothing
    tip = CHOICES[0][2]
    assert CHOICES[0][0] == FAST and STANDARD != FAST
    assert f"{speed['int8 speed-up fixed']:.1f}×" in tip and f"{speed['int8 speed-up Auto']:.1f}×" in tip
    assert f"{min(losses):.3f}–{max(losses):.3f} dB" in tip
    version = json.loads((RESULTS.parents[1] / "resources" / "models" / "default.json").read_text())["version"]
    assert ship["candidate_table"]["model"] == "resources/models/default.safetensors" and f"model v{version}," in tip


def test_quality_is_remembered_with_its_precision(tmp_path: Path) -> None:
    from guitest_util import make_settings

    from denoiser.gui.settings import AppSettings

    settings = AppSettings(make_settings(tmp_path / "s.ini"))
    assert settings.quality is None  # none chosen: the panel follows gui.quality.default_quality
    settings.quality = FAST
    assert AppSettings(make_settings(tmp_path / "s.ini")).quality == FAST
    settings.q.setValue("denoise/precision", "fp16")  # a hand-edited settings file
    assert settings.quality == Quality(1, "fp32")


def test_the_default_quality_is_fast_where_offered_and_a_choice_is_kept(qtbot, window, settings_file: Path,
                                                                        tmp_path: Path) -> None:
    from guitest_util import make_settings

    from denoiser.gui.dialogs.batch_dialog import BatchDialog
    from denoiser.gui.main_window import MainWindow

    box = window.controls
    assert window.settings.quality is None and box.quality_is_default  # a first start: nothing chosen
    choose_model(qtbot, window, INT8_MODEL)
    assert box.quality() == FAST and box.status.text() == ""  # offered: the default, not a move to announce
    choose_model(qtbot, window, TINY_MODEL)  # no INT8 build: Standard, and back to Fast where it is offered
    assert box.quality() == STANDARD
    choose_model(qtbot, window, INT8_MODEL)
    assert box.quality() == FAST and window.settings.quality is None  # following the default saves nothing
    folder = tmp_path / "shoot"
    folder.mkdir()
    dlg = BatchDialog(None, INT8_MODEL, "cpu", folder, box.quality(), fast_unavailable=window.state.fast_unavailable())
    qtbot.addWidget(dlg)
    assert dlg.options().precision == "int8"  # the batch window starts at the panel's Quality

    standard = box.quality_combo.findData(STANDARD)  # the user picks Standard in the box
    box.quality_combo.setCurrentIndex(standard)
    box.quality_combo.activated.emit(standard)
    assert window.settings.quality == STANDARD and not box.quality_is_default
    choose_model(qtbot, window, TINY_MODEL)
    choose_model(qtbot, window, INT8_MODEL)
    assert box.quality() == STANDARD  # a choice is kept where Fast is offered
    window.settings.sync()

    again = MainWindow(make_settings(settings_file))  # and at the next start
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.catalogue_loaded, timeout=LONG):
        again.show()
    choose_model(qtbot, again, INT8_MODEL)
    assert again.controls.quality() == STANDARD and not again.controls.quality_is_default
    again.close()
    assert again.wait_for_workers(30_000)
