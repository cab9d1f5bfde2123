"""`denoise` never writes over an input of its own run, never lets two inputs share one output, and refuses
outputs (existing, unwritable) before torch, the model or any photo is loaded."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hostile_util import snapshot, temp_files, write_png
from PIL import Image


def test_overwrite_never_replaces_another_input_of_the_run(cli, tmp_path, tiny_model_file, monkeypatch):
    first = write_png(tmp_path / "a.png", seed=1)
    second = write_png(tmp_path / "a-denoised.png", seed=2)  # also the first one's output name
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("denoise", "a.png", "a-denoised.png", "--out-dir", ".", "--overwrite",
                         "--model", tiny_model_file, "--strength", "10")
    assert code == 1
    assert "a.png: output a-denoised.png is an input of this run" in err and "choose another output" in err
    after = snapshot(tmp_path)
    assert after["a.png"] == before["a.png"] and after["a-denoised.png"] == before["a-denoised.png"]
    assert set(after) - set(before) == {"a-denoised-denoised.png"}  # the second input was still done
    assert "a-denoised.png -> a-denoised-denoised.png" in out and not temp_files(tmp_path)
    assert first.exists() and second.exists()


def test_two_inputs_with_one_output_are_refused_up_front(cli, tmp_path, tiny_model_file):
    write_png(tmp_path / "d1" / "a.png", seed=1)
    (tmp_path / "d2").mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "d2" / "a.jpg")
    before = snapshot(tmp_path)
    out_dir = tmp_path / "out"
    code, out, err = cli("denoise", tmp_path / "d1/a.png", tmp_path / "d2/a.jpg", "--format", "png",
                         "--out-dir", out_dir, "--overwrite", "--model", tiny_model_file, "--strength", "10")
    assert code == 1
    assert f"{tmp_path / 'd2/a.jpg'}: output {out_dir / 'a-denoised.png'} is also the output of" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["a-denoised.png"]
    written = np.asarray(Image.open(out_dir / "a-denoised.png"))
    assert written.shape == (48, 64, 3)  # d1/a.png's result, not replaced by d2/a.jpg's (40 x 40)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before


def test_the_same_input_twice_is_denoised_once(cli, tmp_path, tiny_model_file):
    src = write_png(tmp_path / "a.png")
    code, out, err = cli("denoise", src, src, "--out-dir", tmp_path / "o", "--model", tiny_model_file,
                         "--strength", "10")
    assert code == 1 and "is also the output of" in err and out.count(" -> ") == 1


def test_an_existing_output_is_refused_before_the_model_loads(cli, tmp_path, no_model):
    src = write_png(tmp_path / "a.png")
    target = tmp_path / "a-denoised.png"
    target.write_bytes(b"keep me")
    code, out, err = cli("denoise", src, "--out-dir", tmp_path)
    assert code == 1 and f"output {target} already exists; add --overwrite to replace it" in err
    assert target.read_bytes() == b"keep me" and out == ""


def test_an_output_that_is_the_input_is_refused_even_with_overwrite(cli, tmp_path, no_model):
    src = write_png(tmp_path / "a.png")
    before = snapshot(tmp_path)
    code, _, err = cli("denoise", src, "-o", src, "--overwrite")
    assert code == 1 and "is an input of this run" in err
    link = tmp_path / "link.png"
    link.symlink_to(src)
    code, _, err = cli("denoise", src, "-o", link, "--overwrite")
    assert code == 1 and "is an input of this run" in err
    del (after := snapshot(tmp_path))["link.png"]
    assert after == before


def test_a_missing_input_is_refused_before_the_model_loads(cli, tmp_path, no_model):
    code, _, err = cli("denoise", tmp_path / "nothing.png", "--out-dir", tmp_path / "o")
    assert code == 1 and f"{tmp_path / 'nothing.png'}: file not found" in err
    assert not (tmp_path / "o").exists()


def test_raw_or_mismatched_output_names_are_refused_up_front(cli, tmp_path, no_model):
    src = write_png(tmp_path / "a.png")
    code, _, err = cli("denoise", src, "-o", tmp_path / "x.dng")
    assert code == 1 and "camera RAW format; name it .tif" in err
    code, _, err = cli("denoise", src, "-o", tmp_path / "x.png", "--format", "jpeg")
    assert code == 1 and "ends in .png but --format is jpeg" in err


def test_an_unwritable_output_folder_is_refused_before_the_model_loads(cli, tmp_path, no_model):
    src = write_png(tmp_path / "a.png")
    if os.geteuid() == 0:  # root writes through permission bits: use a folder the kernel refuses
        locked = Path("/sys/denoiser-out")
        if os.access("/sys", os.W_OK) and not Path("/sys/kernel").is_dir():
            pytest.skip("no unwritable folder available")
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        locked = tmp_path / "ro" / "out"
    code, _, err = cli("denoise", src, "--out-dir", locked)
    assert code == 2 and "cannot write in" in err and "choose another output folder" in err
    assert not locked.exists()


def test_an_out_dir_that_is_a_file_is_refused(cli, tmp_path, no_model):
    src = write_png(tmp_path / "a.png")
    (tmp_path / "f").write_bytes(b"x")
    code, _, err = cli("denoise", src, "--out-dir", tmp_path / "f")
    assert code == 2 and "not a folder" in err
    code, _, err = cli("denoise", src, "--out-dir", tmp_path / "f" / "sub")
    assert code == 2 and "is not a folder" in err
