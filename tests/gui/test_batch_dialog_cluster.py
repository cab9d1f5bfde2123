"""The batch window's "Run on" choice: this computer, local:N or a Dask scheduler (core.batch.cluster)."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.gui.dialogs.batch_dialog import BatchDialog


def _photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for k in range(n):
        Image.fromarray(np.clip(120 + rng.normal(0, 20, (40, 56, 3)), 0, 255).astype(np.uint8)).save(
            folder / f"p{k}.png")
    return folder


@pytest.fixture
def dialog(qtbot, data_dir: Path, tiny_model_file: Path, tmp_path: Path):
    dlg = BatchDialog(None, str(tiny_model_file), "cpu", _photos(tmp_path / "shoot"))
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def test_an_unreachable_scheduler_is_said_in_place_and_nothing_runs(qtbot, dialog: BatchDialog, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    dialog.cluster_edit.setText(address)
    dialog.start_btn.click()
    qtbot.waitUntil(lambda: not dialog.running(), timeout=60_000)
    assert address in dialog.summary.text() and "cannot reach the Dask scheduler" in dialog.summary.text()
    assert not (tmp_path / "shoot-denoised").exists() and dialog.start_btn.isEnabled()


@pytest.mark.slow
def test_a_local_cluster_makes_every_photo(qtbot, dialog: BatchDialog, tmp_path: Path) -> None:
    dialog.cluster_edit.setText("local:1")
    with qtbot.waitSignal(dialog.batch_finished, timeout=240_000) as blocker:
        dialog.start_btn.click()
        assert not dialog.cluster_edit.isEnabled()  # part of the job's settings while it runs
    assert blocker.args[0].counts == {"done": 2, "skipped": 0, "failed": 0}
    assert sorted(p.name for p in (tmp_path / "shoot-denoised").iterdir()) == ["p0-denoised.png", "p1-denoised.png"]
