"""Helpers for the hostile-input corpus (tests/hostile): snapshots, temp-file search, tiny photos."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and link under root: content hash (or link target) and mode, to prove nothing changed."""
    out: dict[str, tuple[str, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("-> " + os.readlink(p), 0)
            elif p.is_file():
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
            elif p.is_dir():
                out[rel] = ("dir", p.stat().st_mode)
    return out


def temp_files(root: Path) -> list[Path]:
    """This tool's temp files (every file: .<name>.XXXXXXXX.<pid>.part; 0.1.0's model files and reports: .tmp)."""
    return [p for p in root.rglob(".*") if p.suffix in (".part", ".tmp")]


def write_png(path: Path, size: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arr = np.clip(128 + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A PNG of a few KB whose header declares width x height pixels (its pixel data stops early)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 3 * width) * 8, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def zlib_bomb(megabytes: int) -> bytes:
    """A valid zlib stream of about 1 KB per MB that inflates to `megabytes` MB of zeros, built directly
    (each 1 MB of zeros deflates, after a sync flush, to the same bytes), so a test never compresses gigabytes."""
    import zlib

    c = zlib.compressobj(9)
    mb = b"\0" * (1 << 20)
    first, steady = (c.compress(mb) + c.flush(zlib.Z_SYNC_FLUSH) for _ in range(2))
    size = megabytes << 20
    adler = (size % 65521) << 16 | 1  # Adler-32 of `size` zero bytes
    return first + steady * (megabytes - 1) + b"\x03\x00" + adler.to_bytes(4, "big")  # + an empty final block


def png_with_bomb(path: Path, kind: str = "xmp", megabytes: int = 1500, size: int = 32, bits: int = 16) -> Path:
    """An RGB PNG (16- or 8-bit) whose XMP (iTXt) or ICC (iCCP) chunk, after the pixel data, inflates to
    `megabytes`."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    dtype = ">u2" if bits == 16 else np.uint8
    rows = np.random.default_rng(0).integers(0, 2 ** bits - 1, (size, size * 3)).astype(dtype)
    raw = b"".join(b"\0" + r.tobytes() for r in rows)
    bomb = zlib_bomb(megabytes)
    meta = (chunk(b"iTXt", b"XML:com.adobe.xmp\0\x01\0\0\0" + bomb) if kind == "xmp" else
            chunk(b"iCCP", b"ICC profile\0\0" + bomb))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, bits, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + meta + chunk(b"IEND", b""))
    return path


def drunet_bomb(path: Path, channels: int = 4096) -> Path:
    """A few-KB DRUNet-layout model whose empty tensors declare a `channels`-wide bottleneck (gigabytes)."""
    import torch

    sd = {"m_head.weight": torch.zeros(16, 4, 3, 3), "m_tail.weight": torch.zeros(3, 16, 3, 3),
          "m_down1.0.weight": torch.zeros(32, 0, 2, 2), "m_down2.0.weight": torch.zeros(64, 0, 2, 2),
          "m_down3.0.weight": torch.zeros(channels, 0, 2, 2), "m_body.0.res.0.weight": torch.zeros(channels, 0, 3, 3)}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return path
