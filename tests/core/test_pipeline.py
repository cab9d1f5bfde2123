"""core.pipeline.process_photo (one photo, every caller) and core.claims (two runs, one folder)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.core.claims import Held, claim_path, take
from denoiser.core.pipeline import (
    DONE,
    FAILED,
    ROUTES,
    SKIPPED,
    EngineCache,
    PhotoOptions,
    PhotoResult,
    PhotoTask,
    process_photo,
)

ROOT = Path(__file__).resolve().parents[2]


def _photo(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(128 + rng.normal(0, 20, (40, 56, 3)), 0, 255).astype(np.uint8)).save(path)
    return path


def _options(model: Path, **kw) -> PhotoOptions:
    return PhotoOptions(model=str(model), device="cpu", **kw)


def test_auto_measures_the_map_once_even_when_another_model_takes_the_photo(tmp_path, tiny_model_file,
                                                                            monkeypatch) -> None:
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.model.profiles import Choice

    calls = []
    real = Denoiser.noise_map
    monkeypatch.setattr(Denoiser, "noise_map", lambda self, px: calls.append(px.shape) or real(self, px))
    profile = Denoiser.from_file(tiny_model_file, device="cpu")
    profile.model_name = "profile-x"

    class Chooser:
        def for_exif(self, exif):
            return profile, Choice("profile-x", "camera profile profile-x (Test Cam)")

    engines = EngineCache()
    monkeypatch.setattr(engines, "chooser", lambda options: Chooser())
    src = _photo(tmp_path / "a.png")
    result = process_photo(PhotoTask(src, tmp_path / "out" / "a.png"), _options(tiny_model_file), engines)
    assert result.status == DONE, result.reason
    assert result.model == "profile-x" and "camera profile" in result.model_reason
    assert calls == [(40, 56, 3)]  # measured once, on the default engine, and reused by the profile
    assert result.level is not None and result.level.is_auto and result.level.map is None


def test_a_photo_held_by_another_run_is_skipped_naming_the_holder(tmp_path, tiny_model_file) -> None:
    src, out = _photo(tmp_path / "a.png"), tmp_path / "out" / "a.png"
    out.parent.mkdir()
    with take(out, "other-run"):
        result = process_photo(PhotoTask(src, out), _options(tiny_model_file, strength=10), EngineCache())
        assert result.status == SKIPPED and f"pid {os.getpid()}" in result.reason
        assert not out.exists()
    assert not claim_path(out).exists()  # released with the claim
    result = process_photo(PhotoTask(src, out), _options(tiny_model_file, strength=10), EngineCache())
    assert result.status == DONE and out.is_file() and not claim_path(out).exists()


def test_a_claim_left_by_a_killed_process_is_taken_over(tmp_path) -> None:
    out = tmp_path / "a.png"
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from denoiser.core.claims import take
        claim = take(Path({str(out)!r}), "killed")
        print("held", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(Held, match=f"pid {proc.pid}"):
            take(out)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert claim_path(out).exists()  # a kill -9 leaves the file; its lock went with the process
    with take(out, "next") as claim:
        assert claim.fd >= 0
    assert not claim_path(out).exists()


def test_an_output_finished_by_another_run_since_the_plan_is_not_redone(tmp_path, tiny_model_file) -> None:
    src, out = _photo(tmp_path / "a.png"), tmp_path / "out" / "a.png"
    out.parent.mkdir()
    out.write_bytes(b"made by the other run")
    result = process_photo(PhotoTask(src, out), _options(tiny_model_file, strength=10), EngineCache())
    assert (result.status, result.reason) == (SKIPPED, "output exists")
    assert out.read_bytes() == b"made by the other run"


def test_a_bad_photo_fails_in_one_line_without_its_path(tmp_path, tiny_model_file) -> None:
    src = tmp_path / "bad.png"
    src.write_text("not a picture")
    result = process_photo(PhotoTask(src, tmp_path / "out" / "bad.png"), _options(tiny_model_file), EngineCache())
    assert result.status == FAILED and "not an image" in result.reason and str(src) not in result.reason
    assert not (tmp_path / "out").exists()  # the folder made for it went with it: nothing left behind


def test_route_dispatches_on_the_planned_output_format(tmp_path, monkeypatch) -> None:
    """The seam another path (RAW→DNG) plugs into: registered under its output format, taken by every caller."""
    seen = []

    def fake_route(task, options, engines, progress, prepared):
        seen.append((task.source.name, options.fmt))
        return PhotoResult(DONE, output=task.output)

    monkeypatch.setitem(ROUTES, ".xyz", fake_route)
    src = _photo(tmp_path / "a.png")
    result = process_photo(PhotoTask(src, tmp_path / "o" / "a.xyz"), PhotoOptions(fmt="xyz"), EngineCache())
    assert result.status == DONE and seen == [("a.png", "xyz")]


def test_denoise_of_several_files_matches_a_batch_pixel_for_pixel(tmp_path, tiny_model_file, capsys) -> None:
    from denoiser.cli import main

    for k in range(2):
        _photo(tmp_path / "in" / f"p{k}.png", k)
    files = sorted((tmp_path / "in").iterdir())
    assert main(["denoise", *map(str, files), "--out-dir", str(tmp_path / "d"), "--model", str(tiny_model_file),
                 "--device", "cpu"]) == 0
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "b"), "--model", str(tiny_model_file),
                 "--device", "cpu"]) == 0
    for f in files:
        a = np.asarray(Image.open(tmp_path / "d" / f"{f.stem}-denoised.png"))
        b = np.asarray(Image.open(tmp_path / "b" / f"{f.stem}-denoised.png"))
        assert np.array_equal(a, b) and np.abs(a.astype(int) - np.asarray(Image.open(f), int)).max() > 0


def test_cancel_goes_on_up_and_leaves_nothing(tmp_path, tiny_model_file) -> None:
    from denoiser.core.progress import Cancelled, CancelToken

    token = CancelToken()
    token.cancel()
    src, out = _photo(tmp_path / "a.png"), tmp_path / "out" / "sub" / "a.png"
    with pytest.raises(Cancelled):
        process_photo(PhotoTask(src, out), _options(tiny_model_file, strength=10), EngineCache(), token)
    assert not (tmp_path / "out").exists()
