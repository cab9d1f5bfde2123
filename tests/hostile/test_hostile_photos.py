"""Careless and hostile photos through `denoiser denoise`: one clear line each, the right exit code, inputs
untouched, no temp file left, and memory bounded for files that declare far more pixels than they hold."""
from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hostile_util import png_bomb, snapshot, temp_files, write_png
from PIL import Image


def _frames() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]


def _zero(d: Path) -> Path:
    (d / "zero.png").write_bytes(b"")
    return d / "zero.png"


def _truncated(d: Path) -> Path:
    data = write_png(d / "full.png", size=(64, 64)).read_bytes()
    (d / "full.png").unlink()
    (d / "cut.png").write_bytes(data[: len(data) // 2])
    return d / "cut.png"


def _cmyk(d: Path) -> Path:
    Image.open(write_png(d / "rgb.png")).convert("CMYK").save(d / "cmyk.jpg")
    (d / "rgb.png").unlink()
    return d / "cmyk.jpg"


def _grey16(d: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 65535, (40, 40), dtype=np.uint16)).save(d / "g16.png")
    return d / "g16.png"


def _alpha(d: Path) -> Path:
    rgba = np.random.default_rng(0).integers(0, 255, (40, 40, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(d / "alpha.png")
    return d / "alpha.png"


def _animated(d: Path) -> Path:
    f = _frames()
    f[0].save(d / "anim.webp", save_all=True, append_images=f[1:])
    return d / "anim.webp"


def _gif(d: Path) -> Path:
    f = _frames()
    f[0].save(d / "anim.gif", save_all=True, append_images=f[1:])
    return d / "anim.gif"


def _float_tiff(d: Path) -> Path:
    tifffile.imwrite(d / "float.tif", np.random.default_rng(0).random((40, 40, 3), dtype=np.float32),
                     photometric="rgb")
    return d / "float.tif"


def _one_pixel(d: Path) -> Path:
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "one.png")
    return d / "one.png"


def _wrong_extension(d: Path) -> Path:
    (d / "really-a-png.jpg").write_bytes(write_png(d / "x.png").read_bytes())
    (d / "x.png").unlink()
    return d / "really-a-png.jpg"


def _unicode(d: Path) -> Path:
    return write_png(d / "フォト ñ ☃" / "été.png")


def _text(d: Path) -> Path:
    (d / "notes.png").write_text("this is not a photo")
    return d / "notes.png"


def _bomb_over(d: Path) -> Path:
    return png_bomb(d / "bomb-400mp.png", 20000, 20000)


def _bomb_under(d: Path) -> Path:
    return png_bomb(d / "bomb-225mp.png", 15000, 15000)


CASES: list[tuple[Callable[[Path], Path], tuple[str, ...], int, str]] = [
    (_zero, (), 1, "the file is empty (0 bytes)"),
    (_truncated, (), 1, "truncated"),
    (_text, (), 1, "not an image"),
    (_cmyk, (), 0, "cmyk-denoised.jpg"),
    (_grey16, (), 0, "g16-denoised.png"),
    (_alpha, (), 0, "alpha-denoised.png"),
    (_animated, (), 1, "animated images are not supported"),
    (_gif, (), 1, "unsupported format GIF"),
    (_float_tiff, (), 1, "only 8- and 16-bit integer TIFFs are supported"),
    (_one_pixel, (), 1, "(--strength"),
    (_one_pixel, ("--strength", "5"), 0, "one-denoised.png"),
    (_wrong_extension, (), 0, "really-a-png-denoised.jpg"),
    (_unicode, (), 0, "été-denoised.png"),
    (_bomb_over, (), 1, "exceeds the limit of 250 MP (raise it with --max-megapixels)"),
    (_bomb_under, (), 1, "needs about 22.5 GB of memory, more than the default budget of 2.0 GB"),
    (_bomb_under, ("--max-memory", "8"), 1, "above the limit of 8.0 GB; raise it with --max-memory 23"),
]


@pytest.mark.parametrize("make,extra,code,message", CASES, ids=[f"{c[0].__name__[1:]}{len(c[1])}" for c in CASES])
def test_hostile_photo(cli, tmp_path: Path, tiny_model_file: Path, monkeypatch, make, extra, code, message) -> None:
    import denoiser.core.io.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 4_000_000_000)  # the same verdicts on any machine
    inputs = tmp_path / "in"
    inputs.mkdir()
    src = make(inputs)
    before = snapshot(inputs)
    out_dir = tmp_path / "out"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    got, out, err = cli("denoise", src, "--out-dir", out_dir, "--model", tiny_model_file, *extra)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss < 300e6  # never decoded a bomb
    assert got == code, err
    assert message in (out if code == 0 else err)
    assert "Traceback" not in err and str(src.name) in (out if code == 0 else err)
    assert snapshot(inputs) == before and not temp_files(tmp_path)
    written = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    assert len(written) == (1 if code == 0 else 0)


def test_alpha_and_16_bits_survive(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    alpha, grey = _alpha(tmp_path), _grey16(tmp_path)
    assert cli("denoise", alpha, grey, "--out-dir", tmp_path / "o", "--model", tiny_model_file,
               "--strength", "5")[0] == 0
    with Image.open(tmp_path / "o" / "alpha-denoised.png") as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[..., 3], np.asarray(Image.open(alpha))[..., 3])
    with Image.open(tmp_path / "o" / "g16-denoised.png") as im:
        assert np.asarray(im).dtype == np.uint16 or im.mode.startswith("I")


@pytest.mark.parametrize("kind", ["pillow", "tifffile"])
def test_a_multi_page_tiff_warns_that_later_pages_are_not_kept(cli, tmp_path: Path, tiny_model_file: Path,
                                                              caplog, kind: str) -> None:
    path = tmp_path / "pages.tif"
    if kind == "pillow":
        f = _frames()
        f[0].save(path, save_all=True, append_images=f[1:])
    else:  # 16-bit: read with tifffile
        tifffile.imwrite(path, np.random.default_rng(0).integers(0, 65535, (3, 32, 32, 3), dtype=np.uint16),
                         photometric="rgb")
    with caplog.at_level(logging.WARNING):
        code, _, _ = cli("denoise", path, "--out-dir", tmp_path / "o", "--model", tiny_model_file,
                         "--strength", "5")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if "pages" in r.getMessage()]
    assert warnings == [f"{path} has 3 pages: only the first is denoised and saved (split the file to keep "
                        "the others)"]


