"""Accuracy of the noise-level estimator (`--strength auto`) on synthetic Gaussian noise.

python benchmarks/noise_estimation.py [--limit N]  -> table of mean / worst relative error per set and sigma,
written to benchmarks/results/noise_estimation.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from denoiser.core.evaluation.evaluate import add_gaussian, image_files, load_eval_image
from denoiser.core.files import atomic_write_bytes
from denoiser.core.noise import estimate_sigma

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "test"
SIGMAS = (5, 10, 15, 25, 35, 50)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--sets", default="CBSD68,Kodak24,McMaster,Set12")
    args = ap.parse_args()
    rows = []
    for name in args.sets.split(","):
        files = image_files(DATA / name, args.limit)
        for sigma in SIGMAS:
            errs, t0 = [], time.perf_counter()
            for i, f in enumerate(files):
                noisy = add_gaussian(load_eval_image(f), sigma, i)
                errs.append(estimate_sigma(noisy) / sigma - 1)
            errs = np.array(errs)
            rows.append({"set": name, "sigma": sigma, "images": len(files), "mean_rel_err": float(errs.mean()),
                         "mean_abs_rel_err": float(np.abs(errs).mean()),
                         "worst_rel_err": float(errs[np.abs(errs).argmax()]),
                         "within_10pct": float((np.abs(errs) <= 0.10).mean()),
                         "seconds_per_image": (time.perf_counter() - t0) / len(files)})
            r = rows[-1]
            print(f"{name:<9} sigma {sigma:>2}: mean {r['mean_rel_err']:+6.1%}  |mean| {r['mean_abs_rel_err']:5.1%}  "
                  f"worst {r['worst_rel_err']:+6.1%}  within 10%: {r['within_10pct']:5.0%}  "
                  f"({r['seconds_per_image']:.2f} s/image)", flush=True)
    out = Path(__file__).parent / "results" / "noise_estimation.json"
    out.parent.mkdir(exist_ok=True)
    atomic_write_bytes(out, json.dumps(rows, indent=1).encode())


if __name__ == "__main__":
    main()
