"""'Too small to measure' is its own error, so callers that fall back on it let every other failure through."""
from __future__ import annotations

import numpy as np
import pytest

from denoiser.core.inference.engine import Denoiser
from denoiser.core.noise import estimate_sigma
from denoiser.core.noise.estimation import TooSmallToEstimate
from tests.conftest import make_tiny_model


def test_a_tiny_photo_is_too_small_to_estimate() -> None:
    with pytest.raises(TooSmallToEstimate, match="--strength"):
        Denoiser(make_tiny_model(), "cpu").auto_strength(np.zeros((8, 40, 3), np.float32))
    with pytest.raises(TooSmallToEstimate):
        estimate_sigma(np.zeros((6, 6, 3), np.float32))
    assert issubclass(TooSmallToEstimate, ValueError)  # the CLI still reports it as a bad request


def test_the_windows_estimate_falls_back_only_on_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PySide6")
    from denoiser.core.io.photo import Photo
    from denoiser.gui import jobs

    photo = Photo(np.zeros((8, 8, 3), np.float32))

    class Engine:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def auto_strength(self, pixels: np.ndarray) -> None:
            raise self.error

    monkeypatch.setattr(jobs, "engine_for", lambda *a: Engine(TooSmallToEstimate("too small")))
    assert jobs.estimate(None, photo, "m", "cpu", None) is None  # type: ignore[arg-type]
    monkeypatch.setattr(jobs, "engine_for", lambda *a: Engine(ValueError("estimator.safetensors: damaged")))
    with pytest.raises(ValueError, match="damaged"):
        jobs.estimate(None, photo, "m", "cpu", None)  # type: ignore[arg-type]
