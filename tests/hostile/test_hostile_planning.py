"""Odd names at planning: a name that cannot be made, a name that is not UTF-8, a link loop, a template with
a format, a job's own outputs inside its input folder. Each is that file's failure (or a clear usage error),
found before the work, and the rest of the job goes on."""
from __future__ import annotations

import csv
import json
import logging
import os
import signal
from pathlib import Path

import pytest
from hostile_util import snapshot, temp_files, write_png
from PIL import Image

LONG = "p" * 245  # a legal name (249 bytes with .png); "<stem>-denoised.png" is not


def _run(cli, *args):
    code, out, err = cli(*args)
    assert "Traceback" not in err and "Errno" not in out + err, err
    return code, out, err


@pytest.mark.parametrize("command", ["batch", "denoise"])
def test_an_output_name_too_long_fails_that_file_and_the_rest_is_done(cli, tmp_path: Path, tiny_model_file: Path,
                                                                      command: str) -> None:
    long_src = write_png(tmp_path / "in" / f"{LONG}.png")
    normal = write_png(tmp_path / "in" / "a.png", seed=1)
    before = snapshot(tmp_path / "in")
    src = [tmp_path / "in"] if command == "batch" else [long_src, normal]
    flag = "-o" if command == "batch" else "--out-dir"
    code, out, err = _run(cli, command, *src, flag, tmp_path / "out", "--model", tiny_model_file, "--strength", "5")
    assert code == 1
    assert "the output name would be 258 bytes long, more than the 240 a file name may take" in out + err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-denoised.png"]
    assert snapshot(tmp_path / "in") == before and not temp_files(tmp_path)


@pytest.mark.parametrize("template", ["{stem:>400000000}", "{stem:.0}", "{stem!r}", "{stem!s:>9}"])
def test_templates_take_plain_fields_only(cli, tmp_path: Path, template: str) -> None:
    write_png(tmp_path / "in" / "a.png")
    code, _, err = _run(cli, "batch", tmp_path / "in", "-o", tmp_path / "out", "--name", template)
    assert code == 2 and "only plain fields such as {stem} are allowed" in err and len(err) < 500
    assert not (tmp_path / "out").exists()


