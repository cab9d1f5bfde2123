"""Photo I/O: formats, bit depths, metadata round trips, orientation, alpha, bad inputs, atomic saves.

Every input image is made here from seeded numpy data; nothing is downloaded.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from denoiser.core.io import photo as photo_mod
from denoiser.core.io import write as photo_write
from denoiser.core.io.photo import SUPPORTED_EXTENSIONS, Photo, PhotoError, load_photo, output_suffix, save_photo

RNG_SEED = 1234
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/></rdf:RDF></x:xmpmeta>')
ICC_RGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
DATE = "2024:05:06 07:08:09"


# ------------------------------------------------------------------------------------------- helpers

def rand(shape: tuple[int, ...], bits: int = 8, seed: int = RNG_SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = 256 if bits == 8 else 65536
    return rng.integers(0, hi, shape, dtype=np.uint8 if bits == 8 else np.uint16)


GPS = {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.25)}


def make_exif(orientation: int = 1, endian: str = "<") -> bytes:
    """Camera-like EXIF: IFD0 (Make, Model, Orientation), Exif sub-IFD (DateTimeOriginal, ISO) with a
    nested Interop IFD, and a GPS IFD. Big-endian ('>') like many Canon/Nikon files, on request."""
    ex = Image.Exif()
    ex.endian = endian
    ex[271] = "TestMake"
    ex[272] = "TestModel X1"
    ex[274] = orientation
    sub = ex.get_ifd(0x8769)
    sub[36867] = DATE  # DateTimeOriginal, lives in the Exif sub-IFD
    sub[34855] = 800  # ISO
    sub[0xA005] = {1: "R98"}  # Interop IFD inside the Exif IFD
    ex.get_ifd(0x8825).update(GPS)
    return ex.tobytes()


def ints(photo: Photo) -> np.ndarray:
    """The photo's pixels back as the integers they came from."""
    scale = 255 if photo.bit_depth == 8 else 65535
    return np.rint(photo.pixels * scale).astype(np.uint8 if photo.bit_depth == 8 else np.uint16)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png16(path: Path, arr: np.ndarray, exif: bytes | None = None, icc: bytes | None = None,
                xmp: bytes | None = None) -> None:
    """A 16-bit PNG made independently of the code under test (OpenCV pixels + hand-made chunks)."""
    if arr.ndim == 3 and arr.shape[2] == 2:  # OpenCV cannot write grey+alpha: build it by hand
        h, w, _ = arr.shape
        rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in arr)
        ihdr = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows))
                         + png_chunk(b"IEND", b""))
        return
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = np.concatenate([arr[..., 2::-1], arr[..., 3:]], axis=2)  # RGB(A) -> BGR(A)
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(arr))
    assert ok
    data = enc.tobytes()
    extra = b""
    if exif:
        extra += png_chunk(b"eXIf", exif[6:])
    if icc:
        extra += png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(icc))
    if xmp:
        extra += png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)
    path.write_bytes(data[:33] + extra + data[33:])  # right after IHDR (8 + 25 bytes)


def save_pil(path: Path, arr: np.ndarray, fmt: str, **kw) -> Path:
    Image.fromarray(arr).save(path, fmt, **kw)
    return path


def one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(exc.value)
    assert path.name in msg, msg
    assert "\n" not in msg, msg
    return msg


# ------------------------------------------------------------------------------------ basic loading

