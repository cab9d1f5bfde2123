"""core.files.atomic_write: the one writer of every file (photos, models, checkpoints, reports)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from denoiser.core.files import OutputFileError, atomic_write_bytes, remove_stale_parts

DEAD_PID = 2 ** 22 + 17  # above the kernel's pid_max default: no process has it


def test_a_killed_writers_temp_files_are_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.pt"
    killed = tmp_path / f".checkpoint.pt.k2j_9xq0.{DEAD_PID}.part"
    legacy = tmp_path / ".checkpoint.pt.a1b2c3d4.tmp"  # what 0.1.0's bytes writer left
    running = tmp_path / f".checkpoint.pt.zz99yy88.{os.getpid()}.part"  # a live writer (this process)
    other = [tmp_path / ".other.pt.k2j_9xq0.part", tmp_path / ".checkpoint.pt.notes.part"]
    for p in (killed, legacy, running, *other):
        p.write_bytes(b"half")
    atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert not killed.exists() and not legacy.exists()
    assert running.exists() and all(p.exists() for p in other)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, running.name] + [p.name for p in other])


def test_the_batch_clean_up_removes_every_temp_of_its_outputs(tmp_path: Path) -> None:
    target = tmp_path / "a-denoised.png"
    temps = [tmp_path / ".a-denoised.png.k2j_9xq0.part", tmp_path / f".a-denoised.png.k2j_9xq0.{os.getpid()}.part"]
    for p in temps:
        p.write_bytes(b"half")
    assert sorted(remove_stale_parts([target])) == sorted(temps)


def test_no_clobber_refuses_a_file_that_exists(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"mine")
    with pytest.raises(OutputFileError, match="already exists"):
        atomic_write_bytes(target, b"new", overwrite=False)
    assert target.read_bytes() == b"mine" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_photos_are_written_by_the_same_writer(tmp_path: Path) -> None:
    from denoiser.core.io.photo import Photo, save_photo

    stale = tmp_path / f".a.png.k2j_9xq0.{DEAD_PID}.part"
    stale.write_bytes(b"half")
    out = save_photo(Photo(np.zeros((8, 8, 3), np.float32)), tmp_path / "a.png")
    assert out.is_file() and not stale.exists()
