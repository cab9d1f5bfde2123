"""`denoiser-gui --smoke-test IMAGE OUTPUT` drives the real window offscreen: 0 and a file on success,
non-zero and a printed reason on failure."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from guitest_util import EXIF_MAKE, write_photo
from PIL import Image


def smoke(image: Path, output: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "denoiser.gui.app", "--smoke-test", str(image), str(output),
                           "--smoke-timeout", str(timeout)], env=env, capture_output=True, text=True, timeout=600)


def test_smoke_test_opens_denoises_and_saves(tmp_path: Path, data_dir: Path) -> None:
    image = write_photo(tmp_path / "in.jpg")
    out = tmp_path / "out" / "clean.png"
    out.parent.mkdir()
    proc = smoke(image, out)
    assert proc.returncode == 0, proc.stderr
    assert "smoke test ok" in proc.stdout
    with Image.open(out) as im:
        assert im.size == (128, 96) and im.getexif().get(0x010F) == EXIF_MAKE


def test_smoke_test_fails_loudly_on_a_bad_image(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    proc = smoke(bad, tmp_path / "out.png")
    assert proc.returncode == 1
    assert "smoke test FAILED" in proc.stderr and "bad.png" in proc.stderr
    assert not (tmp_path / "out.png").exists()