@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("TIFF", ".tif"), ("BMP", ".bmp")])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_8bit_lossless_round_trip_exact(tmp_path: Path, fmt: str, suffix: str, channels: int) -> None:
    if fmt == "BMP" and channels == 4:
        pytest.skip("BMP has no dependable alpha (Pillow reads 32-bit BMP as RGB); alpha goes via PNG/TIFF/WebP")
    arr = rand((13, 17, channels) if channels > 1 else (13, 17))
    src = save_pil(tmp_path / f"in{suffix}", arr, fmt)
    p = load_photo(src)
    assert p.bit_depth == 8 and p.format == fmt
    colour = 1 if channels == 1 else 3
    assert p.pixels.shape == (13, 17, colour) and p.pixels.dtype == np.float32
    expect = arr.reshape(13, 17, -1)
    assert np.array_equal(ints(p), expect[..., :colour])
    if channels == 4:
        assert p.alpha is not None and p.alpha.dtype == np.uint8
        assert np.array_equal(p.alpha, arr[..., 3])
    out = save_photo(p, tmp_path / "out", "keep")
    assert out.suffix == suffix
    q = load_photo(out)
    assert np.array_equal(ints(q), ints(p))
    assert (q.alpha is None) == (p.alpha is None)
    if p.alpha is not None:
        assert np.array_equal(q.alpha, p.alpha)


@pytest.mark.parametrize("ext", ["png", "tiff"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_round_trip_exact(tmp_path: Path, ext: str, channels: int) -> None:
    arr = rand((11, 19, channels), bits=16)
    src = tmp_path / f"in.{ext}"
    if ext == "png":
        write_png16(src, arr[..., 0] if channels == 1 else arr)
    else:
        photometric = "rgb" if channels >= 3 else "minisblack"
        tifffile.imwrite(src, arr[..., 0] if channels == 1 else arr, photometric=photometric,
                         extrasamples=(2,) if channels in (2, 4) else None)
    p = load_photo(src)
    colour = 3 if channels >= 3 else 1
    assert p.bit_depth == 16 and p.pixels.shape == (11, 19, colour)
    assert np.array_equal(ints(p), arr[..., :colour])  # also proves RGB order (no BGR mix-up)
    if channels in (2, 4):
        assert p.alpha is not None and p.alpha.dtype == np.uint16
        assert np.array_equal(p.alpha, arr[..., colour])
    for fmt in ("png", "tiff"):
        out = save_photo(p, tmp_path / f"out_{fmt}", fmt)
        q = load_photo(out)
        assert q.bit_depth == 16
        assert np.array_equal(ints(q), ints(p)), fmt
        if p.alpha is not None:
            assert q.alpha is not None and q.alpha.dtype == np.uint16 and np.array_equal(q.alpha, p.alpha)


def test_grey_alpha_16bit_png_written_and_read(tmp_path: Path) -> None:
    grey, alpha = rand((9, 14, 1), 16), rand((9, 14), 16, seed=7)
    p = Photo(grey.astype(np.float32) / 65535, alpha, 16)
    out = save_photo(p, tmp_path / "la16.png")
    with Image.open(out) as im:  # an independent reader sees a grey+alpha PNG
        assert im.mode in ("LA", "RGBA", "I;16")
    q = load_photo(out)
    assert q.pixels.shape == (9, 14, 1) and np.array_equal(ints(q), grey)
    assert np.array_equal(q.alpha, alpha)


def test_16bit_tiff_variants(tmp_path: Path) -> None:
    arr = rand((10, 12, 3), 16)
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, np.moveaxis(arr, -1, 0), photometric="rgb", planarconfig="separate")
    assert np.array_equal(ints(load_photo(planar)), arr)
    lzw = tmp_path / "lzw.tif"  # OpenCV writes LZW, which tifffile cannot decode without imagecodecs
    ok, enc = cv2.imencode(".tif", np.ascontiguousarray(arr[..., ::-1]))
    assert ok
    lzw.write_bytes(enc.tobytes())
    assert np.array_equal(ints(load_photo(lzw)), arr)


def test_lossy_formats_load_close(tmp_path: Path) -> None:
    arr = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (24, 1, 3))
    for fmt, suffix in (("JPEG", ".jpg"), ("WEBP", ".webp")):
        p = load_photo(save_pil(tmp_path / f"a{suffix}", arr, fmt, quality=95))
        assert p.format == fmt and p.pixels.shape == (24, 32, 3)
        assert np.abs(ints(p).astype(int) - arr).mean() < 3


