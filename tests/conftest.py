"""Shared fixtures: tiny seeded models, isolated user data, offscreen Qt."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TINY = dict(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)


def make_tiny_model(seed: int = 0):
    import torch

    from denoiser.core.model.network import ModelConfig, build_model

    torch.manual_seed(seed)
    model = build_model(ModelConfig(**TINY))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


@pytest.fixture(autouse=True)
def isolated_user_data(tmp_path_factory, monkeypatch):
    """Never touch the real user data folder from a test."""
    data = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("DENOISER_DATA_DIR", str(data))
    return data


@pytest.fixture
def tiny_model_file(tmp_path) -> Path:
    from denoiser.core.model.file import ModelCard, save_model

    model = make_tiny_model()
    path = tmp_path / "tiny.safetensors"
    save_model(path, model, ModelCard(name="tiny", config=model.config), half=False)
    return path


@pytest.fixture
def tiny_install(tmp_path, monkeypatch) -> Path:
    """An isolated install: user data in tmp_path/data, resources in tmp_path/res with a tiny identity model as
    the shipped 'default'. Returns tmp_path."""
    import torch

    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.network import ModelConfig, build_model

    monkeypatch.setenv("DENOISER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DENOISER_RESOURCES", str(tmp_path / "res"))
    torch.manual_seed(0)
    config = ModelConfig(**TINY)
    save_model(tmp_path / "res/models/default.safetensors", build_model(config), ModelCard("default", config))
    return tmp_path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """Path of a freshly initialised tiny model (an identity map: its residual tail starts at zero)."""
    import torch

    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.network import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, model, ModelCard(name="tiny", config=model.config))
    return str(path)