def test_a_name_that_is_not_utf8_gets_a_report_and_a_summary(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    folder = tmp_path / "in"
    write_png(folder / "a.png")
    raw = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    os.rename(folder / "a.png", folder / raw)
    report = tmp_path / "r.csv"
    code, out, err = _run(cli, "batch", folder, "-o", tmp_path / "out", "--report", report,
                          "--model", tiny_model_file, "--strength", "5")
    assert code == 0, err
    assert "finished" in out and "1 done" in out
    rows = list(csv.DictReader(report.read_text(encoding="utf-8").splitlines()))
    assert rows[0]["file"] == "caf\\xe9.png" and rows[0]["status"] == "done"
    assert os.listdir(tmp_path / "out") == [os.fsdecode(b"caf\xe9-denoised.png")]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    names = ["=HYPERLINK(1).png", "+1.png", "@x.png", "-y.png", "plain.png"]
    for i, name in enumerate(names):
        write_png(tmp_path / "in" / name, seed=i)
    report = tmp_path / "r.csv"
    code, _, err = _run(cli, "batch", tmp_path / "in", "-o", tmp_path / "out", "--report", report,
                        "--model", tiny_model_file, "--strength", "5")
    assert code == 0, err
    cells = [r["file"] for r in csv.DictReader(report.read_text().splitlines())]
    assert sorted(cells) == sorted(["'=HYPERLINK(1).png", "'+1.png", "'@x.png", "'-y.png", "plain.png"])
    outputs = [r["output"] for r in csv.DictReader(report.read_text().splitlines())]
    assert all(not o.startswith(("=", "+", "-", "@")) for o in outputs)


def test_a_link_loop_as_an_input_fails_that_file(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    normal = write_png(tmp_path / "a.png")
    code, _, err = _run(cli, "denoise", loop, normal, "--out-dir", tmp_path / "out", "--model", tiny_model_file,
                        "--strength", "5")
    assert code == 1 and f"{loop}: is a symbolic link loop" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-denoised.png"]


@pytest.mark.parametrize("command", ["batch", "denoise"])
def test_a_link_loop_as_the_output_folder_is_refused(cli, tmp_path: Path, tiny_model_file: Path,
                                                     command: str) -> None:
    write_png(tmp_path / "in" / "a.png")
    loop = tmp_path / "out"
    loop.symlink_to(loop)
    before = snapshot(tmp_path)
    if command == "batch":
        code, _, err = _run(cli, "batch", tmp_path / "in", "-o", loop, "--model", tiny_model_file)
        assert code == 2
    else:
        code, _, err = _run(cli, "denoise", tmp_path / "in" / "a.png", "--out-dir", loop, "--model",
                            tiny_model_file)
        assert code in (1, 2)
    assert "symbolic link loop" in err and snapshot(tmp_path) == before


def test_allow_inside_run_twice_never_denoises_its_own_outputs(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    folder = tmp_path / "in"
    write_png(folder / "a.png")
    args = ("batch", folder, "-o", folder, "--allow-inside", "--model", tiny_model_file, "--strength", "5",
            "--report", tmp_path / "r.json")
    assert _run(cli, *args)[0] == 0
    code, _, err = _run(cli, *args)
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["a-denoised.png", "a.png"]
    rows = {r["file"]: r for r in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert rows["a-denoised.png"]["status"] == "skipped" and "an output of this job (from a.png)" in \
        rows["a-denoised.png"]["reason"]
    assert rows["a.png"]["reason"] == "output exists"


def test_a_stale_part_beside_a_finished_output_is_removed(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    write_png(tmp_path / "in" / "a.png")
    args = ("batch", tmp_path / "in", "-o", tmp_path / "out", "--model", tiny_model_file, "--strength", "5")
    assert _run(cli, *args)[0] == 0
    stale = tmp_path / "out" / ".a-denoised.png.k2j_9xq0.part"
    stale.write_bytes(b"left by a killed run")
    assert _run(cli, *args)[0] == 0
    assert not stale.exists() and (tmp_path / "out" / "a-denoised.png").is_file()


def test_sigterm_as_the_last_photo_finishes_exits_143(cli, tmp_path: Path, tiny_model_file: Path,
                                                      monkeypatch) -> None:
    import denoiser.core.pipeline as batch

    write_png(tmp_path / "in" / "a.png")
    real = batch.save_photo

    def save_then_signal(*args, **kwargs):
        out = real(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)  # the system stops us as the only photo is saved
        return out

    monkeypatch.setattr(batch, "save_photo", save_then_signal)
    code, _, err = cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--model", tiny_model_file,
                       "--strength", "5")
    assert "stopping" in err and code == 143


def test_jpeg_output_with_oversized_xmp_keeps_the_note_and_warns(cli, tmp_path: Path, tiny_model_file: Path,
                                                                caplog) -> None:
    from denoiser.core.io import meta

    src = write_png(tmp_path / "a.png")
    packet = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              + b"<!--" + b"x" * 500_000 + b"--></rdf:RDF></x:xmpmeta>")
    src.write_bytes(meta.png_with_metadata(src.read_bytes(), None, None, packet))
    with caplog.at_level(logging.WARNING):
        code, _, err = _run(cli, "denoise", src, "-o", tmp_path / "o.jpg", "--format", "jpeg",
                            "--model", tiny_model_file, "--strength", "5")
    assert code == 0, err
    assert any("does not fit in the format's 63 KB; only the denoiser's note is kept" in r.getMessage()
               for r in caplog.records)
    with Image.open(tmp_path / "o.jpg") as im:
        xmp = im.info.get("xmp", b"")
    assert b"pdn:Strength" in xmp and len(xmp) < 2000
