"""HEIC (phones) and AVIF: read in the window, `denoise` and `batch` alike (core.io), written with EXIF, ICC and
XMP kept (issue 30 item 12)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from denoiser.core.io.photo import load_photo, save_photo

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:t="urn:t" t:k="v"/></rdf:RDF></x:xmpmeta>')


def phone_photo(path: Path, fmt: str, orientation: int = 1) -> np.ndarray:
    import pillow_heif  # noqa: F401 - the opener io.read registers

    import denoiser.core.io.read  # noqa: F401

    y, x = np.mgrid[0:48, 0:64]
    arr = np.stack([x * 4, y * 5, np.full_like(x, 128)], axis=2).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "PhoneCam", orientation
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(arr).save(path, fmt, quality=95, exif=exif.tobytes(), icc_profile=icc, xmp=XMP)
    return arr


@pytest.mark.parametrize("suffix, fmt", [(".heic", "HEIF"), (".avif", "AVIF")])
def test_phone_formats_are_read_with_their_metadata(tmp_path: Path, suffix: str, fmt: str) -> None:
    arr = phone_photo(tmp_path / f"p{suffix}", fmt)
    photo = load_photo(tmp_path / f"p{suffix}")
    assert photo.format == fmt and (photo.width, photo.height) == (64, 48)
    assert np.abs(photo.pixels * 255 - arr).mean() < 4  # lossy, but the same picture
    assert b"PhoneCam" in photo.exif and photo.icc and b'k="v"' in photo.xmp


@pytest.mark.parametrize("suffix, fmt", [(".heic", "HEIF"), (".avif", "AVIF")])
def test_a_rotated_phone_photo_is_turned_once(tmp_path: Path, suffix: str, fmt: str) -> None:
    phone_photo(tmp_path / f"r{suffix}", fmt, orientation=6)  # 'rotate 90 clockwise to view'
    photo = load_photo(tmp_path / f"r{suffix}")
    assert (photo.width, photo.height) == (48, 64)


@pytest.mark.parametrize("suffix, fmt", [(".heic", "HEIF"), (".avif", "AVIF")])
def test_heif_and_avif_are_written_keeping_exif_icc_xmp(tmp_path: Path, suffix: str, fmt: str) -> None:
    phone_photo(tmp_path / "in.heic", "HEIF")
    photo = load_photo(tmp_path / "in.heic")
    out = save_photo(photo, tmp_path / f"out{suffix}", fmt="keep" if suffix == ".heic" else "avif", quality=92)
    again = load_photo(out)
    assert out.suffix == suffix and again.format == fmt
    assert b"PhoneCam" in again.exif and again.icc == photo.icc and b'k="v"' in again.xmp
    assert np.abs(again.pixels - photo.pixels).mean() < 4 / 255
    with Image.open(out) as im:
        assert im.getexif().get(0x0112, 1) == 1  # pixels are upright; nothing turns them again


def test_denoise_and_batch_take_heic(tmp_path: Path, tiny_model: str) -> None:
    from denoiser.cli import main

    folder = tmp_path / "phone"
    folder.mkdir()
    phone_photo(folder / "IMG_1.heic", "HEIF")
    phone_photo(folder / "IMG_2.avif", "AVIF")
    assert main(["denoise", str(folder / "IMG_1.heic"), "-o", str(tmp_path / "one.heic"), "--model", tiny_model,
                 "--device", "cpu", "--strength", "10"]) == 0
    assert load_photo(tmp_path / "one.heic").format == "HEIF"
    assert main(["batch", str(folder), "-o", str(tmp_path / "out"), "--model", tiny_model, "--device", "cpu",
                 "--strength", "10"]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert [n for n in written if n.startswith("IMG")] == ["IMG_1-denoised.heic", "IMG_2-denoised.avif"]


@pytest.mark.skipif(__import__("shutil").which("exiftool") is None, reason="exiftool not installed")
@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_exiftool_reads_the_kept_metadata(tmp_path: Path, suffix: str) -> None:
    import subprocess

    phone_photo(tmp_path / "in.heic", "HEIF")
    out = save_photo(load_photo(tmp_path / "in.heic"), tmp_path / f"out{suffix}", quality=90)
    text = subprocess.run(["exiftool", "-Make", "-ProfileDescription", "-XMP:all", str(out)], capture_output=True,
                          text=True, check=True).stdout
    assert "PhoneCam" in text and "sRGB" in text and ": v" in text
