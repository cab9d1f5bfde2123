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
    """This tool's temp files (photos: .<name>.XXXXXXXX.part, model files and reports: .<name>.XXXXXXXX.tmp)."""
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
