"""Peak memory and speed of denoising a 45 MP photo (8256 x 5504) on the CPU, and the tiling overhead.

    python benchmarks/engine_memory.py [--model NAME] [--threads 2] [--passes N [--skip-4mp]]
Prints figures and writes benchmarks/results/engine_memory.json (engine_memory_passesN.json with --passes N > 1).
Peak RSS is read from the kernel (ru_maxrss), for the whole process including the input photo and the output.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from denoiser.core.files import atomic_write_bytes
from denoiser.core.inference.engine import Denoiser


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-45mp", action="store_true")
    ap.add_argument("--skip-4mp", action="store_true", help="skip the tiling-overhead figure")
    ap.add_argument("--passes", type=int, default=1, help="self-ensemble passes for the 45 MP photo")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    engine = Denoiser.from_name(args.model, "cpu")
    rng = np.random.default_rng(0)
    res: dict = {"threads": args.threads, "tile": engine.tile, "overlap": engine.overlap, "passes": args.passes}

    if not args.skip_4mp:  # tiling overhead on 4 MP: default tiles vs one untiled pass
        img4 = rng.random((1632, 2448, 3), dtype=np.float32)
        untiled = Denoiser(engine._cpu_model, "cpu", tile=4096)
        for name, eng in (("untiled", untiled), ("tiled", engine), ("untiled2", untiled), ("tiled2", engine)):
            t0 = time.perf_counter()
            eng.denoise(img4, 25.0)
            res[f"4mp_{name}_s"] = round(time.perf_counter() - t0, 2)
        un = min(res["4mp_untiled_s"], res["4mp_untiled2_s"])
        ti = min(res["4mp_tiled_s"], res["4mp_tiled2_s"])
        res["tiling_overhead_pct"] = round(100 * (ti / un - 1), 1)
        print(f"4 MP: untiled {un:.2f} s, tiled {ti:.2f} s -> overhead {res['tiling_overhead_pct']:+.1f} %",
              flush=True)

    if not args.skip_45mp:
        h, w = 5504, 8256
        img = np.empty((h, w, 3), np.float32)
        for y in range(0, h, 512):  # build in strips to keep the generator's temporaries small
            img[y:y + 512] = rng.random((min(512, h - y), w, 3), dtype=np.float32)
        t0 = time.perf_counter()
        out = engine.denoise(img, 25.0, passes=args.passes)
        dt = time.perf_counter() - t0
        mp = h * w / 1e6
        res.update({"45mp_seconds": round(dt, 1), "45mp_s_per_mp": round(dt / mp, 3),
                    "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)})
        print(f"45 MP, {args.passes} pass(es): {dt:.1f} s ({dt / mp:.2f} s/MP), peak RSS {res['peak_rss_gb']} GB "
              f"(input + output arrays alone: {2 * img.nbytes / 1e9:.2f} GB)", flush=True)
        del out
    suffix = f"_passes{args.passes}" if args.passes > 1 else ""
    out_path = Path(__file__).parent / "results" / f"engine_memory{suffix}.json"
    out_path.parent.mkdir(exist_ok=True)
    atomic_write_bytes(out_path, json.dumps(res, indent=1).encode())


if __name__ == "__main__":
    main()
