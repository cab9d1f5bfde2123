"""`denoiser batch` end to end on a folder of good photos mixed with every kind of bad file."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main

GOOD = ["a.jpg", "b.png", "sub/c.png", "sub/deeper/d.tif"]
BAD = {  # file -> words its reason must contain
    "zero.jpg": "empty",
    "truncated.jpg": "truncated",
    "fake.png": "not an image",
    "locked.png": "permission denied",
}
UNSUPPORTED = {"anim.gif": "unsupported file type (.gif)"}


def noisy(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(30, 220, w)[None, :, None] * np.ones((h, 1, channels))
    return np.clip(base + rng.normal(0, 18, (h, w, channels)), 0, 255).astype(np.uint8)


def jpeg_bytes(h: int, w: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(noisy(h, w, seed)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def make_mixed_folder(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg_bytes(48, 64, 1))
    Image.fromarray(noisy(40, 40, 2, 1)[..., 0]).save(root / "b.png")
    Image.fromarray(np.dstack([noisy(32, 48, 3), np.full((32, 48), 200, np.uint8)])).save(root / "sub" / "c.png")
    Image.fromarray(noisy(36, 52, 4)).save(root / "sub" / "deeper" / "d.tif")
    (root / "zero.jpg").write_bytes(b"")
    whole = jpeg_bytes(96, 128, 5)
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "fake.png").write_text("this is a text file, not a PNG\n")
    Image.fromarray(noisy(16, 16, 6)).save(root / "anim.gif")
    Image.fromarray(noisy(24, 24, 7)).save(root / "locked.png")
    return root


def hashes(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            mode = p.stat().st_mode
            os.chmod(p, 0o600)  # hash even the unreadable one (and put its mode back)
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
            os.chmod(p, mode)
    return out


@pytest.fixture
def mixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The mixed folder; locked.png cannot be read (simulated where chmod 000 does not stop root)."""
    folder = make_mixed_folder(tmp_path / "in")
    locked = folder / "locked.png"
    os.chmod(locked, 0)
    if os.access(locked, os.R_OK):  # running as root: permission bits do not stop reads
        import denoiser.core.io.photo as photo

        real = photo._open_for_read

        def deny(p: Path):
            if Path(p).name == "locked.png":
                raise PermissionError(13, "Permission denied", str(p))
            return real(p)

        monkeypatch.setattr(photo, "_open_for_read", deny)
    yield folder
    os.chmod(locked, 0o644)


def run_cli(*args: str) -> int:
    return main(["batch", *args])


def test_mixed_folder(mixed: Path, tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    before = hashes(mixed)
    out, report = tmp_path / "out", tmp_path / "report.json"
    code = run_cli(str(mixed), "-o", str(out), "--recursive", "--model", tiny_model, "--device", "cpu",
                   "--report", str(report))
    assert code == 1
    assert hashes(mixed) == before  # inputs untouched, nothing written into the input folder
    expected = {"a-denoised.jpg", "b-denoised.png", "sub/c-denoised.png", "sub/deeper/d-denoised.tif"}
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == expected
    for name in expected:
        with Image.open(out / name) as im:
            im.load()
    with Image.open(out / "sub" / "c-denoised.png") as im:
        assert im.mode == "RGBA" and np.all(np.asarray(im)[..., 3] == 200)  # alpha kept as it was
    rows = {r["file"]: r for r in json.loads(report.read_text())["files"]}
    assert set(rows) == set(GOOD) | set(BAD) | set(UNSUPPORTED)
    for name in GOOD:
        assert rows[name]["status"] == "done" and rows[name]["strength"] > 0
    for name, words in BAD.items():
        assert rows[name]["status"] == "failed" and words in rows[name]["reason"], rows[name]
        assert not rows[name]["reason"].startswith(str(mixed)) and rows[name]["output"] == ""
    for name, reason in UNSUPPORTED.items():
        assert (rows[name]["status"], rows[name]["reason"]) == ("skipped", reason)
    printed = capsys.readouterr().out
    assert "4 done" in printed and "4 failed" in printed
    assert all(f"failed  {name}" in printed for name in BAD)

    # Re-running resumes: every done file is skipped, nothing is rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code = run_cli(str(mixed), "-o", str(out), "-r", "--model", tiny_model, "--device", "cpu",
                   "--report", str(report))
    assert code == 1  # the bad files still fail
    rows = {r["file"]: r for r in json.loads(report.read_text())["files"]}
    assert all(rows[name]["status"] == "skipped" and rows[name]["reason"] == "output exists" for name in GOOD)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes
    assert hashes(mixed) == before


