"""kill -TERM / -KILL while a photo is being written: no temp file survives a TERM, and a KILL's leftover
is removed by the next run. Real processes (signals reach the interpreter as they would for a user)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hostile_util import snapshot, temp_files

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def big_tiff(path: Path) -> Path:
    """A 16-bit photo large enough that writing its result takes a noticeable moment."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, rng.integers(0, 65535, (2400, 3200, 3), dtype=np.uint16), photometric="rgb")
    return path


def signal_during_write(args: list[str], out_dir: Path, signum: int) -> subprocess.CompletedProcess:
    """Start `denoiser ARGS`, wait for its temp file to appear in out_dir, send `signum`."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "denoiser", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if out_dir.is_dir() and any(p.suffix == ".part" for p in out_dir.iterdir()):
                proc.send_signal(signum)
                break
            time.sleep(0.005)
        else:
            pytest.fail(f"no temp file seen before the process ended: {proc.communicate()}")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_while_writing_leaves_no_temp_file(tmp_path: Path, tiny_model_file: Path) -> None:
    src = big_tiff(tmp_path / "in" / "big.tif")
    before = snapshot(tmp_path / "in")
    out_dir = tmp_path / "out"
    res = signal_during_write(["denoise", str(src), "--out-dir", str(out_dir), "--model", str(tiny_model_file),
                               "--strength", "10"], out_dir, signal.SIGTERM)
    assert res.returncode == 143, res.stderr
    assert "denoiser: terminated" in res.stderr and "Traceback" not in res.stderr
    assert not temp_files(tmp_path) and (not out_dir.exists() or not list(out_dir.iterdir()))  # its new folder goes too
    assert snapshot(tmp_path / "in") == before


def test_sigkill_leftover_is_removed_by_the_resuming_batch(tmp_path: Path, tiny_model_file: Path) -> None:
    big_tiff(tmp_path / "in" / "big.tif")
    out_dir = tmp_path / "out"
    args = ["batch", str(tmp_path / "in"), "-o", str(out_dir), "--model", str(tiny_model_file), "--strength", "10"]
    res = signal_during_write(args, out_dir, signal.SIGKILL)
    assert res.returncode == -signal.SIGKILL
    assert len(temp_files(out_dir)) == 1  # what a kill -9 leaves: nothing can clean up after it
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "denoiser", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert not temp_files(out_dir) and [p.name for p in out_dir.iterdir()] == ["big-denoised.tif"]
