"""Folder jobs: stale temp files, reports, blocked folders, Ctrl-C and SIGTERM, unwritable outputs."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from hostile_util import snapshot, temp_files, write_png


@pytest.fixture
def job(tmp_path: Path) -> Path:
    for name in ("a.png", "b.png", "sub/c.png"):
        write_png(tmp_path / "in" / name, seed=len(name))
    return tmp_path


def test_stale_parts_of_this_job_are_removed_and_nothing_else(cli, job: Path, tiny_model_file: Path) -> None:
    out = job / "out"
    out.mkdir()
    stale = out / ".a-denoised.png.k2j_9xq0.part"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"half a photo")
    foreign = [out / ".holiday.png.k2j_9xq0.part", out / ".a-denoised.png.notes.part", out / "a-denoised.png.part"]
    for f in foreign:
        f.write_bytes(b"not ours")
    code, _, err = cli("batch", job / "in", "-o", out, "--model", tiny_model_file, "--strength", "10")
    assert code == 0, err
    assert not stale.exists() and all(f.read_bytes() == b"not ours" for f in foreign)
    assert (out / "a-denoised.png").is_file()


def test_a_file_in_the_way_of_a_sub_folder_is_explained(cli, job: Path, tiny_model_file: Path) -> None:
    out = job / "out"
    out.mkdir()
    (out / "sub").write_bytes(b"in the way")
    code, out_text, _ = cli("batch", job / "in", "-o", out, "-r", "--model", tiny_model_file, "--strength", "10")
    assert code == 1
    assert "sub/c.png: cannot create the folder" in out_text and "a file of that name is in the way" in out_text
    assert "FileExistsError" not in out_text and "Errno" not in out_text
    assert (out / "sub").read_bytes() == b"in the way" and (out / "a-denoised.png").is_file()


def test_an_existing_file_is_never_taken_as_the_report(cli, job: Path, tiny_model_file: Path) -> None:
    notes = job / "notes.csv"
    notes.write_text("my,own,table\n1,2,3\n")
    code, _, err = cli("batch", job / "in", "-o", job / "out", "--report", notes, "--model", tiny_model_file)
    assert code == 2 and "already exists and is not a report of this tool" in err
    assert notes.read_text() == "my,own,table\n1,2,3\n" and not (job / "out").exists()


def test_a_re_run_rewrites_its_own_report(cli, job: Path, tiny_model_file: Path) -> None:
    report = job / "r.json"
    args = ("batch", job / "in", "-o", job / "out", "--report", report, "--model", tiny_model_file,
            "--strength", "10")
    assert cli(*args)[0] == 0
    assert cli(*args)[0] == 0  # resuming: everything is skipped, the report is replaced
    rows = json.loads(report.read_text())["files"]
    assert {r["status"] for r in rows} == {"skipped"}


def test_an_unwritable_output_is_refused_before_the_model_loads(cli, job: Path, monkeypatch) -> None:
    import denoiser.core.batch.runner as batch

    monkeypatch.setattr(batch, "make_denoiser", lambda opts: pytest.fail("the model was loaded first"))
    (job / "blocker").write_bytes(b"x")
    code, _, err = cli("batch", job / "in", "-o", job / "blocker" / "out")
    assert code == 2 and "is not a folder" in err


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_job_cleanly_with_the_shell_status(cli, job: Path, tiny_model_file: Path, monkeypatch,
                                                             signum: int, status: int) -> None:
    import denoiser.core.pipeline as batch

    real = batch.save_photo
    calls = []

    def save_then_signal(*args, **kwargs):
        calls.append(args[1])
        out = real(*args, **kwargs)
        signal.raise_signal(signum)  # as if the user pressed Ctrl-C (or the system stopped us) here
        return out

    monkeypatch.setattr(batch, "save_photo", save_then_signal)
    before = snapshot(job / "in")
    code, out, err = cli("batch", job / "in", "-o", job / "out", "-r", "--model", tiny_model_file,
                         "--strength", "10", "--report", job / "r.json")
    assert code == status
    assert "stopping after the current tile" in err and "run the same command again to resume" in out
    assert len(calls) == 1 and snapshot(job / "in") == before and not temp_files(job)
    statuses = sorted(r["status"] for r in json.loads((job / "r.json").read_text())["files"])
    assert statuses == ["done", "skipped", "skipped"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is \
        signal.default_int_handler  # handlers restored
