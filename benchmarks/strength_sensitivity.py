"""How much PSNR the model loses when told a strength other than the true Gaussian sigma.

    python benchmarks/strength_sensitivity.py [--model M] [--limit 10] [--threads 1]
        -> benchmarks/results/strength_sensitivity.json

Rows: true sigma (15, 25, 50, and 75, above the training range of 55); columns: the strength told, as a
gain on the true sigma (0.9 .. 1.25). Mean PSNR on the first --limit CBSD68 images, DESIGN.md protocol.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATA, ours

from denoiser.core.evaluation.evaluate import evaluate_synthetic
from denoiser.core.files import atomic_write_bytes

SIGMAS = (15, 25, 50, 75)
GAINS = (0.9, 0.95, 1.0, 1.05, 1.1, 1.25)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    run = ours(args.model)[0]  # the same engine call as every other "ours" benchmark
    rows = {}
    print("sigma  " + "  ".join(f"x{g:<5}" for g in GAINS))
    for sigma in SIGMAS:
        row = {}
        for g in GAINS:
            res = evaluate_synthetic(lambda img, s, g=g: run(img, s * g),
                                     DATA / "test" / "CBSD68", sigma, limit=args.limit)
            row[str(g)] = round(res.psnr, 3)
        rows[str(sigma)] = row
        print(f"{sigma:5}  " + "  ".join(f"{row[str(g)]:6.2f}" for g in GAINS), flush=True)
    out = Path(__file__).parent / "results" / "strength_sensitivity.json"
    report = {"model": args.model, "images": args.limit, "set": "CBSD68", "psnr": rows}
    atomic_write_bytes(out, json.dumps(report, indent=1).encode())


if __name__ == "__main__":
    main()