def test_grey_stays_grey(tmp_path: Path) -> None:
    arr = rand((15, 10))
    for fmt, suffix in (("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif")):
        p = load_photo(save_pil(tmp_path / f"g{suffix}", arr, fmt))
        assert p.pixels.shape == (15, 10, 1), fmt
        out = save_photo(p, tmp_path / f"g_out{suffix}")
        with Image.open(out) as im:
            assert im.mode == "L", fmt
    g16 = tmp_path / "g16.png"
    write_png16(g16, rand((15, 10), 16))
    assert load_photo(g16).pixels.shape == (15, 10, 1)


def test_palette_and_transparency(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED)
    idx = rng.integers(0, 4, (8, 9), dtype=np.uint8)
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
    im = Image.fromarray(idx, "P")
    im.putpalette(palette)
    im.save(tmp_path / "p.png")
    p = load_photo(tmp_path / "p.png")
    lut = np.array(palette, np.uint8).reshape(-1, 3)
    assert p.alpha is None and np.array_equal(ints(p), lut[idx])
    im.save(tmp_path / "pt.png", transparency=2)
    q = load_photo(tmp_path / "pt.png")
    assert q.alpha is not None and np.array_equal(q.alpha == 0, idx == 2)
    assert np.array_equal(ints(q), lut[idx])


def test_cmyk_loads_as_rgb_without_cmyk_profile(tmp_path: Path) -> None:
    cmyk = rand((12, 16, 4))
    fake_cmyk_icc = b"\0" * 16 + b"CMYK" + b"\0" * 108  # colour space lives at bytes 16..20
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, "CMYK").save(src, "JPEG", quality=95, icc_profile=fake_cmyk_icc)
    p = load_photo(src)
    assert p.pixels.shape == (12, 16, 3) and p.icc is None
    with Image.open(src) as im:
        expect = np.asarray(im.convert("RGB"))
    assert np.array_equal(ints(p), expect)
    tif = save_pil(tmp_path / "cmyk.tif", cmyk, "TIFF")
    assert load_photo(tif).pixels.shape == (12, 16, 3)


def test_photo_validation() -> None:
    p = Photo(np.zeros((4, 6, 3), np.float32))
    assert (p.width, p.height, p.megapixels) == (6, 4, 24e-6)
    assert p.with_pixels(np.ones((4, 6, 3))).pixels.dtype == np.float32
    with pytest.raises(ValueError):
        p.with_pixels(np.ones((6, 4, 3)))
    with pytest.raises(ValueError):
        Photo(np.zeros((4, 6, 2), np.float32))
    with pytest.raises(ValueError):
        Photo(np.zeros((4, 6, 3), np.float32), alpha=np.zeros((6, 4), np.uint8))


# ---------------------------------------------------------------------------------------- metadata

def assert_metadata(path: Path, xmp_expected: bool = True) -> None:
    """Read the saved file back with Pillow (not our reader) and check every field survived."""
    with Image.open(path) as im:
        ex = im.getexif()
        assert ex.get(271) == "TestMake" and ex.get(272) == "TestModel X1"
        assert ex.get(274, 1) == 1
        sub = ex.get_ifd(0x8769)
        assert sub.get(36867) == DATE, sub
        assert sub.get(34855) == 800, sub
        assert ex.get_ifd(0x8825) == GPS
        assert ex.get_ifd(0xA005) == {1: "R98"}
        assert im.info.get("icc_profile") == ICC_RGB
        if xmp_expected:
            xmp = im.info.get("xmp")
            xmp = xmp.encode() if isinstance(xmp, str) else xmp
            assert xmp is not None and XMP in xmp


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff", "webp"])
def test_metadata_round_trip_from_jpeg(tmp_path: Path, fmt: str) -> None:
    src = save_pil(tmp_path / "cam.jpg", rand((16, 24, 3)), "JPEG", exif=make_exif(), icc_profile=ICC_RGB,
                   xmp=XMP)
    p = load_photo(src)
    assert p.icc == ICC_RGB and p.xmp is not None and XMP in p.xmp
    out = save_photo(p, tmp_path / "out", fmt)
    assert_metadata(out)
    q = load_photo(out)  # and our own reader gets the same back
    assert q.icc == ICC_RGB and XMP in (q.xmp or b"")
    if fmt in ("jpeg", "png", "webp"):
        assert q.exif == p.exif  # camera EXIF bytes kept exactly


