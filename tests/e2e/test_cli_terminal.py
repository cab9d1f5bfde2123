"""What the terminal shows: Auto's estimate announced, -v details, the export hint, no display for the window."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main


def run(capsys, *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "a.png"
    Image.fromarray(np.clip(128 + rng.normal(0, 20, (48, 64, 3)), 0, 255).astype(np.uint8)).save(path)
    return path


def test_auto_announces_its_estimate_and_a_fixed_strength_does_not(capsys, photo, tmp_path, tiny_model_file):
    code, _, err = run(capsys, "denoise", photo, "-o", tmp_path / "auto.png", "--model", tiny_model_file)
    assert code == 0 and "a.png: estimating the noise level (Auto)…" in err
    code, _, err = run(capsys, "denoise", photo, "-o", tmp_path / "fixed.png", "--model", tiny_model_file,
                       "--strength", "10")
    assert code == 0 and "estimating" not in err


def test_verbose_adds_model_photo_and_timing_details(capsys, caplog, photo, tmp_path, tiny_model_file):
    with caplog.at_level(logging.NOTSET):
        run(capsys, "denoise", photo, "-o", tmp_path / "quiet.png", "--model", tiny_model_file, "--strength", "9")
        quiet = [r.getMessage() for r in caplog.records if r.name == "denoiser.denoise"]
        caplog.clear()
        run(capsys, "-v", "denoise", photo, "-o", tmp_path / "loud.png", "--model", tiny_model_file,
            "--strength", "9")
        loud = [r.getMessage() for r in caplog.records if r.name == "denoiser.denoise"]
    assert quiet == []
    assert any(m.startswith("model tiny on cpu") and "tiles of 1024 px, 1 pass(es)" in m for m in loud), loud
    assert any(f"{photo}: 64 x 48 (0.0 MP), PNG 8-bit" in m for m in loud), loud
    assert any(m.startswith(f"{photo}: denoised at strength 9.00 in") for m in loud), loud


def test_export_over_an_existing_file_names_the_flag(capsys, tmp_path, tiny_model_file, isolated_user_data):
    assert run(capsys, "models", "import", tiny_model_file, "--name", "mine")[0] == 0
    dest = tmp_path / "taken.safetensors"
    dest.write_bytes(b"keep")
    code, _, err = run(capsys, "models", "export", "mine", dest)
    assert code == 1 and "already exists; choose another file name or allow replacing it (--overwrite)" in err
    assert dest.read_bytes() == b"keep"
    assert run(capsys, "models", "export", "mine", dest, "--overwrite")[0] == 0 and dest.read_bytes() != b"keep"


@pytest.mark.parametrize("env,platform,refused", [
    ({}, "linux", True),
    ({"DISPLAY": ":0"}, "linux", False),
    ({"WAYLAND_DISPLAY": "wayland-1"}, "linux", False),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({}, "darwin", False),
    ({}, "win32", False),
])
def test_display_problem(env, platform, refused):
    from denoiser.cli.gui_cmd import display_problem

    problem = display_problem(env, platform)
    assert bool(problem) == refused
    if refused:
        assert "no display found" in problem and "denoiser denoise PHOTO -o OUT" in problem


def test_the_window_without_a_display_says_so_before_qt_loads(capsys, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setitem(sys.modules, "denoiser.gui.app", None)  # importing the window would fail the test
    code, _, err = run(capsys, "gui")
    assert code == 2 and "denoiser gui: no display found" in err and "xcb" not in err


def test_denoiser_gui_entry_point_without_a_display_says_so(capsys, monkeypatch):
    from denoiser.gui.app import main as gui_main  # the `denoiser-gui` script

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert gui_main([]) == 2
    assert "denoiser-gui: no display found" in capsys.readouterr().err