def test_all_good_exits_zero_and_formats(tmp_path: Path, tiny_model: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(2):
        (folder / f"p{k}.jpg").write_bytes(jpeg_bytes(40, 48, k))
    code = run_cli(str(folder), "-o", str(tmp_path / "out"), "--model", tiny_model, "--device", "cpu",
                   "--format", "tiff", "--strength", "20", "--name", "{stem}_clean")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["p0_clean.tif", "p1_clean.tif"]
    with Image.open(tmp_path / "out" / "p0_clean.tif") as im:
        assert im.size == (48, 40)


def test_three_shards_cover_every_file_once(tmp_path: Path, tiny_model: str) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    names = [f"p{k}.png" for k in range(5)] + [f"sub/q{k}.png" for k in range(3)]
    for k, name in enumerate(names):
        Image.fromarray(noisy(24, 32, k)).save(folder / name)
    seen: list[str] = []
    for k in (1, 2, 3):
        report = tmp_path / f"shard{k}.csv"
        code = run_cli(str(folder), "-o", str(tmp_path / "out"), "-r", "--shard", f"{k}/3", "--model",
                       tiny_model, "--device", "cpu", "--report", str(report))
        assert code == 0
        rows = report.read_text().splitlines()[1:]
        assert rows and all(",done," in r for r in rows)
        seen += [r.split(",")[0] for r in rows]
    assert sorted(seen) == sorted(names)  # disjoint and complete
    outputs = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert len(outputs) == len(names)


@pytest.mark.parametrize("args, words", [
    (["{missing}", "-o", "{out}"], "not found"),
    (["{in}", "-o", "{in}"], "inside"),
    (["{in}", "-o", "{in}/cleaned"], "inside"),
    (["{in}", "-o", "{out}", "--shard", "0/3"], "shard"),
    (["{in}", "-o", "{out}", "--shard", "two/3"], "shard"),
    (["{in}", "-o", "{out}", "--name", "{nope}.jpg"], "template"),
    (["{in}", "-o", "{out}", "--report", "{out}/r.txt"], "report"),
    (["{in}", "-o", "{out}", "--model", "no-such-model"], "no model"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], words: str, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(noisy(16, 16, 0)).save(folder / "x.png")
    subst = {"{in}": str(folder), "{out}": str(tmp_path / "out"), "{missing}": str(tmp_path / "nope")}
    argv = []
    for a in args:
        for key, value in subst.items():
            a = a.replace(key, value)
        argv.append(a)
    assert run_cli(*argv) == 2
    assert words in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["x.png"]


def test_allow_inside_writes_into_a_subfolder_and_never_rediscovers_it(tmp_path: Path, tiny_model: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(noisy(24, 32, 0)).save(folder / "x.png")
    args = [str(folder), "-o", str(folder / "clean"), "-r", "--model", tiny_model, "--device", "cpu"]
    assert run_cli(*args, "--allow-inside") == 0
    assert (folder / "clean" / "x-denoised.png").is_file()
    assert run_cli(*args, "--allow-inside", "--report", str(tmp_path / "r.json")) == 0
    files = [r["file"] for r in json.loads((tmp_path / "r.json").read_text())["files"]]
    assert files == ["x.png"]  # the outputs inside the input are not taken as new inputs


def test_bad_quality_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(str(tmp_path), "-o", str(tmp_path / "o"), "--quality", "101")
    assert exc.value.code == 2


@pytest.mark.slow  # a subprocess
def test_entry_point_runs_a_job(tmp_path: Path, tiny_model: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(noisy(24, 24, 0)).save(folder / "x.png")
    (folder / "bad.png").write_bytes(b"")
    env = {**os.environ, "DENOISER_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "denoiser", "batch", str(folder), "-o", str(tmp_path / "out"),
                           "--model", tiny_model, "--device", "cpu"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "1 done" in proc.stdout and "bad.png" in proc.stdout and "empty" in proc.stdout
    assert (tmp_path / "out" / "x-denoised.png").is_file()
