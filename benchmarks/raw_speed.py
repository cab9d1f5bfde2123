"""A 24 MP raw to DNG: wall time and peak memory of `denoiser denoise BIG.dng` (the RAW→DNG path a user runs),
on a synthetic 6000 x 4000 Bayer DNG made from a Kodak24 photo (unprocessed to linear camera RGB, mosaicked,
shot + read noise at an ISO-3200-like level of a full-frame sensor, fixed seed).

    .venv/bin/python benchmarks/raw_speed.py [--threads N] [--out benchmarks/results/raw_speed.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "datasets" / "test" / "Kodak24"
sys.path.insert(0, str(ROOT / "tests"))


def make_raw(path: Path, h: int = 4000, w: int = 6000) -> Path:
    import cv2
    from raw_util import bayer, write_cfa_dng

    srgb = cv2.imread(str(sorted(KODAK.iterdir())[0]))[..., ::-1].astype(np.float32) / 255.0
    srgb = np.clip(cv2.resize(srgb, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4) / np.array([2.0, 1.0, 1.6])
    clean = bayer(np.clip(linear, 0, 1), "RGGB")
    a, b = 0.0064, 2.0e-5  # ISO 3200 of a ~50,000 e- full-frame sensor (raw_synthesis.FULL_FRAME), its read noise
    noisy = clean + np.random.default_rng(0).normal(size=clean.shape) * np.sqrt(a * clean + b)
    return write_cfa_dng(path, np.clip(noisy, -0.01, 1.0), "RGGB", black=512, white=16383)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "raw_speed.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = make_raw(Path(tmp) / "big.dng")
        env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "denoiser", "denoise", str(src), "--out-dir", tmp],
                             capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        ok = res.returncode == 0 and (Path(tmp) / "big-denoised.dng").is_file()
    load = os.getloadavg()[0]
    row = {"megapixels": 24.0, "seconds": round(seconds, 1), "peak_rss_gb": round(peak / 1e9, 2), "ok": ok,
           "threads": args.threads, "load_average_1min": round(load, 2), "cpus": os.cpu_count(),
           "output": res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr.strip()[-300:]}
    print(json.dumps(row, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