@pytest.mark.parametrize("endian", ["<", ">"])
def test_big_and_little_endian_exif_into_tiff(tmp_path: Path, endian: str) -> None:
    exif = make_exif(endian=endian)
    assert exif[6:8] == (b"II" if endian == "<" else b"MM")
    src = save_pil(tmp_path / "cam.jpg", rand((8, 8, 3)), "JPEG", exif=exif, icc_profile=ICC_RGB, xmp=XMP)
    out = save_photo(load_photo(src), tmp_path / "out.tif")
    assert_metadata(out)


def test_16bit_png_metadata_to_tiff_keeps_exif_sub_ifd(tmp_path: Path) -> None:
    """Pillow's TIFF writer drops the Exif sub-IFD; ours must keep DateTimeOriginal and ISO."""
    src = tmp_path / "in16.png"
    arr = rand((10, 14, 3), 16)
    write_png16(src, arr, make_exif(), ICC_RGB, XMP)
    p = load_photo(src)
    assert p.exif is not None and p.icc == ICC_RGB and XMP in (p.xmp or b"")
    out = save_photo(p, tmp_path / "out.tif")
    assert_metadata(out)
    with tifffile.TiffFile(out) as tif:  # a second, independent TIFF reader
        tags = tif.pages.first.tags
        assert tags["ExifTag"].value["DateTimeOriginal"] == DATE
        assert tags["Make"].value == "TestMake"
        assert tif.pages.first.bitspersample == 16
    png = save_photo(p, tmp_path / "out16.png")
    assert_metadata(png)
    assert np.array_equal(ints(load_photo(out)), arr) and np.array_equal(ints(load_photo(png)), arr)


def test_tiff_source_exif_travels_to_jpeg(tmp_path: Path) -> None:
    first = save_photo(load_photo(save_pil(tmp_path / "a.jpg", rand((8, 8, 3)), "JPEG", exif=make_exif(),
                                           icc_profile=ICC_RGB, xmp=XMP)), tmp_path / "b.tif")
    p = load_photo(first)
    out = save_photo(p, tmp_path / "c.jpg")
    assert_metadata(out)
    with Image.open(out) as im:
        assert 273 not in im.getexif() and 256 not in im.getexif()  # no TIFF layout tags leaked


# ------------------------------------------------------------------------------------- orientation

# Pillow transposes that undo each orientation when applied to the upright image (6 and 8 swap).
_STORE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
          7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_come_out_upright(tmp_path: Path, orientation: int) -> None:
    upright = rand((6, 10, 4))  # RGBA so alpha has to turn with the pixels
    stored = Image.fromarray(upright)
    if orientation > 1:
        stored = stored.transpose(_STORE[orientation])
    src = tmp_path / "o.png"
    stored.save(src, exif=make_exif(orientation))
    with Image.open(src) as im:  # the fixture agrees with Pillow's reference transpose
        assert np.array_equal(np.asarray(ImageOps.exif_transpose(im)), upright)
    p = load_photo(src)
    assert np.array_equal(ints(p), upright[..., :3])
    assert np.array_equal(p.alpha, upright[..., 3])
    out = save_photo(p, tmp_path / "o_out.png")
    with Image.open(out) as im:
        assert im.getexif().get(274) == 1
    assert np.array_equal(ints(load_photo(out)), upright[..., :3])


