"""Fixtures for window tests: offscreen Qt, an isolated data folder with a tiny seeded model, isolated
QSettings, and small synthetic photos with EXIF and an ICC profile."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from guitest_util import TINY_MODEL, make_settings, write_photo


@pytest.fixture(autouse=True)
def fail_on_event_loop_exceptions(monkeypatch: pytest.MonkeyPatch):
    """Any exception that reaches the Qt event loop (a slot or lambda that raised: Qt prints it and carries
    on, so the user sees a traceback in the terminal and a stuck status line) fails the test."""
    import sys
    import traceback

    caught: list[str] = []

    def record(kind, value, tb) -> None:
        caught.append("".join(traceback.format_exception(kind, value, tb)))

    monkeypatch.setattr(sys, "excepthook", record)
    yield caught
    assert not caught, "exception(s) reached the Qt event loop:\n" + "\n".join(caught)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.network import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)
    model = build_model(cfg)
    with torch.no_grad():  # an untrained model may be the identity (zero last layer): make it change pixels
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp("models") / f"{TINY_MODEL}.safetensors"
    save_model(path, model, ModelCard(name=TINY_MODEL, config=cfg, description="tiny test model"))
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_file: Path) -> Path:
    """$DENOISER_DATA_DIR in tmp with the tiny model installed as a user model; no shipped models."""
    root = tmp_path / "data"
    (root / "models").mkdir(parents=True)
    for f in (tiny_model_file, tiny_model_file.with_suffix(".json")):
        shutil.copy(f, root / "models" / f.name)
    monkeypatch.setenv("DENOISER_DATA_DIR", str(root))
    empty = tmp_path / "resources"
    (empty / "models").mkdir(parents=True)
    monkeypatch.setenv("DENOISER_RESOURCES", str(empty))
    return root


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "settings" / "denoiser.ini"


@pytest.fixture
def window(qtbot, data_dir: Path, settings_file: Path):
    from denoiser.gui.main_window import MainWindow

    win = MainWindow(make_settings(settings_file))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.catalogue_loaded, timeout=60_000):
        win.show()
    yield win
    win.close()
    assert win.wait_for_workers(30_000), "a worker lane was still running 30 s after the window closed"
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # deliver the finished jobs' queued signals inside this test, not the next


@pytest.fixture
def photo_path(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "noisy.jpg")
