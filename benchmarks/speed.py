"""Seconds per megapixel of ours and the fast peers on the same images, same threads, same (idle) machine.

    python benchmarks/speed.py [--threads 2] [--limit 4]   -> benchmarks/results/speed.json
(peers.py measures speed too, but its peers ran on a busy machine; this is the like-for-like speed figure.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATA, ffdnet_fn, nlm_fn, ours

from denoiser.core.evaluation.evaluate import evaluate_synthetic
from denoiser.core.files import atomic_write_bytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    fns = {"ours": ours(args.model)[0], **{f"ours-x{n}": ours(args.model, n)[0] for n in (2, 4, 8)},
           "ffdnet": ffdnet_fn(), "nlm": nlm_fn()}
    out = {}
    for name, fn in fns.items():
        evaluate_synthetic(fn, DATA / "test/Kodak24", 25, limit=1)  # warm-up
        r = evaluate_synthetic(fn, DATA / "test/Kodak24", 25, limit=args.limit)
        out[name] = {"s_per_mp": round(r.seconds_per_mp, 3), "psnr": round(r.psnr, 2), "images": r.images,
                     "threads": args.threads, "set": "Kodak24", "sigma": 25}
        print(f"{name:<7} {r.seconds_per_mp:6.2f} s/MP  ({r.psnr:.2f} dB on {r.images} Kodak24 images, "
              f"{args.threads} threads)", flush=True)
    path = Path(__file__).parent / "results" / "speed.json"
    atomic_write_bytes(path, json.dumps(out, indent=1).encode())


if __name__ == "__main__":
    main()
