"""The window with a camera raw: shown in its neutral development, saved by default as its denoised raw (a
linear DNG that LibRaw reads back)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rawpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from raw_util import bayer, clean_scene, write_cfa_dng


def test_save_dialog_offers_dng_first_for_a_raw(tmp_path):
    from denoiser.gui.dialogs.save_dialog import default_format, format_choices, suggested_path

    assert format_choices(16, "RAW")[0][0] == "dng" and default_format("RAW", 16) == "dng"
    assert "dng" not in [fmt for fmt, _ in format_choices(8, "JPEG")] and default_format("JPEG", 8) != "dng"
    assert suggested_path(tmp_path / "shot.nef", "", "dng", "RAW").name == "shot-denoised.dng"


def test_window_shows_a_raw_neutrally_and_saves_it_as_dng(tmp_path, tiny_model):
    from denoiser.core.io.develop import develop_raw
    from denoiser.core.io.raw import read_raw
    from denoiser.core.noise.level import NoiseLevel
    from denoiser.core.progress import NullProgress
    from denoiser.gui import jobs

    src = write_cfa_dng(tmp_path / "shot.dng", bayer(clean_scene(64, 96), "GRBG"), "GRBG")
    loaded = jobs.load(src, NullProgress())
    assert loaded.photo.format == "RAW" and loaded.photo.bit_depth == 16
    assert np.allclose(loaded.photo.pixels, develop_raw(read_raw(src)), atol=1e-6)  # no auto-brightening
    result = jobs.DenoiseResult(loaded.photo, loaded.display, loaded.display, NoiseLevel.auto(None, mean=4.0),
                                0.1, tiny_model, "cpu", [], 1.0)
    out = jobs.save(result, tmp_path / "shot-denoised.dng", "dng", 92, False, NullProgress())
    with rawpy.imread(str(out)) as r:
        assert r.raw_image.shape[:2] == (64, 96) and r.raw_pattern is None
