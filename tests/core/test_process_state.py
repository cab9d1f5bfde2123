"""Process-wide state is set once, never from the threads that decode, calibrate and estimate at once."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from denoiser.core.io.photo import PhotoError, load_photo


def test_decoding_with_a_low_limit_leaves_pillows_global_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (300, 200)).save(path)
    assert Image.MAX_IMAGE_PIXELS is None  # set once when the decoders load
    with pytest.raises(PhotoError, match="exceeds the limit of 0.01 MP"):
        load_photo(path, max_megapixels=0.01)
    assert load_photo(path, max_megapixels=0.1).width == 300
    assert Image.MAX_IMAGE_PIXELS is None


def test_the_estimator_is_loaded_once_when_threads_ask_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from denoiser.core.noise import learned

    loads: list[Path] = []

    def slow_load(path: Path) -> object:
        loads.append(path)
        time.sleep(0.05)  # a wide window in which an unlocked cache is filled twice
        return object()

    monkeypatch.setattr(learned, "_CACHE", {})
    monkeypatch.setattr(learned, "load_estimator", slow_load)
    monkeypatch.setattr(learned, "default_estimator_path", lambda: Path(__file__))  # any existing file
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(learned.shipped_estimator())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len(got) == 6 and all(g is got[0] for g in got)


def test_calibration_keeps_the_process_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from denoiser.core.training import selfsup

    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")

    class Base:
        def denoise(self, img: np.ndarray, sigma: float) -> np.ndarray:
            return img

    from denoiser.core.inference import engine

    monkeypatch.setattr(engine.Denoiser, "from_file", classmethod(lambda cls, path, device="cpu": Base()))
    before = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda n: pytest.fail(f"set_num_threads({n}) from core"))
    selfsup.calibrate_folder(sorted(tmp_path.glob("*.png")), tmp_path / "base.safetensors")
    assert torch.get_num_threads() == before
