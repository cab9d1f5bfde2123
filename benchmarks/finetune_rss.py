"""Peak memory (RSS) of fine-tuning on a 500-image folder (symlinks to the large training photos,
up to 6000 px): the patch pool holds at most 32 decoded images whatever the folder size.

    python benchmarks/finetune_rss.py --count 500 --steps 40 --mode noisy
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).parent))
from finetune_noisy import default_base

from denoiser.core.files import atomic_write_bytes

PHOTOS = Path(__file__).resolve().parents[2] / "shared/datasets/train/photos"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--mode", choices=("clean", "noisy"), default="noisy")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/finetune_rss.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("DENOISER_DATA_DIR", tempfile.mkdtemp(prefix="ft-bench-"))
    from denoiser.core.training.finetune import finetune
    from denoiser.core.training.patches import list_images

    sources = list_images([PHOTOS])
    folder = Path(tempfile.mkdtemp(prefix="ft-rss-"))
    for i in range(args.count):
        src = sources[i % len(sources)]
        (folder / f"{i:04d}{src.suffix.lower()}").symlink_to(src.resolve())
    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    start_rss = proc.memory_info().rss
    t0 = time.time()
    res = finetune(folder, mode=args.mode, name="rss-bench", base_model=str(default_base()), minutes=0,
                   steps=args.steps, threads=1)
    stop.set()
    out = {"images": args.count, "mode": args.mode, "steps": res.steps, "wall_s": round(time.time() - t0),
           "rss_start_mb": round(start_rss / 2**20), "rss_peak_sampled_mb": round(peak[0] / 2**20),
           "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "pool_size": 32, "base_model": str(default_base())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, json.dumps(out, indent=2).encode())
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
