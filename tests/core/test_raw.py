"""RAW in, DNG out: the raw reader on all four Bayer phases, the sensor noise model, and every DNG the app
writes read back by LibRaw (rawpy) and checked by exiftool; darktable-cli and RawTherapee open it (slow)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from raw_util import bayer, clean_scene, write_cfa_dng

from denoiser.core.inference.raw_path import RawOptions, raw_to_dng, sensor_noise
from denoiser.core.io.raw import read_raw
from denoiser.core.noise.sensor import SensorNoise

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
NEUTRAL = (0.5, 1.0, 0.625)  # AsShotNeutral -> white balance (2, 1, 1.6)


def noisy_mosaic(h: int, w: int, pattern: str, a: float, b: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = bayer(clean_scene(h, w, seed), pattern)
    rng = np.random.default_rng(seed + 1)
    return clean, clean + rng.normal(size=clean.shape) * np.sqrt(a * np.maximum(clean, 0) + b)


@pytest.fixture(scope="module")
def engine(tiny_model):
    from denoiser.core.inference.engine import Denoiser

    return Denoiser.from_file(Path(tiny_model))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_read_raw_keeps_each_bayer_phase_and_normalises(tmp_path, pattern):
    clean = bayer(clean_scene(48, 64), pattern)
    path = write_cfa_dng(tmp_path / "in.dng", clean, pattern, black=256, white=4095, orientation=6)
    raw = read_raw(path)
    assert raw.kind == "bayer" and raw.pattern == pattern
    assert raw.cfa.shape == (48, 64) and raw.cfa.dtype == np.float32
    assert np.abs(raw.cfa - clean).max() <= 1.0 / (4095 - 256)  # one 12-bit step after normalising
    assert raw.black_level == (256,) * 4 and raw.white_level == (4095,) * 4
    assert raw.wb == pytest.approx((2.0, 1.0, 1.6), rel=1e-4)
    assert raw.orientation == 6 and raw.make == "TestMaker"
    assert raw.color_matrix1[0] == pytest.approx((0.8, -0.2, -0.1))


@pytest.mark.parametrize("a,b", [(2e-3, 4e-5), (5e-3, 1e-4), (8e-4, 1e-5)])
def test_sensor_noise_estimate_within_ten_percent(a, b):
    """ISO 800..12800-like levels; (a, b) measured on the mosaic itself, per CFA channel."""
    _, noisy = noisy_mosaic(768, 1024, "RGGB", a, b)
    est = SensorNoise.estimate(noisy.astype(np.float32), "RGGB")
    assert est.source == "estimated"
    assert np.allclose(est.a, a, rtol=0.10), est.a
    assert np.allclose(est.b, b, rtol=0.10), est.b


def test_noise_profile_tag_is_used_per_colour(tmp_path):
    profile = (4e-4, 2e-6, 3e-4, 1e-6, 5e-4, 3e-6)  # (S, O) for R, G, B
    clean = bayer(clean_scene(48, 64), "GBRG")
    raw = read_raw(write_cfa_dng(tmp_path / "np.dng", clean, "GBRG", noise_profile=profile))
    noise = sensor_noise(raw)
    assert noise.source == "NoiseProfile"
    assert noise.a == pytest.approx((3e-4, 5e-4, 4e-4, 3e-4))  # G B R G
    assert noise.b == pytest.approx((1e-6, 3e-6, 2e-6, 1e-6))


def test_std_map_follows_the_model_and_the_slider_scales_it():
    noise = SensorNoise((1e-3, 2e-3, 2e-3, 4e-3), (1e-5, 1e-5, 1e-5, 1e-5))
    flat = np.full((32, 32), 0.25, np.float32)
    std = noise.std_map(flat, "RGGB")
    assert std[0, 0] == pytest.approx(np.sqrt(1e-3 * 0.25 + 1e-5), rel=1e-4)
    assert std[1, 1] == pytest.approx(np.sqrt(4e-3 * 0.25 + 1e-5), rel=1e-4)
    assert noise.scaled(2.0).std_map(flat, "RGGB") == pytest.approx(2 * std, rel=1e-4)
    with pytest.raises(ValueError):
        noise.scaled(float("nan"))


def _rawpy_pattern(raw) -> str:
    desc = raw.color_desc.decode()
    return "".join(desc[i] for i in raw.raw_pattern.ravel())


def _exiftool_errors(path: Path) -> str:
    out = subprocess.run(["exiftool", "-validate", "-warning", "-error", "-a", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return "\n".join(line for line in out.splitlines() if line.startswith("Error")
                     or (line.startswith("Validate") and "Warning" not in line and "OK" not in line))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_dngs_read_back_by_libraw(tmp_path, engine, pattern):
    import rawpy

    _, noisy = noisy_mosaic(64, 96, pattern, 2e-3, 4e-5)
    src = write_cfa_dng(tmp_path / "in.dng", np.clip(noisy, 0, 1), pattern, orientation=6)
    for kind in ("linear", "cfa"):
        out = tmp_path / f"out-{kind}.dng"
        saved = raw_to_dng(src, out, RawOptions(joint="never"), engine, dng=kind)
        assert saved.path == "raw fallback" and saved.dng == kind
        with rawpy.imread(str(out)) as r:
            assert r.camera_whitebalance[0] / r.camera_whitebalance[1] == pytest.approx(2.0, rel=1e-3)
            assert r.camera_whitebalance[2] / r.camera_whitebalance[1] == pytest.approx(1.6, rel=1e-3)
            assert r.sizes.flip == 6  # EXIF orientation 6 (LibRaw's 90 degrees clockwise)
            if kind == "cfa":
                assert r.raw_image.shape == (64, 96) and _rawpy_pattern(r) == pattern
                assert list(r.black_level_per_channel) == [256] * 4 and r.white_level == 4095
                src_raw = read_raw(src)
                for dy in (0, 1):
                    for dx in (0, 1):  # levels kept per channel (the tiny model barely changes pixels)
                        got = (r.raw_image[dy::2, dx::2].astype(float) - 256) / (4095 - 256)
                        assert got.mean() == pytest.approx(src_raw.cfa[dy::2, dx::2].mean(), rel=0.05)
            else:
                assert r.raw_image.shape[:2] == (64, 96) and r.raw_image.shape[2] >= 3
                assert r.raw_pattern is None and r.white_level == 65535
        assert read_raw(src).cfa is not None and src.exists()  # the source is untouched
        if shutil.which("exiftool"):
            assert _exiftool_errors(out) == ""


def test_dng_keeps_exif_and_records_how_it_was_made(tmp_path, engine):
    if not shutil.which("exiftool"):
        pytest.skip("exiftool (libimage-exiftool-perl) is not installed")
    clean = bayer(clean_scene(48, 64), "RGGB")
    src = write_cfa_dng(tmp_path / "in.dng", clean, "RGGB", noise_profile=(1e-4, 1e-6))
    out = raw_to_dng(src, tmp_path / "out.dng", RawOptions(joint="never", strength_scale=1.5), engine).output
    text = subprocess.run(["exiftool", "-s", "-Make", "-Model", "-UniqueCameraModel", "-AsShotNeutral",
                           "-NoiseProfile", "-XMP-pdn:all", "-PhotometricInterpretation", "-DNGVersion", str(out)],
                          capture_output=True, text=True, check=True).stdout
    assert "TestMaker" in text and "Model X" in text and "TestMaker Model X" in text
    assert "Linear Raw" in text and "1.4.0.0" in text
    assert "raw fallback" in text and "StrengthScale" in text and "1.5" in text
    assert "NoiseSource                     : NoiseProfile" in text


def test_existing_output_is_never_replaced(tmp_path, engine):
    from denoiser.core.files import OutputFileError

    src = write_cfa_dng(tmp_path / "in.dng", bayer(clean_scene(48, 64), "RGGB"))
    out = tmp_path / "out.dng"
    out.write_bytes(b"mine")
    with pytest.raises(OutputFileError, match="already exists"):
        raw_to_dng(src, out, RawOptions(joint="never"), engine)
    assert out.read_bytes() == b"mine" and sorted(p.name for p in tmp_path.iterdir()) == ["in.dng", "out.dng"]


@pytest.mark.slow
@pytest.mark.parametrize("client", ["darktable-cli", "rawtherapee-cli"])
def test_raw_editors_open_the_dng(tmp_path, engine, client):
    if not shutil.which(client):
        pytest.skip(f"{client} is not installed (apt-get install darktable rawtherapee)")
    from PIL import Image

    # RawTherapee refuses very small raws (64 x 96 is not opened): a 320 x 480 one
    src = write_cfa_dng(tmp_path / "in.dng", bayer(clean_scene(320, 480), "GRBG"), "GRBG", orientation=6)
    for kind in ("linear", "cfa"):
        dng = raw_to_dng(src, tmp_path / f"{kind}.dng", RawOptions(joint="never"), engine, dng=kind).output
        jpg = tmp_path / f"{kind}-{client}.jpg"
        if client == "darktable-cli":
            cmd = [client, str(dng), str(jpg), "--core", "--configdir", str(tmp_path / "dtconf")]
        else:
            cmd = [client, "-o", str(jpg), "-j90", "-Y", "-c", str(dng)]
        subprocess.run(cmd, capture_output=True, timeout=300)
        assert jpg.is_file(), f"{client} did not develop the {kind} DNG"
        with Image.open(jpg) as im:
            w, h = im.size
        assert h > w  # orientation 6 turns the 480 x 320 raw upright: 320 wide, about 480 high
        assert abs(w - 320) <= 8 and abs(h - 480) <= 8


def test_fallback_in_stripes_equals_the_whole_photo(tmp_path, engine, monkeypatch):
    """The fallback runs the RGB network on stripes (memory follows the stripe); the result is the same."""
    from denoiser.core.inference import raw_path

    _, noisy = noisy_mosaic(160, 96, "RGGB", 2e-3, 4e-5)
    raw = read_raw(write_cfa_dng(tmp_path / "in.dng", np.clip(noisy, 0, 1), "RGGB"))
    whole = raw_path.denoise_raw(raw, RawOptions(joint="never"), engine).rgb
    monkeypatch.setattr(raw_path, "STRIPE_PIXELS", 40 * 96)  # four stripes of 40 rows
    monkeypatch.setattr(raw_path, "MARGIN", 16)
    striped = raw_path.denoise_raw(raw, RawOptions(joint="never"), engine).rgb
    assert striped.shape == whole.shape and np.abs(striped - whole).max() < 1e-4


def test_opcode_lists_travel_only_where_they_still_apply(tmp_path, engine):
    """A DNG's opcode lists (a phone's lens-shading gain maps...) go into a CFA DNG as they were; a linear DNG
    made from a mosaic keeps only OpcodeList3 (run after demosaicing)."""
    import tifffile

    empty = b"\x00\x00\x00\x00"  # an opcode list holding no opcodes (big-endian count 0)
    lists = ((51009, 7, 4, empty, True), (51022, 7, 4, empty, True))
    src = write_cfa_dng(tmp_path / "in.dng", bayer(clean_scene(64, 96), "RGGB"), extra=lists)
    assert dict(read_raw(src).opcodes) == {51009: empty, 51022: empty}
    for kind, want in (("cfa", {51009, 51022}), ("linear", {51022})):
        out = raw_to_dng(src, tmp_path / f"{kind}.dng", RawOptions(joint="never"), engine, dng=kind).output
        with tifffile.TiffFile(out) as tif:
            tags = tif.pages.first.pages[0].tags
            assert {c for c in (51008, 51009, 51022) if c in tags} == want


def test_joint_model_takes_a_bayer_raw_when_installed(tmp_path, engine, monkeypatch):
    """With resources/models/raw.safetensors present the raw goes to the joint model (its mosaic, pattern,
    white balance and the scaled sensor noise), a linear DNG still to the fallback."""
    from denoiser.core.inference import raw_model, raw_path

    seen = {}

    def fake_denoise(model, cfa, pattern, wb, noise, progress=None):
        seen.update(model=model, pattern=pattern, wb=wb, a=noise.a)
        return np.dstack([cfa] * 3)

    monkeypatch.setattr(raw_path, "joint_model_path", lambda: tmp_path / "raw.safetensors")
    monkeypatch.setattr(raw_model, "load_raw_model", lambda path: f"model at {path.name}")
    monkeypatch.setattr(raw_model, "denoise_demosaic", fake_denoise)
    src = write_cfa_dng(tmp_path / "in.dng", bayer(clean_scene(64, 96), "BGGR"), "BGGR",
                        noise_profile=(1e-4, 1e-6))
    saved = raw_to_dng(src, tmp_path / "out.dng", RawOptions(strength_scale=2.0), engine)
    assert saved.path == raw_path.JOINT and seen["model"] == "model at raw.safetensors"
    assert seen["pattern"] == "BGGR" and seen["wb"] == pytest.approx((2.0, 1.0, 1.6), rel=1e-4)
    assert seen["a"] == pytest.approx((4e-4,) * 4)  # the NoiseProfile's a, scaled 2x in std
    assert raw_to_dng(src, tmp_path / "own.dng", RawOptions(joint="never"), engine).path == raw_path.FALLBACK


def test_read_noise_comes_from_the_masked_black_margin(tmp_path):
    """A raw with an optically black margin (DNG ActiveArea inside the stored image): b per CFA site is
    measured there, a is fitted on the image with that b."""
    rng = np.random.default_rng(3)
    h, w, top, left = 400, 560, 16, 32
    a, b = 2e-3, 4e-5
    full = np.zeros((h, w))
    full[top:, left:] = bayer(clean_scene(h - top, w - left), "GBRG")
    full += rng.normal(size=full.shape) * np.sqrt(a * full + b)
    src = write_cfa_dng(tmp_path / "m.dng", full, "GBRG", black=1024, white=16383,
                        extra=((50829, 3, 4, (top, left, h, w), True),))
    raw = read_raw(src)
    assert raw.cfa.shape == (h - top, w - left) and raw.pattern == "GBRG"
    assert raw.black_noise == pytest.approx((b,) * 4, rel=0.10)
    noise = sensor_noise(raw)
    assert noise.b == raw.black_noise and "masked" in noise.source
    assert np.allclose(noise.a, a, rtol=0.10), noise.a