def test_a_symlinked_output_is_replaced_not_written_through(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    src = write_png(tmp_path / "a.png")
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"someone else's file")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "a-denoised.png").symlink_to(elsewhere)
    code, _, err = cli("denoise", src, "--out-dir", tmp_path / "o", "--model", tiny_model_file, "--strength", "5",
                       "--overwrite")
    assert code == 0, err
    assert elsewhere.read_bytes() == b"someone else's file"
    assert not (tmp_path / "o" / "a-denoised.png").is_symlink() and not temp_files(tmp_path)


@pytest.mark.parametrize("template", ["../{stem}", "{stem}/../../x", "/tmp/{stem}", "{name}/..", "{stem}\\..\\x"])
def test_batch_name_templates_cannot_escape(cli, tmp_path: Path, template: str) -> None:
    write_png(tmp_path / "in" / "a.png")
    before = snapshot(tmp_path)
    code, _, err = cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--name", template)
    assert code == 2 and "must give a file name, not a path" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("make", [_zero, _text, _gif, _bomb_over, _bomb_under])
def test_bad_photos_are_refused_before_the_model_loads(cli, tmp_path: Path, no_model, monkeypatch, make) -> None:
    import denoiser.core.io.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 4_000_000_000)
    src = make(tmp_path)
    code, _, err = cli("denoise", src, "--out-dir", tmp_path / "out")
    assert code == 1 and f"{src}: " in err and not (tmp_path / "out").exists()
