"""--strength-scale: a scale on Auto's noise map in `denoise`."""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main


def _noisy_png(path, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    clean = np.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * np.sin(6 * yy), 0.6 - 0.3 * yy], axis=2)
    noisy = clean + rng.normal(0, 20 / 255, clean.shape)
    Image.fromarray((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def _level(out: str) -> float:
    return float(re.search(r"noise level ([0-9.]+)", out).group(1))


def test_strength_scale_multiplies_auto(tmp_path, tiny_model_file, capsys):
    src = tmp_path / "in.png"
    _noisy_png(src)
    args = ["denoise", str(src), "--model", str(tiny_model_file)]
    assert main(args + ["-o", str(tmp_path / "a.png")]) == 0
    auto = _level(capsys.readouterr().out)
    assert main(args + ["-o", str(tmp_path / "b.png"), "--strength-scale", "2"]) == 0
    doubled = _level(capsys.readouterr().out)
    assert auto > 3
    assert abs(doubled - 2 * auto) < 0.11
    a = np.asarray(Image.open(tmp_path / "a.png"), np.int16)
    b = np.asarray(Image.open(tmp_path / "b.png"), np.int16)
    assert np.abs(a - b).max() > 0


def test_strength_scale_with_a_fixed_strength_is_refused_before_any_work(tmp_path, tiny_model_file, capsys):
    src = tmp_path / "in.png"
    _noisy_png(src)
    code = main(["denoise", str(src), "-o", str(tmp_path / "o.png"), "--model", str(tiny_model_file),
                 "--strength", "10", "--strength-scale", "1.5"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--strength 15" in err and "scales Auto" in err
    assert not (tmp_path / "o.png").exists()


def test_strength_scale_rejects_nonsense(tmp_path, capsys):
    for bad in ("0", "-1", "nan", "x"):
        with pytest.raises(SystemExit) as exc:  # refused by the parser: no normal return
            main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--strength-scale", bad])
        assert exc.value.code == 2
        assert "strength scale" in capsys.readouterr().err


def test_batch_strength_scale_reaches_each_photo(tmp_path, tiny_model_file, capsys):
    import json

    src = tmp_path / "in"
    src.mkdir()
    _noisy_png(src / "a.png", 1)
    levels = {}
    for scale in ("1", "3"):
        out = tmp_path / f"out{scale}"
        code = main(["batch", str(src), "-o", str(out), "--model", str(tiny_model_file), "--strength-scale", scale,
                     "--report", str(tmp_path / f"r{scale}.json")])
        assert code == 0, capsys.readouterr().err
        rows = json.loads((tmp_path / f"r{scale}.json").read_text())
        levels[scale] = float(next(r for r in rows["files"] if r["file"] == "a.png")["strength"])
    assert abs(levels["3"] - 3 * levels["1"]) < 0.2
