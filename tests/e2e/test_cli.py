"""The command line end to end, as a user runs it (a subprocess, the real entry point)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # every test here starts the CLI as a subprocess


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"} | (env_extra or {})
    return subprocess.run([sys.executable, "-m", "denoiser", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture
def noisy_png(tmp_path, rng) -> Path:
    clean = np.full((48, 64, 3), 128.0)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "noisy.png"
    Image.fromarray(noisy).save(path)
    return path


def test_denoise_tiny_image_end_to_end(noisy_png, tiny_model_file, tmp_path):
    out = tmp_path / "clean.png"
    res = run_cli("denoise", str(noisy_png), "-o", str(out), "--model", str(tiny_model_file), "--strength", "20")
    assert res.returncode == 0, res.stderr
    before = np.asarray(Image.open(noisy_png))
    after = np.asarray(Image.open(out))
    assert after.shape == before.shape and not np.array_equal(after, before)
    assert "noise level 20.0" in res.stdout


def test_passes_option(noisy_png, tiny_model_file, tmp_path):
    outs = {}
    for passes in ("1", "8"):
        outs[passes] = tmp_path / f"clean{passes}.png"
        res = run_cli("denoise", str(noisy_png), "-o", str(outs[passes]), "--model", str(tiny_model_file),
                      "--strength", "20", "--passes", passes)
        assert res.returncode == 0, res.stderr
    assert not np.array_equal(np.asarray(Image.open(outs["1"])), np.asarray(Image.open(outs["8"])))
    res = run_cli("denoise", str(noisy_png), "-o", str(tmp_path / "x.png"), "--model", str(tiny_model_file),
                  "--passes", "3")
    assert res.returncode == 2 and "--passes" in res.stderr and "choose from 1, 2, 4, 8" in res.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "unsupported"])
def test_bad_inputs_give_one_clear_line(kind, tmp_path, tiny_model_file, noisy_png):
    bad = {"empty": tmp_path / "empty.jpg", "text": tmp_path / "notes.jpg",
           "truncated": tmp_path / "cut.png", "unsupported": tmp_path / "anim.gif"}[kind]
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("this is not a photo")
    elif kind == "truncated":
        bad.write_bytes(noisy_png.read_bytes()[: len(noisy_png.read_bytes()) // 2])
    else:
        Image.new("P", (8, 8)).save(bad)
    out_dir = tmp_path / "out"
    res = run_cli("denoise", str(bad), "--out-dir", str(out_dir), "--model", str(tiny_model_file))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and bad.name in lines[0], res.stderr
    assert not out_dir.exists() or not any(out_dir.iterdir())  # nothing partial left behind


def test_never_overwrites_the_input(noisy_png, tiny_model_file):
    before = noisy_png.read_bytes()
    res = run_cli("denoise", str(noisy_png), "-o", str(noisy_png), "--model", str(tiny_model_file), "--overwrite")
    assert res.returncode != 0 and noisy_png.read_bytes() == before


def test_unknown_model_and_missing_cuda_are_usage_errors(noisy_png, tmp_path, tiny_model_file):
    res = run_cli("denoise", str(noisy_png), "-o", str(tmp_path / "o.png"), "--model", "no-such-model")
    assert res.returncode == 2 and "no-such-model" in res.stderr and "Traceback" not in res.stderr
    import torch
    if not torch.cuda.is_available():
        res = run_cli("denoise", str(noisy_png), "-o", str(tmp_path / "o.png"), "--model", str(tiny_model_file),
                      "--device", "cuda:0")
        assert res.returncode == 2 and "not available" in res.stderr


def test_eval_prints_a_table(tmp_path, rng):
    """An identity model leaves the noise in: eval must report the noisy input's own PSNR, 20 log10(255 / sigma)."""
    import re

    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.network import ModelConfig, build_model

    config = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)
    identity = build_model(config)  # its tail starts at zero: output = input
    save_model(tmp_path / "identity.safetensors", identity, ModelCard(name="identity", config=config), half=False)
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(2):  # mid-grey texture, far from 0 and 255, so clipping the output does not hide noise
        Image.fromarray((96 + rng.random((64, 64, 3)) * 64).astype(np.uint8)).save(folder / f"{i}.png")
    res = run_cli("eval", str(folder), "--sigma", "15,25", "--model", str(tmp_path / "identity.safetensors"))
    assert res.returncode == 0, res.stderr
    got = {int(s): float(db) for s, db in re.findall(r"sigma=(\d+)\s+([\d.]+) dB", res.stdout)}
    assert got.keys() == {15, 25}
    for sigma, db in got.items():
        assert db == pytest.approx(20 * np.log10(255 / sigma), abs=0.3), res.stdout


def tiny_training(tmp_path: Path, rng, **config) -> tuple[Path, Path]:
    """(photo folder, config file) for a training run of a tiny model on three 64 px photos; `config` overrides."""
    import json

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(data / f"{i}.png")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"widths": [8, 16], "enc_blocks": [1], "dec_blocks": [1], "mid_blocks": 1},
                               "batch_size": 2, "patch": 32, "val_crop": 32, "val_fraction": 0, "minutes": 0,
                               **config}))
    return data, cfg


def test_train_two_steps_then_resume(tmp_path, rng):
    import json

    data, cfg = tiny_training(tmp_path, rng, max_steps=2)
    out = tmp_path / "run"
    res = run_cli("train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--device", "cpu")
    assert res.returncode == 0, res.stderr
    res = run_cli("train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--device", "cpu",
                  "--steps", "3", "--resume")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "model.json").read_text())["training"]["steps"] == 3


def test_train_interrupted_keeps_a_checkpoint_that_resumes(tmp_path, rng):
    """Ctrl-C before the first periodic checkpoint (checkpoint_every_s is long) still leaves one to resume from."""
    import signal
    import time

    data, cfg = tiny_training(tmp_path, rng, max_steps=10**9, checkpoint_every_s=3600)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "denoiser", "train", "--config", str(cfg), "--data", str(data),
                             "--out", str(out), "--device", "cpu"], cwd=ROOT, text=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (out / "config.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3.0)  # into the steps
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "resume with --resume" in err and "Traceback" not in err, err
    assert (out / "checkpoint.pt").is_file()
    res = run_cli("train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--device", "cpu",
                  "--resume", "--steps", "1")
    assert res.returncode == 0, res.stderr


def test_denoise_refuses_an_existing_output_named_without_suffix_before_working(noisy_png, tiny_model_file,
                                                                               tmp_path):
    """`-o out` gets the format's suffix appended; the early refusal must check that final name."""
    existing = tmp_path / "out.png"
    existing.write_bytes(b"keep me")
    res = run_cli("denoise", str(noisy_png), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file),
                  "--strength", "5")
    assert res.returncode == 1
    assert "out.png" in res.stderr and "already exists" in res.stderr
    assert "->" not in res.stdout  # refused before denoising, nothing written
    assert existing.read_bytes() == b"keep me"
