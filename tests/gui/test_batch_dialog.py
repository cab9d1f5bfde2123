"""The batch dialog runs a folder job on a worker thread through to its summary."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guitest_util import TINY_MODEL, write_photo
from PIL import Image

from denoiser.gui.dialogs.batch_dialog import COLUMNS, BatchDialog


def make_folder(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        arr = np.clip(120 + rng.normal(0, 20, (40, 56, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"good{k}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "readme.txt").write_text("not a photo")
    return root


def many_photos(folder: Path, count: int) -> Path:
    """`count` small noisy PNGs: a job long enough to be stopped part-way."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k in range(count):
        Image.fromarray(np.clip(120 + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype(np.uint8)).save(
            folder / f"p{k:02d}.png")
    return folder


def table(dlg: BatchDialog) -> dict[str, tuple[str, str]]:
    t = dlg.table
    reason = COLUMNS.index("Reason")
    return {t.item(r, 0).text(): (t.item(r, 1).text(), t.item(r, reason).text()) for r in range(t.rowCount())}


@pytest.fixture
def dialog(qtbot, data_dir: Path, tiny_model_file: Path, tmp_path: Path):
    dlg = BatchDialog(None, str(tiny_model_file), "cpu", make_folder(tmp_path / "shoot"))
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def test_runs_to_summary_with_failures_listed(qtbot, dialog: BatchDialog, tmp_path: Path) -> None:
    assert dialog.output_edit.text() == str(tmp_path / "shoot-denoised")  # proposed next to the input
    assert dialog.start_btn.isEnabled() and not dialog.cancel_btn.isEnabled()
    with qtbot.waitSignal(dialog.batch_finished, timeout=120_000) as blocker:
        dialog.start_btn.click()
        assert dialog.cancel_btn.isEnabled() and not dialog.start_btn.isEnabled()  # GUI thread not blocked
    result = blocker.args[0]
    assert result.counts == {"done": 2, "skipped": 1, "failed": 1}
    rows = table(dialog)
    assert rows["good0.png"][0] == rows["good1.png"][0] == "done"
    assert rows["broken.jpg"][0] == "failed" and rows["broken.jpg"][1]
    assert rows["readme.txt"] == ("skipped", "unsupported file type (.txt)")
    assert dialog.summary.isVisible()
    summary = dialog.summary.text()
    assert "2 cleaned" in summary and "1 failed" in summary and "broken.jpg" in summary
    assert dialog.open_btn.isEnabled() and dialog.start_btn.isEnabled()
    assert sorted(p.name for p in (tmp_path / "shoot-denoised").iterdir()) == ["good0-denoised.png",
                                                                               "good1-denoised.png"]
    assert dialog.overall.value() == dialog.overall.maximum()
    said = dialog.status_label.text() + "\n" + summary
    assert said.count("Finished") == 1 and str(tmp_path / "shoot-denoised") in dialog.status_label.text()


def test_the_batch_window_shows_its_model(dialog: BatchDialog, tiny_model_file: Path) -> None:
    assert dialog.model_label.text() == tiny_model_file.stem and dialog.options().model == str(tiny_model_file)


def test_the_batch_runs_on_the_window_lane_and_closing_the_window_stops_it(qtbot, window, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import threading

    from PySide6.QtCore import Qt

    folder = many_photos(tmp_path / "many", 30)
    window.dialogs.batch(folder)
    dlg = next(d for d in window.dialogs.open_dialogs if isinstance(d, BatchDialog))
    assert dlg.runner is window.batch_lane and dlg.model_label.text() == window.controls.model_name()
    in_file, hold = threading.Event(), threading.Event()

    def on_worker(kind: str, _payload: object) -> None:  # runs on the worker: the first photo waits for the test
        if kind == "file" and not in_file.is_set():
            in_file.set()
            hold.wait(60)

    start = window.batch_lane.start
    monkeypatch.setattr(window.batch_lane, "start", lambda job: (
        job.signals.event.connect(on_worker, Qt.ConnectionType.DirectConnection), start(job))[1])
    dlg.start_btn.click()
    job = dlg.job
    assert in_file.wait(60) and not window.batch_lane.idle()
    window.close()  # cancels the folder job too; it finishes behind the closed window
    hold.set()
    assert job.token.cancelled and window.wait_for_workers(120_000) and job.done
    written = list((tmp_path / "many-denoised").glob("*")) if (tmp_path / "many-denoised").exists() else []
    assert len(written) < 30 and all(not p.name.startswith(".") for p in written)  # stopped, no temp files left


def test_report_saved_after_a_run(qtbot, dialog: BatchDialog, tmp_path: Path) -> None:
    import csv
    import json

    assert not dialog.report_btn.isEnabled() and not dialog.save_report(tmp_path / "early.csv")  # nothing run yet
    with qtbot.waitSignal(dialog.batch_finished, timeout=120_000):
        dialog.start_btn.click()
    assert dialog.report_btn.isEnabled()
    assert dialog.save_report(tmp_path / "rep.csv")
    rows = {r["file"]: r for r in csv.DictReader((tmp_path / "rep.csv").open())}
    assert rows["good0.png"]["status"] == "done" and rows["broken.jpg"]["status"] == "failed"
    assert rows["broken.jpg"]["reason"]
    assert dialog.save_report(tmp_path / "rep.json")
    data = json.loads((tmp_path / "rep.json").read_text())
    assert data["summary"]["failed"] == 1 and len(data["files"]) == 4
    assert dialog.save_report(tmp_path / "rep.txt") and (tmp_path / "rep.txt.csv").is_file()  # never a bare .txt
    (tmp_path / "afile").write_text("x")
    assert not dialog.save_report(tmp_path / "afile" / "rep.csv")  # parent is a file: said, not raised
    assert "Could not save the report" in dialog.status_label.text()


def test_second_run_skips_done_files(qtbot, dialog: BatchDialog) -> None:
    with qtbot.waitSignal(dialog.batch_finished, timeout=120_000):
        dialog.start_btn.click()
    with qtbot.waitSignal(dialog.batch_finished, timeout=120_000) as blocker:
        dialog.start_btn.click()
    assert blocker.args[0].counts == {"done": 0, "skipped": 3, "failed": 1}
    assert table(dialog)["good0.png"] == ("skipped", "output exists")


def test_output_inside_input_is_refused_in_place(qtbot, dialog: BatchDialog, tmp_path: Path) -> None:
    dialog.output_edit.setText(str(tmp_path / "shoot" / "out"))
    dialog.start_btn.click()
    qtbot.waitUntil(lambda: not dialog.running(), timeout=30_000)
    assert "inside" in dialog.summary.text() and dialog.summary.isVisible()
    assert not (tmp_path / "shoot" / "out").exists()
    assert dialog.start_btn.isEnabled()


def test_options_follow_the_widgets(dialog: BatchDialog) -> None:
    dialog.recursive.setChecked(True)
    dialog.include_edit.setText("*.jpg, *.png")
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("tiff"))
    dialog.auto_strength.setChecked(False)
    dialog.strength.setValue(30)
    assert dialog.options().passes == 1  # the dialog was opened without a window's Quality
    from denoiser.gui.controls import select_quality
    from denoiser.gui.quality import Quality

    select_quality(dialog.passes_combo, Quality(8))
    opts = dialog.options()
    assert opts.recursive and opts.include == ("*.jpg", "*.png") and opts.fmt == "tiff"
    assert opts.strength == 30 and opts.device == "cpu" and opts.passes == 8 and opts.precision == "fp32"




def test_cancel_stops_and_says_so(qtbot, data_dir: Path, tiny_model_file: Path, tmp_path: Path) -> None:
    folder = many_photos(tmp_path / "many", 40)
    dlg = BatchDialog(None, str(tiny_model_file), "cpu", folder)
    qtbot.addWidget(dlg)
    dlg.show()
    with qtbot.waitSignal(dlg.batch_finished, timeout=120_000) as blocker:
        dlg.start_btn.click()
        dlg.job.signals.event.connect(lambda kind, p: kind == "file" and p[1].status == "done" and dlg.cancel())
    result = blocker.args[0]
    assert result.cancelled and 1 <= result.counts["done"] < 40
    assert dlg.summary.text().startswith("Stopped") and "resume" in dlg.summary.text()
    statuses = {dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())}
    assert statuses == {"done", "skipped"}
    written = sorted(p.name for p in (tmp_path / "many-denoised").iterdir())
    assert len(written) == result.counts["done"] and all(not n.startswith(".") for n in written)


