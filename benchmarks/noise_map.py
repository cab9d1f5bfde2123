"""Accuracy of Auto's noise map on synthetic camera-pipeline noise (the learned estimator vs the classical one).

Clean photos: the standard test sets (never trained on) with camera-pipeline noise (core.noise.camera, random
cameras, seeded) at three ISO bands (shot-noise gain 1e-4..1e-3, 1e-3..5e-3, 5e-3..2e-2). Reference: the local
std map of the noise actually added (core.noise.local_std_map). Reported per set and band: mean absolute
relative error of the map (|est - true| / true, over pixels whose true std >= 1), bias (mean signed relative
error) and the error of the map's mean. The test photos carry some grain of their own, which the reference
does not count: at the lowest band that alone reads as over-estimation.

python benchmarks/noise_map.py [--estimator FILE] [--limit N] -> benchmarks/results/noise_map.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "test"


def main() -> None:
    import torch

    from denoiser.core.evaluation.evaluate import image_files, load_eval_image
    from denoiser.core.files import atomic_write_bytes
    from denoiser.core.noise import estimate_sigma, learned, local_std_map
    from denoiser.core.noise.camera import sample_params, simulate

    ap = argparse.ArgumentParser()
    ap.add_argument("--estimator", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--sets", default="CBSD68,Kodak24,McMaster")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = learned.load_estimator(args.estimator) if args.estimator else learned.shipped_estimator()
    if net is None:
        raise SystemExit("no estimator installed: give --estimator FILE")
    rows = []
    bands = {"ISO low": (1e-4, 1e-3), "ISO mid": (1e-3, 5e-3), "ISO high": (5e-3, 2e-2)}
    for name, band in ((n, b) for n in args.sets.split(",") for b in bands):
        stats = {"learned": [], "classical": []}
        secs, levels = [], []
        for i, f in enumerate(image_files(DATA / name, args.limit)):
            clean = load_eval_image(f)
            if clean.shape[2] == 1:
                clean = np.repeat(clean, 3, axis=2)
            rng = np.random.default_rng(1000 + i)
            noisy = simulate(clean, sample_params(rng, shot_range=bands[band]), rng)
            true = local_std_map(torch.from_numpy(noisy - clean).permute(2, 0, 1)[None])[0, 0].numpy()
            levels.append(float(true.mean()))
            t0 = time.perf_counter()
            est = learned.predict_map(net, noisy)
            secs.append((time.perf_counter() - t0) / (clean.shape[0] * clean.shape[1] / 1e6))
            classical = np.full_like(true, estimate_sigma(noisy))
            keep = true >= 1.0
            for key, m in (("learned", est), ("classical", classical)):
                rel = (m[keep] - true[keep]) / true[keep]
                stats[key].append((np.mean(np.abs(rel)), np.mean(rel), m.mean() / true.mean() - 1))
        for key, vals in stats.items():
            a = np.array(vals)
            rows.append({"set": name, "band": band, "true_mean": float(np.mean(levels)), "estimator": key,
                         "images": len(a), "map_mean_abs_rel_err": float(a[:, 0].mean()),
                         "map_bias": float(a[:, 1].mean()), "mean_level_rel_err": float(a[:, 2].mean()),
                         "seconds_per_mp": float(np.mean(secs)) if key == "learned" else None})
            r = rows[-1]
            print(f"{name:<9} {band:<9} (true {r['true_mean']:4.1f}) {key:<9}: |err| {r['map_mean_abs_rel_err']:6.1%}  "
                  f"bias {r['map_bias']:+6.1%}  "
                  f"mean level {r['mean_level_rel_err']:+6.1%}", flush=True)
    out = Path(__file__).parent / "results" / "noise_map.json"
    atomic_write_bytes(out, json.dumps(rows, indent=1).encode())


if __name__ == "__main__":
    main()
