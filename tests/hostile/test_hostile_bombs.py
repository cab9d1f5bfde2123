"""Small files that declare huge things (metadata that inflates to gigabytes, a model with a 4096-channel
layer, a 225 MP photo): refused or trimmed at once, with memory bounded by the file, not by its claims."""
from __future__ import annotations

import logging
import resource
from pathlib import Path

import pytest
from hostile_util import drunet_bomb, png_bomb, png_with_bomb, snapshot, temp_files, write_png


def rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize("kind,bits", [("xmp", 16), ("icc", 16), ("xmp", 8)])
def test_a_png_whose_metadata_inflates_to_gigabytes_is_kept_without_it(cli, tmp_path: Path, caplog,
                                                                       tiny_model_file: Path, kind: str, bits: int):
    src = png_with_bomb(tmp_path / "in" / "bomb.png", kind, megabytes=1500, bits=bits)
    assert src.stat().st_size < 2_000_000
    before, start = snapshot(tmp_path / "in"), rss()
    with caplog.at_level(logging.WARNING):
        code, out, err = cli("denoise", src, "--out-dir", tmp_path / "out", "--model", tiny_model_file,
                             "--strength", "5")
    assert rss() - start < 300e6  # inflating it would take 1.5 GB and more
    assert code == 0, err
    out_file = tmp_path / "out" / "bomb-denoised.png"
    assert out_file.stat().st_size < 100_000
    what = "XMP packet" if kind == "xmp" else "ICC profile"
    assert any(f"{src}: its {what} inflates to more than 16 MB; it was left out" in r.getMessage()
               for r in caplog.records)
    assert snapshot(tmp_path / "in") == before and not temp_files(tmp_path)


def test_a_bounded_inflate_keeps_real_metadata_and_stops_a_bomb() -> None:
    import zlib

    from hostile_util import zlib_bomb

    from denoiser.core.io.meta import inflate_bounded

    packet = b"<x:xmpmeta>" + b"a" * 200_000 + b"</x:xmpmeta>"
    assert inflate_bounded(zlib.compress(packet), "XMP packet") == packet
    assert inflate_bounded(zlib_bomb(64), "XMP packet", limit=1 << 20) is None
    assert inflate_bounded(b"not zlib", "XMP packet") is None


def test_an_exif_value_declaring_gigabytes_is_not_read(tmp_path: Path) -> None:
    import struct

    from denoiser.core.io.meta import exif_from_tiff_file

    path = tmp_path / "x.tif"  # IFD0 with one ASCII entry of 2**31 bytes at offset 26
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 270, 2, 2**31, 26)
                     + b"\0\0\0\0" + b"x" * 64)
    start = rss()
    with open(path, "rb") as f:
        assert exif_from_tiff_file(f) is None
    assert rss() - start < 100e6


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("entry", ["import", "denoise"])
def test_a_tiny_community_model_declaring_a_huge_layer_is_refused_before_allocating(
        cli, tmp_path: Path, isolated_user_data: Path, suffix: str, entry: str) -> None:
    bomb = drunet_bomb(tmp_path / f"drunet{suffix}")
    assert bomb.stat().st_size < 40_000
    src = write_png(tmp_path / "a.png")
    start = rss()
    if entry == "import":
        code, _, err = cli("models", "import", bomb)
        assert code == 1
    else:
        code, _, err = cli("denoise", src, "-o", tmp_path / "o.png", "--model", bomb, "--strength", "5")
        assert code == 2
    assert rss() - start < 300e6  # building it would take 1.2 GB
    assert f"{bomb}: weights do not fit the drunet layout" in err and "Traceback" not in err
    assert not (isolated_user_data / "foreign").exists() or not list((isolated_user_data / "foreign").iterdir())
    assert not (tmp_path / "o.png").exists()


def test_a_community_model_over_the_parameter_budget_is_refused(tmp_path: Path, monkeypatch) -> None:
    import torch

    from denoiser.core.model import foreign

    torch.manual_seed(0)
    sd = {"model.0.weight": torch.randn(8, 3, 3, 3), "model.2.weight": torch.randn(3, 8, 3, 3)}
    monkeypatch.setattr(foreign, "MAX_PARAMETERS", 100)  # 432 parameters: the rule, at a scale a test affords
    with pytest.raises(foreign.ForeignModelError, match="432 parameters|0 M parameters"):
        foreign.build(sd, "m.pth")


def test_a_photo_needing_more_than_half_the_free_memory_is_refused_at_once(cli, tmp_path: Path, no_model,
                                                                          monkeypatch) -> None:
    import denoiser.core.io.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 23_900_000_000)  # what the report's machine had free
    src = png_bomb(tmp_path / "decl.png", 15000, 15000)  # 22.5 GB by the estimate: under the free memory
    code, _, err = cli("denoise", src, "--out-dir", tmp_path / "out")  # benchmarks/hostile.py times it
    assert code == 1 and f"{src}: " in err
    assert "more than the default budget of 11.9 GB (half of the 23.9 GB free" in err
    assert "--max-memory 23" in err and "--max-megapixels" in err
    assert not (tmp_path / "out").exists()


def test_the_default_budget_is_named_in_the_help(cli) -> None:
    _, out, _ = cli("denoise", "--help")
    assert "half of what is free" in " ".join(out.split())


@pytest.mark.parametrize("limit,size,shown", [("0.001", (48, 64), "0.00307"), ("50", (15000, 15000), "225")])
def test_the_megapixel_refusal_quotes_the_users_limit(cli, tmp_path: Path, no_model, limit: str, size, shown) -> None:
    src = write_png(tmp_path / "a.png") if size == (48, 64) else png_bomb(tmp_path / "a.png", *size)
    code, _, err = cli("denoise", src, "--out-dir", tmp_path / "out", "--max-megapixels", limit)
    assert code == 1 and f"= {shown} MP exceeds the limit of {limit} MP (raise it with --max-megapixels)" in err
    assert "178956970" not in err and "500000000" not in err
