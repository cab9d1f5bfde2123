"""Auto's sparse noise map (core/noise/sparse_map.py) against the map read at every pixel, on real camera noise.

The real-noise photos are 512-720 px crops, read whole by Auto; to see the sparse map at work each photo is mirrored
out 3x3 (1536-2160 px, 2.4-4.7 MP: the scene keeps the camera's own pixel scale) and both maps are made for the big
photo. The model then denoises the middle copy (with 64 px of context) under each map, and PSNR is taken on that
copy against the reference; the map error is the mean |sparse - full| over the whole photo relative to the full
map's mean. The grid's blocks sit at the big photo's edges and between, so the middle copy is mostly interpolated.

    python benchmarks/auto_sparse.py --half tune|val [--limit N] [--threads 1] [--variants JSON]
      -> table; benchmarks/results/auto_sparse_<half>.json
--variants: {"name": {sparse_map keyword: value}} to compare settings (choose them with --half tune only).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from real_noise import groups, psnr

MARGIN = 64


def mirror(img: np.ndarray, k: int = 3) -> np.ndarray:
    row = np.concatenate([img if j % 2 == 0 else img[:, ::-1] for j in range(k)], 1)
    return np.ascontiguousarray(np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(k)], 0))


def main() -> None:
    import torch

    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.core.files import atomic_write_bytes
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.noise import learned
    from denoiser.core.noise.level import NoiseLevel
    from denoiser.core.noise.sparse_map import sparse_map

    ap = argparse.ArgumentParser()
    ap.add_argument("--half", choices=("tune", "val"), required=True)
    ap.add_argument("--limit", type=int, default=0, help="photos per set (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default='{"sparse (shipped settings)": {}}')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net, run = learned.shipped_estimator(), learned.shipped_runner()
    assert net is not None and run is not None, "needs the shipped estimator and onnxruntime"
    den = Denoiser.from_name(None, device="cpu", tile=1024)
    variants = json.loads(args.variants)
    rows = []
    for name, pairs in groups(args.half).items():
        for noisy_path, ref_path in pairs[:args.limit] if args.limit else pairs:
            noisy, ref = load_eval_image(noisy_path), load_eval_image(ref_path)
            big = mirror(noisy)
            a, b = noisy.shape[0] - MARGIN, 2 * noisy.shape[0] + MARGIN
            t0 = time.perf_counter()
            maps = {"full": learned.predict_map(net, big, run=run)}
            row: dict = {"set": name, "photo": noisy_path.name, "seconds full": time.perf_counter() - t0}
            for v, kw in variants.items():
                t0 = time.perf_counter()
                maps[v] = sparse_map(big, run, **kw)
                row[f"seconds {v}"] = time.perf_counter() - t0
            for v, m in maps.items():
                level = NoiseLevel.auto(np.ascontiguousarray(m[a // 2:b // 2, a // 2:b // 2]) * np.float32(net.gain))
                out = den.denoise(np.ascontiguousarray(big[a:b, a:b]), level)
                row[v] = psnr(out[MARGIN:-MARGIN, MARGIN:-MARGIN][::-1, ::-1], ref)  # the middle copy is flipped
                if v != "full":
                    row[f"map error {v}"] = float(np.abs(m - maps["full"]).mean() / maps["full"].mean())
            rows.append(row)
            print(json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in row.items()}), flush=True)
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    summary = {s: {k: round(float(np.mean([r[k] for r in rows if r["set"] == s])), 3) for k in keys}
               for s in dict.fromkeys(r["set"] for r in rows)}
    summary["all"] = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in keys}
    print(f"\n{'set':<15}" + "".join(f"{v[:24]:>26}" for v in maps))
    for s, vals in summary.items():
        print(f"{s:<15}" + "".join(f"{vals[v]:>14.3f} dB" + (f" {100 * vals['map error ' + v]:4.1f} %"
                                                             if v != "full" else " " * 7) for v in maps))
    out = Path(__file__).parent / "results" / f"auto_sparse_{args.half}.json"
    atomic_write_bytes(out, json.dumps({"half": args.half, "threads": args.threads, "variants": variants,
                                        "mirror": "3x3", "summary": summary, "rows": rows}, indent=1).encode())


if __name__ == "__main__":
    main()
