"""Fixtures for window tests: offscreen Qt, an isolated data folder with a tiny seeded model, isolated
QSettings, and small synthetic photos with EXIF and an ICC profile."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageCms  # noqa: E402

TINY_MODEL = "tiny-test"
EXIF_MAKE = "TestCam"


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from denoiser.core.checkpoint import ModelCard, save_model
    from denoiser.core.model import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)
    path = tmp_path_factory.mktemp("models") / f"{TINY_MODEL}.safetensors"
    save_model(path, build_model(cfg), ModelCard(name=TINY_MODEL, config=cfg, description="tiny test model"))
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


def make_settings(path: Path):  # noqa: ANN201
    from PySide6.QtCore import QSettings

    return QSettings(str(path), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, data_dir: Path, settings_file: Path):  # noqa: ANN001, ANN201
    from denoiser.gui.main_window import MainWindow

    win = MainWindow(make_settings(settings_file))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.catalogue_loaded, timeout=60_000):
        win.show()
    yield win
    win.close()


def noisy_array(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a square, plus seeded Gaussian noise (sigma 20/255), as uint8 RGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w, y / h, 0.5 + 0.3 * ((x // 16 + y // 16) % 2)], axis=2) * 200 + 20
    img = img + rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_photo(path: Path, h: int = 96, w: int = 128, seed: int = 0) -> Path:
    """A JPEG (or PNG) with EXIF Make and an sRGB ICC profile, so saving can be checked for metadata."""
    exif = Image.Exif()
    exif[0x010F] = EXIF_MAKE
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.fromarray(noisy_array(h, w, seed))
    kwargs = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    im.save(path, exif=exif.tobytes(), icc_profile=icc, **kwargs)
    return path


@pytest.fixture
def photo_path(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "noisy.jpg")