def test_orientation_6_turns_clockwise(tmp_path: Path) -> None:
    """Independent of Pillow: orientation 6 means the stored top-left pixel belongs at the top right."""
    stored = np.zeros((4, 6, 3), np.uint8)
    stored[0, 0] = 255
    src = save_pil(tmp_path / "six.png", stored, "PNG", exif=make_exif(6))
    p = load_photo(src)
    assert p.pixels.shape == (6, 4, 3)
    assert ints(p)[0, -1, 0] == 255 and ints(p).sum() == 3 * 255


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_applies_to_16bit(tmp_path: Path, orientation: int) -> None:
    upright = rand((6, 10, 3), 16)
    stored = {3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}[orientation]
    png = tmp_path / "o16.png"
    write_png16(png, np.ascontiguousarray(stored), make_exif(orientation))
    assert np.array_equal(ints(load_photo(png)), upright)
    tif = tmp_path / "o16.tif"
    tifffile.imwrite(tif, np.ascontiguousarray(stored), photometric="rgb",
                     extratags=[(274, 3, 1, orientation, True)])
    assert np.array_equal(ints(load_photo(tif)), upright)


# -------------------------------------------------------------------------------------------- alpha

@pytest.mark.parametrize("fmt", ["png", "tiff", "webp"])
def test_alpha_survives_8bit(tmp_path: Path, fmt: str) -> None:
    rgba = rand((12, 12, 4))
    p = load_photo(save_pil(tmp_path / "a.png", rgba, "PNG"))
    q = load_photo(save_photo(p, tmp_path / "out", fmt, quality=100))
    assert q.alpha is not None and q.alpha.dtype == np.uint8
    assert np.array_equal(q.alpha, rgba[..., 3])


def test_alpha_16bit_to_8bit_format_is_scaled(tmp_path: Path) -> None:
    alpha = rand((8, 8), 16)
    p = Photo(np.full((8, 8, 3), 0.5, np.float32), alpha, 16)
    q = load_photo(save_photo(p, tmp_path / "a.webp", quality=100))
    assert q.alpha is not None and np.array_equal(q.alpha, np.rint(alpha / 257).astype(np.uint8))


def test_jpeg_drops_alpha_but_saves(tmp_path: Path) -> None:
    p = Photo(np.full((8, 8, 3), 0.5, np.float32), rand((8, 8)), 8)
    q = load_photo(save_photo(p, tmp_path / "a.jpg"))
    assert q.alpha is None and q.pixels.shape == (8, 8, 3)


# --------------------------------------------------------------------------------------- bad inputs

