"""Where shipped resources (default model, icons, desktop metadata) and user data live."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from platformdirs import user_data_dir

APP_DIR_NAME = "photo-denoiser"
# Auto's noise estimator, shipped in resources/models beside the denoising models but not one of them
ESTIMATOR_FILE_NAME = "estimator.safetensors"


def resources_dir() -> Path:
    """resources/: $DENOISER_RESOURCES, else inside a PyInstaller bundle, else the source tree."""
    env = os.environ.get("DENOISER_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def user_data_path() -> Path:
    """Per-user data folder (fine-tuned models, runs): $DENOISER_DATA_DIR or the platform's."""
    env = os.environ.get("DENOISER_DATA_DIR")
    return Path(env) if env else Path(user_data_dir(APP_DIR_NAME, appauthor=False))
