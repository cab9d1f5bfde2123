"""Bad camera raws on the RAW→DNG path: a damaged or truncated raw, an X-Trans layout, a DNG missing its CFA
tags, a raw over the memory limit and an existing .dng output each give one clear line naming the file, and
nothing is written (no output, no temp file, the inputs untouched)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hostile_util import snapshot, temp_files
from raw_util import bayer, clean_scene, write_cfa_dng

from denoiser.cli import main

XTRANS = bytes([1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
                1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1])


def _good(path: Path) -> Path:
    return write_cfa_dng(path, bayer(clean_scene(64, 96), "RGGB"))


def _truncated(path: Path) -> Path:
    data = _good(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _xtrans(path: Path) -> Path:
    data = (bayer(clean_scene(66, 96), "RGGB") * 4000).astype(np.uint16)
    tags = [(33421, 3, 2, (6, 6), True), (33422, 1, 36, XTRANS, True), (50706, 1, 4, bytes((1, 4, 0, 0)), True),
            (50708, 2, None, "Fujifilm X\0", True), (271, 2, None, "Fujifilm\0", True)]
    tifffile.imwrite(path, data, photometric=32803, extratags=tags, software=False, metadata=None)
    return path


def _no_cfa_tags(path: Path) -> Path:
    return write_cfa_dng(path, bayer(clean_scene(64, 96), "RGGB"), omit=(33421, 33422))


CASES = {  # name -> (maker, words of the one line, extra CLI arguments)
    "truncated": (_truncated, "damaged or truncated", []),
    "xtrans": (_xtrans, "X-Trans", []),
    "no_cfa_tags": (_no_cfa_tags, "missing required tags (CFARepeatPatternDim, CFAPattern)", []),
    "memory": (_good, "--max-memory", ["--max-memory", "0.0001"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_raw_one_line_nothing_written(tmp_path, tiny_model, capsys, case):
    make, words, extra = CASES[case]
    src = make(tmp_path / "in" / "shot.dng") if (tmp_path / "in").mkdir() is None else None
    out = tmp_path / "out"
    before = snapshot(tmp_path / "in")
    rc = main(["denoise", str(src), "--out-dir", str(out), "--model", tiny_model, *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 1
    assert len(lines) == 1 and str(src) in lines[0] and words in lines[0], err
    assert snapshot(tmp_path / "in") == before
    assert not out.exists() or not any(out.iterdir())
    assert temp_files(tmp_path) == []


def test_existing_dng_output_is_kept(tmp_path, tiny_model, capsys):
    src = _good(tmp_path / "shot.dng")
    out = tmp_path / "out"
    out.mkdir()
    (out / "shot-denoised.dng").write_bytes(b"earlier result")
    rc = main(["denoise", str(src), "--out-dir", str(out), "--model", tiny_model])
    err = capsys.readouterr().err
    assert rc == 1 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert (out / "shot-denoised.dng").read_bytes() == b"earlier result"
    assert temp_files(tmp_path) == []
