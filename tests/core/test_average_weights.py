"""packaging/average_weights.py: the weighted mean of two models' tensors, and the refusals."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from denoiser.core.model.file import ModelCard, read_card, save_model
from tests.conftest import make_tiny_model

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "average_weights.py"


def _save(path: Path, seed: int, **config_changes) -> Path:
    from dataclasses import replace

    from denoiser.core.model.network import build_model

    model = make_tiny_model(seed)
    if config_changes:
        model = build_model(replace(model.config, **config_changes))
    save_model(path, model, ModelCard(name=path.stem, config=model.config, version=str(seed)), half=False)
    return path


def _run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_weighted_mean_of_two_models(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    a, b = _save(tmp_path / "a.safetensors", 1), _save(tmp_path / "b.safetensors", 2)
    out = tmp_path / "avg" / "mean.safetensors"
    res = _run("--model", a, "--model", b, "--weight", 0.25, "--weight", 0.75, "--out", out, "--version", "7")
    assert res.returncode == 0, res.stderr
    ta, tb, tm = load_file(a), load_file(b), load_file(out)
    assert ta.keys() == tm.keys()
    for k in ta:
        expected = 0.25 * ta[k].astype(np.float64) + 0.75 * tb[k].astype(np.float64)
        np.testing.assert_allclose(tm[k].astype(np.float64), expected, rtol=2e-3, atol=2e-4)  # stored as fp16
    card = read_card(out)
    assert card.version == "7" and [s["version"] for s in card.training["averaged"]] == ["1", "2"]


def test_refuses_other_architectures_bad_weights_and_an_existing_output(tmp_path: Path) -> None:
    a = _save(tmp_path / "a.safetensors", 1)
    other = _save(tmp_path / "other.safetensors", 2, mid_blocks=2)
    res = _run("--model", a, "--model", other, "--out", tmp_path / "x.safetensors")
    assert res.returncode != 0 and "architecture" in res.stderr
    res = _run("--model", a, "--model", a, "--weight", 0.5, "--weight", 0.6, "--out", tmp_path / "x.safetensors")
    assert res.returncode != 0 and "summing to 1" in res.stderr
    existing = tmp_path / "kept.safetensors"
    existing.write_bytes(b"mine")
    res = _run("--model", a, "--model", a, "--out", existing)
    assert res.returncode != 0 and existing.read_bytes() == b"mine"
    assert not (tmp_path / "x.safetensors").exists()
