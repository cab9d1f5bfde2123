"""Controls, camera profiles, the removed-detail score and the XMP note through a folder job and `denoise`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.core.batch.runner import BatchOptions, run_batch
from denoiser.core.inference.controls import Component, Controls
from denoiser.core.io.photo import load_photo
from denoiser.core.model.file import ModelCard, save_model
from denoiser.core.model.registry import user_models_dir
from tests.conftest import make_tiny_model


def photo_jpeg(path: Path, seed: int, camera: tuple[str, str, int] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    px = np.clip(rng.normal(128, 30, (48, 64, 3)), 0, 255).astype(np.uint8)
    e = Image.Exif()
    if camera:
        e[0x010F], e[0x0110] = camera[:2]
        e.get_ifd(0x8769)[0x8827] = camera[2]
    Image.fromarray(px).save(path, "JPEG", quality=95, exif=e.tobytes())
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):  # mid-tones: no clipping, so luma-preservation shows to rounding
        Image.fromarray(rng.integers(96, 160, (40, 56, 3), dtype=np.uint8)).save(src / f"p{i}.png")
    return src


def xmp_of(path: Path) -> str:
    return (load_photo(path).xmp or b"").decode()


def test_detail_100_returns_the_input_and_the_report_and_xmp_say_so(folder, tmp_path, tiny_model_file):
    report = tmp_path / "report.json"
    opts = BatchOptions(folder, tmp_path / "out", model=str(tiny_model_file), strength=25.0, report=report,
                        controls=Controls(detail=1.0))
    result = run_batch(opts)
    assert result.ok and len(result.done) == 2
    for item in result.done:
        src = np.asarray(Image.open(item.source))
        np.testing.assert_array_equal(np.asarray(Image.open(item.output)), src)
        assert 'pdn:Detail="100%"' in xmp_of(item.output) and 'pdn:Model="tiny"' in xmp_of(item.output)
    rows = json.loads(report.read_text())["files"]
    assert all(r["model"] == "tiny" and r["removed_detail_pct"] == 0.0 for r in rows)  # nothing removed


def test_chroma_only_keeps_luma_through_the_job(folder, tmp_path, tiny_model_file):
    opts = BatchOptions(folder, tmp_path / "out", model=str(tiny_model_file), strength=50.0,
                        controls=Controls(luma=Component("scale", 0.0)))
    result = run_batch(opts)
    w = np.array([0.299, 0.587, 0.114])
    for item in result.done:
        src = np.asarray(Image.open(item.source), np.float64)
        out = np.asarray(Image.open(item.output), np.float64)
        assert np.abs(src @ w - out @ w).max() <= 1.5  # rounding to 8 bits per channel
        assert 'pdn:Luma="0x"' in xmp_of(item.output)


def _install(tmp_path: Path, monkeypatch) -> None:
    """A tiny shipped default and a tiny user profile for a Canon EOS R5 at ISO 3200-6400."""
    monkeypatch.setenv("DENOISER_RESOURCES", str(tmp_path / "res"))
    model = make_tiny_model(0)
    save_model(tmp_path / "res/models/default.safetensors", model, ModelCard(name="default", config=model.config))
    other = make_tiny_model(1)
    camera = {"make": "Canon", "model": "Canon EOS R5", "iso_min": 3200, "iso_max": 6400, "photos": 8}
    save_model(user_models_dir() / "r5.safetensors", other,
               ModelCard(name="r5", config=other.config, training={"mode": "noisy", "camera": camera}))


def test_batch_picks_the_camera_profile_per_photo_unless_pinned(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch)
    src = tmp_path / "shoot"
    src.mkdir()
    photo_jpeg(src / "r5.jpg", 0, ("Canon", "Canon EOS R5", 4000))
    photo_jpeg(src / "other.jpg", 1, ("SONY", "ILCE-7M3", 4000))
    photo_jpeg(src / "none.jpg", 2)
    result = run_batch(BatchOptions(src, tmp_path / "auto", strength=20.0))
    assert {i.rel.name: i.model for i in result.done} == {"r5.jpg": "r5", "other.jpg": "default",
                                                          "none.jpg": "default"}
    pinned = run_batch(BatchOptions(src, tmp_path / "pinned", strength=20.0, model="default"))
    assert {i.model for i in pinned.done} == {"default"}


def test_batch_cli_summary_names_the_models_used(tmp_path, monkeypatch, capsys):
    from denoiser.cli import main

    _install(tmp_path, monkeypatch)
    src = tmp_path / "shoot"
    src.mkdir()
    photo_jpeg(src / "a.jpg", 0, ("Canon", "Canon EOS R5", 3200))
    photo_jpeg(src / "b.jpg", 1)
    photo_jpeg(src / "c.jpg", 2)
    assert main(["batch", str(src), "-o", str(tmp_path / "out"), "--strength", "20", "--device", "cpu",
                 "--luma", "0.5x"]) == 0
    assert "models: default (2), r5 (1)" in capsys.readouterr().out
    assert 'pdn:Luma="0.5x"' in xmp_of(tmp_path / "out" / "b-denoised.jpg")


def test_denoise_cli_takes_the_controls_and_the_profile(tmp_path, monkeypatch, capsys):
    from denoiser.cli import main

    _install(tmp_path, monkeypatch)
    src = photo_jpeg(tmp_path / "shot.jpg", 0, ("Canon", "Canon EOS R5", 3200))
    out = tmp_path / "shot-out.png"
    rc = main(["denoise", str(src), "-o", str(out), "--strength", "20", "--chroma", "0.5x", "--detail", "30",
               "--device", "cpu"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "camera profile r5 (Canon EOS R5, ISO 3200)" in text and "removed detail" in text
    xmp = xmp_of(out)
    assert 'pdn:Model="r5"' in xmp and 'pdn:Chroma="0.5x"' in xmp and 'pdn:Detail="30%"' in xmp


@pytest.mark.parametrize("flag,value", [("--luma", "2x"), ("--chroma", "300"), ("--detail", "120")])
def test_bad_control_values_are_usage_errors(tmp_path, capsys, flag, value):
    from denoiser.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), flag, value])
    assert exc.value.code == 2
    assert value in capsys.readouterr().err


def test_batch_summary_lists_photos_to_check_for_removed_detail(capsys):
    from pathlib import PurePosixPath

    from denoiser.cli.batch_cmd import _summary
    from denoiser.core.batch.plan import DONE, BatchItem
    from denoiser.core.batch.runner import BatchResult

    items = [BatchItem(PurePosixPath(f"p{i}.jpg"), Path(f"p{i}.jpg"), None, DONE, model="default",
                       detail_score=score) for i, score in enumerate((0.1, 4.2, 1.5, 0.0))]
    _summary(BatchResult(items=items))
    out = capsys.readouterr().out
    assert "check for removed detail: p1.jpg (4.2 %), p2.jpg (1.5 %)" in out and "p0.jpg" not in out
    assert "models:" not in out  # one model for all
