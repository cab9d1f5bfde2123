"""Clean-mode fine-tuning on one kind of scene: PSNR at sigma 25 on held-out photos, before/after.

The folder is split by name: every 4th photo is held out (never trained on); the rest is linked into a
temporary training folder. Protocol as in DESIGN.md: Gaussian noise with a fixed seed, noisy input not
clipped, output clipped, PSNR on 512 px centre crops (JPEGs area-downscaled by 2 like training).

    python benchmarks/finetune_clean.py --folder ../shared/datasets/train/photos/deb_mate-backgrounds --minutes 5
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from denoiser.core.evaluation.metrics import psnr
from denoiser.core.files import atomic_write_bytes
from denoiser.core.model.file import load_model
from denoiser.core.training.patches import list_images, load_rgb8

sys.path.insert(0, str(Path(__file__).parent))
from finetune_noisy import default_base


def held_out_set(files: list[Path], sigma: float) -> list[tuple[np.ndarray, np.ndarray]]:
    gen = np.random.default_rng(25)
    pairs = []
    for f in files:
        img = load_rgb8(f, 2).astype(np.float32) / 255
        h, w = img.shape[:2]
        c = min(512, h // 16 * 16, w // 16 * 16)
        clean = img[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c]
        pairs.append((clean, clean + gen.normal(0, sigma / 255, clean.shape).astype(np.float32)))
    return pairs


def score(model: torch.nn.Module, pairs: list, sigma: float) -> float:
    with torch.inference_mode():
        return float(np.mean([psnr(c, model(torch.from_numpy(n).permute(2, 0, 1)[None], torch.tensor([sigma]))[0]
                                       .clamp(0, 1).permute(1, 2, 0).numpy()) for c, n in pairs]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", type=Path, default=Path(__file__).resolve().parents[2]
                    / "shared/datasets/train/photos/deb_mate-backgrounds")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--base", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/finetune_clean.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("DENOISER_DATA_DIR", tempfile.mkdtemp(prefix="ft-bench-"))
    from denoiser.core.training.finetune import finetune

    base = args.base or default_base()
    files = list_images([args.folder])
    test, train = files[::4], [f for i, f in enumerate(files) if i % 4]
    train_dir = Path(tempfile.mkdtemp(prefix="ft-clean-train-"))
    for f in train:
        (train_dir / f.name).symlink_to(f.resolve())
    pairs = held_out_set(test, args.sigma)
    before = score(load_model(base)[0], pairs, args.sigma)
    print(f"base {before:.2f} dB on {len(test)} held-out photos", flush=True)
    t0 = time.time()
    res = finetune(train_dir, mode="clean", name="clean-bench", base_model=str(base), minutes=args.minutes,
                   sigma=args.sigma, threads=1)
    after = score(load_model(res.path)[0], pairs, args.sigma)
    out = {"base_model": str(base), "folder": str(args.folder), "train_images": len(train),
           "held_out": [f.name for f in test], "sigma": args.sigma, "minutes_budget": args.minutes,
           "steps": res.steps, "wall_s": round(time.time() - t0), "psnr_before": before, "psnr_after": after,
           "gain_db": after - before, "val_before": res.val_before, "val_after": res.val_after, "threads": 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, json.dumps(out, indent=2).encode())
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