def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nothere.jpg"
    with pytest.raises(PhotoError) as exc:
        load_photo(path)
    assert "not found" in one_line_naming(exc, path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(PhotoError) as exc:
        load_photo(path)
    assert "empty" in one_line_naming(exc, path)


def test_folder_is_not_a_photo(tmp_path: Path) -> None:
    path = tmp_path / "dir.jpg"
    path.mkdir()
    with pytest.raises(PhotoError) as exc:
        load_photo(path)
    assert "folder" in one_line_naming(exc, path)


def _truncated_inputs(tmp_path: Path) -> list[Path]:
    arr = rand((64, 64, 3))
    files = [save_pil(tmp_path / "t.jpg", arr, "JPEG", quality=95),
             save_pil(tmp_path / "t.png", arr, "PNG"),
             save_pil(tmp_path / "t.webp", arr, "WEBP", quality=90),
             save_pil(tmp_path / "t.bmp", arr, "BMP"),
             save_pil(tmp_path / "t8.tif", arr, "TIFF")]
    write_png16(tmp_path / "t16.png", rand((64, 64, 3), 16))
    tifffile.imwrite(tmp_path / "t16.tif", rand((64, 64, 3), 16), photometric="rgb")
    tifffile.imwrite(tmp_path / "t16z.tif", rand((64, 64, 3), 16), photometric="rgb", compression="zlib")
    return files + [tmp_path / "t16.png", tmp_path / "t16.tif", tmp_path / "t16z.tif"]


def test_truncated_files_are_errors_not_grey(tmp_path: Path) -> None:
    for path in _truncated_inputs(tmp_path):
        data = path.read_bytes()
        cut = path.with_name("cut_" + path.name)
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(PhotoError) as exc:
            load_photo(cut)
        one_line_naming(exc, cut)


def test_text_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is a shopping list, not a photo\n" * 20)
    with pytest.raises(PhotoError) as exc:
        load_photo(path)
    assert "not an image" in one_line_naming(exc, path)


def test_unsupported_formats_name_the_supported_ones(tmp_path: Path) -> None:
    frames = [Image.fromarray(rand((8, 8, 3), seed=s)) for s in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    svg = tmp_path / "logo.svg"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')
    for path, name in ((gif, "GIF"), (svg, "SVG")):
        with pytest.raises(PhotoError) as exc:
            load_photo(path)
        msg = one_line_naming(exc, path)
        assert "unsupported" in msg and name in msg and "JPEG" in msg and "TIFF" in msg


def test_oversized_by_limit(tmp_path: Path) -> None:
    path = save_pil(tmp_path / "big.png", rand((100, 100, 3)), "PNG")
    with pytest.raises(PhotoError) as exc:
        load_photo(path, max_megapixels=0.005)
    assert "too large" in one_line_naming(exc, path)
    assert load_photo(path, max_megapixels=0.01).width == 100


@pytest.mark.parametrize("side", [20_000, 40_000])
def test_oversized_checked_from_header_before_decoding(tmp_path: Path, side: int) -> None:
    """A PNG whose header claims 400 MP (our limit) or 1600 MP (Pillow's bomb guard) with almost no data:
    refused as too large, never decoded."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + png_chunk(b"IEND", b""))
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(PhotoError) as exc:
        load_photo(path)
    assert "too large" in one_line_naming(exc, path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_pil(tmp_path / "locked.png", rand((4, 4, 3)), "PNG")

    def denied(p: Path):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(photo_mod, "_open_for_read", denied)
    with pytest.raises(PhotoError) as exc:
        load_photo(path)
    assert "permission denied" in one_line_naming(exc, path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_for_real(tmp_path: Path) -> None:
    path = save_pil(tmp_path / "locked.png", rand((4, 4, 3)), "PNG")
    path.chmod(0)
    try:
        with pytest.raises(PhotoError) as exc:
            load_photo(path)
        assert "permission denied" in one_line_naming(exc, path)
    finally:
        path.chmod(0o644)


# ---------------------------------------------------------------------------------------------- RAW

def write_dng(path: Path, h: int = 32, w: int = 48, orientation: int = 1) -> None:
    """A minimal but real Bayer DNG (RGGB, 12-bit) that LibRaw develops."""
    cfa = rand((h, w), 16) % 4096

    def rationals(vals: list[float], fmt: str) -> bytes:
        return b"".join(struct.pack("<" + fmt * 2, int(round(v * 10000)), 10000) for v in vals)

    tags = [(50706, 1, 4, (1, 4, 0, 0), True), (50707, 1, 4, (1, 1, 0, 0), True),
            (50708, 2, None, "Test Camera", True), (271, 2, None, "TestMake", True),
            (272, 2, None, "TestModel X1", True), (274, 3, 1, orientation, True),
            (33421, 3, 2, (2, 2), True), (33422, 1, 4, (0, 1, 1, 2), True),
            (50710, 1, 3, (0, 1, 2), True), (50711, 3, 1, 1, True), (50714, 3, 1, 0, True),
            (50717, 3, 1, 4095, True), (50721, 10, None, rationals([1, 0, 0, 0, 1, 0, 0, 0, 1], "i"), True),
            (50728, 5, None, rationals([0.5, 1.0, 0.7], "I"), True), (50778, 3, 1, 21, True)]
    tifffile.imwrite(path, cfa, photometric=32803, extratags=tags, subfiletype=0, metadata=None)


def test_dng_loads_as_16bit_and_saves_as_tiff(tmp_path: Path) -> None:
    src = tmp_path / "cam.dng"
    write_dng(src, orientation=6)
    p = load_photo(src)
    assert p.format == "RAW" and p.bit_depth == 16
    assert p.pixels.shape == (48, 32, 3)  # LibRaw applied the orientation; we must not apply it twice
    assert p.exif is not None
    assert output_suffix(p, "keep") == ".tif"
    out = save_photo(p, tmp_path / "developed")
    assert out.name == "developed.tif"
    with Image.open(out) as im:
        assert im.getexif().get(271) == "TestMake" and im.getexif().get(274) == 1
    q = load_photo(out)
    assert q.bit_depth == 16 and np.array_equal(ints(q), ints(p))


def test_not_a_raw_named_dng(tmp_path: Path) -> None:
    for name, data in (("text.dng", b"hello, not a raw file\n" * 10),
                       ("png.nef", (save_pil(tmp_path / "x.png", rand((8, 8, 3)), "PNG")).read_bytes())):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(PhotoError) as exc:
            load_photo(path)
        assert "RAW" in one_line_naming(exc, path)


def test_truncated_dng(tmp_path: Path) -> None:
    src = tmp_path / "full.dng"
    write_dng(src, 64, 64)
    cut = tmp_path / "cut.dng"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(PhotoError) as exc:
        load_photo(cut)
    one_line_naming(exc, cut)


def test_raw_extensions_supported_but_not_writable(tmp_path: Path) -> None:
    for ext in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"):
        assert ext in SUPPORTED_EXTENSIONS
    p = Photo(np.zeros((4, 4, 3), np.float32), format="RAW", bit_depth=16)
    with pytest.raises(PhotoError, match="RAW"):
        save_photo(p, tmp_path / "out.dng")
    with pytest.raises(PhotoError, match="RAW"):
        save_photo(p, tmp_path / "out.cr2", "tiff")


# ------------------------------------------------------------------------------------------- saving

def test_output_suffix_and_naming(tmp_path: Path) -> None:
    p = load_photo(save_pil(tmp_path / "a.JPEG", rand((4, 4, 3)), "JPEG"))
    assert output_suffix(p, "keep") == ".jpeg"
    assert [output_suffix(p, f) for f in ("jpeg", "png", "tiff", "webp")] == [".jpg", ".png", ".tif", ".webp"]
    assert save_photo(p, tmp_path / "x", "png").name == "x.png"
    assert save_photo(p, tmp_path / "y.v2", "tiff").name == "y.v2.tif"
    assert save_photo(p, tmp_path / "z.png").name == "z.png"  # an image suffix picks the format under keep
    with Image.open(tmp_path / "z.png") as im:
        assert im.format == "PNG"
    with pytest.raises(PhotoError, match="requested format"):
        save_photo(p, tmp_path / "w.png", "jpeg")
    with pytest.raises(PhotoError, match="unknown output format"):
        output_suffix(p, "gif")
    with pytest.raises(PhotoError, match="quality"):
        save_photo(p, tmp_path / "q.jpg", quality=0)


def test_jpeg_quality_is_used(tmp_path: Path) -> None:
    p = Photo(rand((64, 64, 3)).astype(np.float32) / 255)
    low = save_photo(p, tmp_path / "low.jpg", quality=30)
    high = save_photo(p, tmp_path / "high.jpg", quality=95)
    assert low.stat().st_size < high.stat().st_size


def test_refuses_to_overwrite_source(tmp_path: Path) -> None:
    src = save_pil(tmp_path / "orig.png", rand((8, 8, 3)), "PNG")
    before = src.read_bytes()
    p = load_photo(src)
    for kwargs in ({}, {"overwrite": True}):
        with pytest.raises(PhotoError) as exc:
            save_photo(p.with_pixels(p.pixels * 0.5), src, **kwargs)
        assert "original" in one_line_naming(exc, src)
    link = tmp_path / "link.png"
    os.link(src, link)  # the same file under another name is still the original
    with pytest.raises(PhotoError):
        save_photo(p, link, overwrite=True)
    assert src.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["link.png", "orig.png"]


def test_existing_target_needs_overwrite(tmp_path: Path) -> None:
    p = Photo(rand((8, 8, 3)).astype(np.float32) / 255)
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    with pytest.raises(PhotoError) as exc:
        save_photo(p, target)
    assert "exists" in one_line_naming(exc, target)
    assert target.read_bytes() == b"keep me"
    save_photo(p, target, overwrite=True)
    assert np.array_equal(ints(load_photo(target)), ints(p))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.png"]  # no temp files left


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(f, *args, **kwargs):
        f.write(b"\x89PNG half written")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(photo_write, "write_png", broken)
    p = Photo(np.zeros((8, 8, 3), np.float32))
    target = tmp_path / "out.png"
    with pytest.raises(PhotoError) as exc:
        save_photo(p, target)
    assert "disk on fire" in one_line_naming(exc, target)
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "out.png"
    with pytest.raises(PhotoError) as exc:
        save_photo(Photo(np.zeros((4, 4, 3), np.float32)), target)
    assert "does not exist" in one_line_naming(exc, target)


def test_saved_file_permissions_follow_umask(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        out = save_photo(Photo(np.zeros((4, 4, 1), np.float32)), tmp_path / "p.png")
    finally:
        os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600


def test_float_pixels_are_clipped_and_rounded(tmp_path: Path) -> None:
    px = np.array([[[-0.2], [0.5], [1.7], [0.3 / 255], [np.nan]]], np.float32)
    q = load_photo(save_photo(Photo(px), tmp_path / "c.png"))
    assert ints(q).ravel().tolist() == [0, 128, 255, 0, 0]


@pytest.mark.parametrize("bits", [8, 16])
def test_png_metadata_after_pixels_is_found(tmp_path: Path, bits: int) -> None:
    """Some writers put eXIf/iTXt after IDAT; both the Pillow (8-bit) and our own chunk reader (16-bit)
    must find them, and the late orientation must still be applied."""
    stored = rand((4, 7, 3), bits)
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(stored[..., ::-1]))
    data = enc.tobytes()
    tail = png_chunk(b"eXIf", make_exif(6)[6:]) + png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + XMP)
    path = tmp_path / "late.png"
    path.write_bytes(data[:-12] + tail + data[-12:])  # just before IEND
    p = load_photo(path)
    assert p.bit_depth == bits and XMP in (p.xmp or b"")
    assert np.array_equal(ints(p), np.rot90(stored, -1))
    ex = Image.Exif()
    ex.load(p.exif)
    assert ex.get_ifd(0x8769).get(36867) == DATE and ex.get(274) == 1


def test_exif_from_raw_variants_with_other_magic(tmp_path: Path) -> None:
    """Panasonic RW2 (magic 0x55) and Olympus ORF ('RO') are TIFF-structured but not magic 42."""
    from denoiser.core.io.meta import exif_from_tiff_file

    path = tmp_path / "cam.rw2"
    tifffile.imwrite(path, rand((4, 4), 16), extratags=[(271, 2, None, "Panasonic", True)], metadata=None)
    data = bytearray(path.read_bytes())
    for magic in (b"\x55\x00", b"RO"):
        data[2:4] = magic
        path.write_bytes(bytes(data))
        with open(path, "rb") as f:
            exif = exif_from_tiff_file(f)
        ex = Image.Exif()
        ex.load(exif)
        assert ex.get(271) == "Panasonic" and 273 not in ex