def test_a_folder_job_takes_the_windows_noise_detail_and_auto_scale(window) -> None:
    """Batch from the window uses what the window shows: the Noise-and-detail sliders and Auto's scale."""
    window.controls.tone_sliders["chroma"].setValue(40)
    window.controls.tone_sliders["detail"].setValue(25)
    window.controls.set_strength(True, 15.0, 1.5)
    window.dialogs.batch(None)
    dlg = next(d for d in window.findChildren(BatchDialog))
    opts = dlg.options()
    assert opts.strength is None and opts.strength_scale == 1.5
    assert opts.controls.chroma.kind == "scale" and abs(opts.controls.chroma.value - 0.4) < 1e-9
    assert abs(opts.controls.detail - 0.25) < 1e-9
    dlg.auto_strength.setChecked(False)
    assert dlg.options().strength_scale == 1.0  # a fixed strength is not scaled


def test_the_batch_window_shows_every_setting_it_uses_and_labels_columns_truthfully(qtbot, window,
                                                                                     tmp_path: Path) -> None:
    """Auto's scale is shown and editable (not silently inherited), the Noise-and-detail settings are shown, and
    the results table says which number is the measured noise and which the strength used."""
    window.controls.tone_sliders["chroma"].setValue(40)
    window.controls.set_strength(True, 15.0, 1.5)
    window.dialogs.batch(None)
    dlg = next(d for d in window.findChildren(BatchDialog))
    assert dlg.auto_strength.isChecked() and dlg.scale.value() == 1.5 and dlg.scale.isEnabled()
    assert "colour 40 %" in dlg.tone_label.text() and "Luminance 100 %" in dlg.tone_label.text()
    assert TINY_MODEL in dlg.model_label.text()
    dlg.scale.setValue(1.2)
    assert dlg.options().strength_scale == 1.2
    folder = tmp_path / "in"
    folder.mkdir()
    write_photo(folder / "a.png", 40, 48)
    dlg.set_input_dir(folder)
    with qtbot.waitSignal(dlg.batch_finished, timeout=120_000) as blocker:
        dlg.start()
    item = blocker.args[0].done[0]
    header = [dlg.table.horizontalHeaderItem(c).text() for c in range(dlg.table.columnCount())]
    measured = dlg.table.item(0, header.index("Measured noise")).text()
    used = dlg.table.item(0, header.index("Strength used")).text()
    assert measured == f"{item.level.base:.1f}"  # the measured noise, not the scaled strength
    assert used == f"Auto × 1.20 = {item.level.sigma:.1f}" and item.level.scale == pytest.approx(1.2)
