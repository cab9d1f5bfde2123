"""core.noise.level: the noise level as a value (fixed σ | Auto map × scale), its ranges and its record."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from denoiser.core.noise.level import SCALE_RANGE, NoiseLevel, as_level, check_scale, check_sigma


def _map() -> np.ndarray:
    m = np.full((4, 6), 8.0, np.float32)
    m[:, 3:] = 16.0
    return m


def test_fixed_and_auto_say_what_they_are() -> None:
    fixed = NoiseLevel.fixed(15)
    assert fixed.to_record() == {"mode": "fixed", "sigma": 15.0}
    assert fixed.describe() == "σ 15.0 (fixed)"
    auto = NoiseLevel.auto(_map(), estimator="learned-abc").scaled(1.5)
    assert float(auto) == pytest.approx(18.0)  # mean 12 × 1.5
    assert auto.to_record() == {"mode": "auto", "sigma": 18.0, "map_mean": 12.0, "scale": 1.5,
                                "estimator": "learned-abc"}
    assert auto.describe() == "Auto × 1.50 (noise map, mean σ 18.0)"
    assert f"{auto:.1f}" == "18.0"


def test_a_fixed_level_is_not_scaled_and_out_of_range_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="not scaled"):
        NoiseLevel.fixed(10).scaled(2)
    for bad in (-1, 256, float("nan"), "x"):
        with pytest.raises(ValueError, match="0..255"if bad != "x" else "number"):
            check_sigma(bad)  # type: ignore[arg-type]
    lo, hi = SCALE_RANGE
    for bad in (0, lo / 2, hi * 1.01, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="strength scale must be between"):
            check_scale(bad)
    assert check_scale(lo) == lo and check_scale(hi) == hi
    with pytest.raises(ValueError, match="strength scale"):
        NoiseLevel.auto(_map()).scaled(hi * 2)


def test_window_keeps_the_region_of_the_map_or_drops_it_on_odd_coordinates() -> None:
    auto = NoiseLevel.auto(_map(), estimator="e").scaled(2)
    part = auto.window(0, 4, 8, 12)
    assert part.map is not None and part.map.shape == (4, 4) and part.scale == 2
    assert np.all(part.map[:, 0] == 8.0) and np.all(part.map[:, 1:] == 16.0)
    odd = auto.window(1, 4, 8, 12)
    assert odd.map is None and odd.scale == 2 and float(odd) == float(auto)
    assert NoiseLevel.fixed(5).window(1, 1, 3, 3) == NoiseLevel.fixed(5)


def test_map_for_scales_the_map_or_measures_afresh() -> None:
    auto = NoiseLevel.auto(_map(), estimator="e").scaled(3)
    assert np.all(auto.map_for((8, 12), lambda: pytest.fail("the map fits")) == np.where(_map() > 10, 48, 24))
    fresh = auto.map_for((4, 4), lambda: np.full((2, 2), 100.0, np.float32))
    assert np.all(fresh == 255.0)  # clipped to the level range


def test_equality_ignores_the_map_so_a_summary_compares_equal() -> None:
    auto = NoiseLevel.auto(_map(), estimator="e")
    assert auto.without_map() == auto and auto.without_map().map is None
    assert as_level(7.5) == NoiseLevel.fixed(7.5) and as_level(auto) is auto


def test_the_cli_and_the_batch_plan_use_the_one_scale_range(tmp_path: Path) -> None:
    from denoiser.cli.strength import parse_scale
    from denoiser.core.batch.plan import BatchError, BatchOptions

    lo, hi = SCALE_RANGE
    assert parse_scale(str(hi)) == hi
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"between {lo:g} and {hi:g}")):
        parse_scale(str(hi + 0.5))
    (tmp_path / "in").mkdir()
    for scale in (lo / 2, hi + 0.5):
        with pytest.raises(BatchError, match=re.escape(f"between {lo:g} and {hi:g}")):
            BatchOptions(tmp_path / "in", tmp_path / "out", strength_scale=scale).validate()


def test_the_window_slider_spans_the_core_range() -> None:
    pytest.importorskip("PySide6")
    from denoiser.gui import controls

    assert controls.SCALE_RANGE is SCALE_RANGE


def test_saved_photo_and_report_record_the_level(tmp_path: Path, tiny_model_file: Path) -> None:
    """Auto × 2 goes into the XMP note and the batch report as mode, scale, map mean and estimator."""
    from PIL import Image

    from denoiser.core.batch.runner import BatchOptions, run_batch
    from denoiser.core.io.photo import load_photo
    from denoiser.core.noise.level import estimator_version

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(60, 200, (48, 64, 3), dtype=np.uint8)).save(src / "a.png")
    result = run_batch(BatchOptions(src, tmp_path / "out", model=str(tiny_model_file), device="cpu",
                                    strength_scale=2.0, report=tmp_path / "r.json"))
    item = result.done[0]
    assert item.level is not None and item.level.is_auto and item.level.map is None
    xmp = load_photo(item.output).xmp.decode()
    assert 'pdn:StrengthMode="auto"' in xmp and 'pdn:StrengthScale="2"' in xmp
    assert f'pdn:Estimator="{estimator_version()}"' in xmp
    mean = float(re.search(r'pdn:NoiseMapMean="([0-9.]+)"', xmp).group(1))
    assert float(re.search(r'pdn:Strength="([0-9.]+)"', xmp).group(1)) == pytest.approx(2 * mean, abs=0.06)
    row = json.loads((tmp_path / "r.json").read_text())["files"][0]
    assert row["strength_mode"] == "auto" and row["strength_scale"] == 2.0
    assert row["estimator"] == estimator_version() and row["noise_map_mean"] == pytest.approx(mean, abs=0.01)
