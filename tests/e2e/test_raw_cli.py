"""A camera raw through `denoise` and `batch`: saved as <stem>-denoised.dng by default (a linear DNG LibRaw
reads back), developed as before for --format tiff/png/jpeg, refused for a non-raw with --format dng; the
batch report says which path and model ran."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import rawpy
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from raw_util import bayer, clean_scene, write_cfa_dng

from denoiser.cli import main

RAW_PATH = re.compile(r"\(raw (fallback|joint model)\)")  # the joint model runs once it is installed


def _raw(path: Path, pattern: str = "RGGB", seed: int = 0) -> Path:
    clean = bayer(clean_scene(64, 96, seed), pattern)
    noisy = clean + np.random.default_rng(seed).normal(size=clean.shape) * np.sqrt(2e-3 * clean + 4e-5)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_cfa_dng(path, np.clip(noisy, 0, 1), pattern)


def test_denoise_saves_a_raw_as_dng_by_default(tmp_path, tiny_model, capsys):
    src = _raw(tmp_path / "in" / "shot.dng")
    rc = main(["denoise", str(src), "--out-dir", str(tmp_path / "out"), "--model", tiny_model])
    out = tmp_path / "out" / "shot-denoised.dng"
    assert rc == 0, capsys.readouterr().err
    with rawpy.imread(str(out)) as r:
        assert r.raw_image.shape[:2] == (64, 96) and r.raw_pattern is None  # a linear (demosaiced) DNG
    assert RAW_PATH.search(capsys.readouterr().out)  # the line names the path that ran


def test_a_raw_still_develops_to_tiff_when_asked(tmp_path, tiny_model, capsys):
    src = _raw(tmp_path / "in" / "shot.dng")
    report = tmp_path / "report.json"
    rc = main(["batch", str(src.parent), "-o", str(tmp_path / "out"), "--format", "tiff", "--model", tiny_model,
               "--strength", "5", "--report", str(report)])
    assert rc == 0, capsys.readouterr().err
    assert "(developed RGB)" in json.loads(report.read_text())["files"][0]["model"]
    img = tifffile.imread(tmp_path / "out" / "shot-denoised.tif")
    assert img.dtype == np.uint16 and img.shape[2] == 3
    assert not (tmp_path / "out" / "shot-denoised.dng").exists()


def test_format_dng_refuses_a_photo_that_is_not_raw(tmp_path, tiny_model, capsys):
    from PIL import Image

    src = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(src)
    rc = main(["denoise", str(src), "--out-dir", str(tmp_path / "out"), "--format", "dng", "--model", tiny_model])
    err = capsys.readouterr().err
    assert rc != 0 and "not a camera RAW file" in err and str(src) in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_batch_of_raws_writes_dngs_and_reports_the_path(tmp_path, tiny_model, capsys):
    for k, pattern in enumerate(("BGGR", "GBRG")):
        _raw(tmp_path / "in" / f"r{k}.dng", pattern, seed=k)
    report = tmp_path / "report.json"
    rc = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", tiny_model,
               "--report", str(report)])
    assert rc == 0, capsys.readouterr().err
    for k in range(2):
        with rawpy.imread(str(tmp_path / "out" / f"r{k}-denoised.dng")) as r:
            assert r.raw_image.shape[:2] == (64, 96)
    rows = json.loads(report.read_text())["files"]
    assert {row["status"] for row in rows} == {"done"}
    assert all(RAW_PATH.search(row["model"]) for row in rows)


def test_dng_cfa_keeps_the_mosaic_for_the_users_own_demosaic(tmp_path, tiny_model, capsys):
    src = _raw(tmp_path / "in" / "shot.dng", "GRBG")
    rc = main(["denoise", str(src), "--out-dir", str(tmp_path / "out"), "--model", tiny_model, "--dng", "cfa"])
    assert rc == 0, capsys.readouterr().err
    with rawpy.imread(str(tmp_path / "out" / "shot-denoised.dng")) as r:
        desc = r.color_desc.decode()
        assert "".join(desc[i] for i in r.raw_pattern.ravel()) == "GRBG" and r.raw_image.shape == (64, 96)
        assert r.white_level == 4095 and list(r.black_level_per_channel) == [256] * 4
