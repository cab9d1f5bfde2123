"""Training-data packs for a rare, short GPU lease: small enough to carry (<= ~50 MB), decoded
once into GPU memory, cropped and augmented there, so the GPU never waits for the CPU.

A pack is an .npz of plain arrays (no pickle): all crops PNG-encoded back to back in one uint8
array, with their offsets. Crops are cut after the same JPEG downscale as folder training.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch

from denoiser.core.files import atomic_write_bytes, check_output_file
from denoiser.core.progress import NullProgress, Progress
from denoiser.core.training.patches import check_native_quality, list_images, load_rgb8, split_validation


def make_pack(folders: list[Path], out: Path, max_mb: float = 48.0, crop: int = 128, seed: int = 0,
              jpeg_downscale: int = 2, progress: Progress | None = None, native_quality: int = 90,
              overwrite: bool = False) -> dict:
    """Cut random crops from every image (round robin) until the PNG-coded pack reaches max_mb. The pack
    is a new .npz file (an existing one is replaced only with `overwrite`, an input never)."""
    check_native_quality(native_quality)
    check_output_file(Path(out), overwrite, tuple(map(Path, folders)), suffixes=(".npz",))
    progress = progress or NullProgress()
    files, _ = split_validation(list_images(folders), 0.02, 8)  # same held-out files as folder training
    rng = np.random.default_rng(seed)
    images = []
    for i, path in enumerate(files):
        progress.check_cancelled()
        try:
            img = load_rgb8(path, jpeg_downscale, native_quality=native_quality)
        except (ValueError, OSError):
            continue
        if min(img.shape[:2]) >= crop:
            images.append(img)
        progress.report(0.5 * (i + 1) / len(files), "decoding")
    if not images:
        raise ValueError(f"no image of at least {crop}px in {folders}")
    blobs, total, budget = [], 0, max_mb * 1e6
    while total < budget:
        for img in images:  # round robin: big photos give more crops over the rounds, small ones repeat
            h, w = img.shape[:2]
            y, x = rng.integers(h - crop + 1), rng.integers(w - crop + 1)
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[y:y + crop, x:x + crop, ::-1]))
            blobs.append(buf.ravel())
            total += buf.size
            if total >= budget:
                break
        progress.report(0.5 + 0.5 * min(total / budget, 1), f"{len(blobs)} crops")
    offsets = np.cumsum([0] + [b.size for b in blobs]).astype(np.int64)
    meta = {"crop": crop, "count": len(blobs), "images": len(images), "seed": seed,
            "folders": [str(f) for f in folders], "jpeg_downscale": jpeg_downscale,
            "jpeg_native_quality": native_quality}
    out = Path(out)
    packed = io.BytesIO()
    np.savez(packed, data=np.concatenate(blobs), offsets=offsets,
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    atomic_write_bytes(out, packed.getvalue(), overwrite=overwrite)
    return meta | {"bytes": out.stat().st_size}


def read_pack(path: Path) -> list[np.ndarray]:
    """The RGB crops of a pack; ValueError naming the file when it is not a pack `make_pack` wrote."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data, offsets = z["data"], z["offsets"]
            json.loads(bytes(z["meta"]).decode())
        crops = [cv2.imdecode(data[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR) for i in range(len(offsets) - 1)]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile, cv2.error) as exc:
        raise ValueError(f"{path}: not a training pack made by `denoiser pack` ({exc.__class__.__name__})") from None
    colour = [c for c in crops if c is not None and c.ndim == 3]
    if len(colour) != len(crops):
        raise ValueError(f"{path}: a crop in the pack is not a decodable colour PNG")
    return [c[..., ::-1] for c in colour]


class PackSource:
    """All crops of a pack as one uint8 tensor on the training device; batches cut there."""

    def __init__(self, path: Path, device: torch.device, gen: torch.Generator, val_count: int = 16) -> None:
        crops = read_pack(path)
        if len(crops) < 2:
            raise ValueError(f"{path}: only {len(crops)} crop(s) in the pack; make it with a larger --max-mb")
        arr = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        keep = len(arr) - max(1, min(val_count, len(arr) // 5))  # the last crops are held out for validation
        self.val = arr[keep:].float().div(255)
        self.crops = arr[:keep].to(device)
        self.device, self.gen = device, gen
        self.indices: list[int] = []
        self.draws = 0
        self.skipped: dict[str, str] = {}

    def fill(self, indices: list[int] | None = None) -> None:
        pass

    def batch(self, n: int, patch: int) -> torch.Tensor:
        """(n, 3, patch, patch) float on the device: random crop offsets per sample, flips, rotations."""
        self.draws += 1
        size = self.crops.shape[-1]
        idx = torch.randint(len(self.crops), (n,), generator=self.gen, device=self.device)
        ys = torch.randint(size - patch + 1, (n,), generator=self.gen, device=self.device)
        xs = torch.randint(size - patch + 1, (n,), generator=self.gen, device=self.device)
        ar = torch.arange(patch, device=self.device)
        rows = (ys[:, None] + ar)[:, None, :, None]
        cols = (xs[:, None] + ar)[:, None, None, :]
        ch = torch.arange(3, device=self.device)[None, :, None, None]
        out = self.crops[idx[:, None, None, None], ch, rows, cols].float().div_(255)
        k = int(torch.randint(4, (1,), generator=self.gen, device=self.device))
        out = torch.rot90(out, k, dims=(2, 3))
        if int(torch.randint(2, (1,), generator=self.gen, device=self.device)):
            out = out.flip(3)
        return out
