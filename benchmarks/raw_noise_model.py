"""How well the sensor noise model is measured from the mosaic alone (noise.sensor.SensorNoise.estimate, what
the RAW→DNG path uses when a raw has no NoiseProfile): Kodak24 and McMaster photos unprocessed to linear camera
RGB (inverse sRGB curve, white balance 2.0/1.0/1.6; no clipping), mosaicked at RGGB and given shot + read noise
at the four levels of benchmarks/raw_noise.py (a full-frame and a phone sensor at ISO 800-12800,
noise.raw_synthesis.SensorModel), one fixed seed per photo and level. Reported per set and level: the median and
the 90th percentile over photos of the relative error of a and of b (each the mean over the four CFA sites), the
median error of the noise std they give at mid-grey (0.18 of white), and the share of photos with a and b both
within 10 %.

    .venv/bin/python benchmarks/raw_noise_model.py [--out benchmarks/results/raw_noise_model.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "datasets" / "test"
MID_GREY = 0.18


def main() -> int:
    from denoiser.core.io.develop import mosaic
    from denoiser.core.noise.raw_synthesis import FULL_FRAME, PHONE
    from denoiser.core.noise.sensor import SensorNoise

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "raw_noise_model.json")
    args = ap.parse_args()
    levels = ((FULL_FRAME, 3200), (PHONE, 800), (FULL_FRAME, 12800), (PHONE, 3200))
    rows = []
    for name in ("Kodak24", "McMaster"):
        photos = sorted((TEST / name).iterdir())
        for sensor, iso in levels:
            a, b = sensor.shot(iso), sensor.read(iso)
            errs = []
            for k, path in enumerate(photos):
                srgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
                lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
                clean = mosaic((lin / np.array([2.0, 1.0, 1.6])).astype(np.float32), "RGGB")
                rng = np.random.default_rng(1000 * k + iso)
                noisy = clean + rng.normal(size=clean.shape).astype(np.float32) * np.sqrt(a * clean + b)
                est = SensorNoise.estimate(noisy.astype(np.float32), "RGGB")
                std = np.sqrt(float(np.mean(est.a)) * MID_GREY + float(np.mean(est.b)))
                errs.append((float(np.mean(est.a)) / a - 1.0, float(np.mean(est.b)) / b - 1.0,
                             std / np.sqrt(a * MID_GREY + b) - 1.0))
            e = np.abs(np.array(errs))
            row = {"set": name, "sensor": sensor.name, "iso": iso, "a": a, "b": b, "photos": len(errs),
                   "a_err_median_pct": round(100 * float(np.median(e[:, 0])), 1),
                   "a_err_p90_pct": round(100 * float(np.quantile(e[:, 0], 0.9)), 1),
                   "b_err_median_pct": round(100 * float(np.median(e[:, 1])), 1),
                   "b_err_p90_pct": round(100 * float(np.quantile(e[:, 1], 0.9)), 1),
                   "std_err_median_pct": round(100 * float(np.median(e[:, 2])), 1),
                   "both_within_10pct": round(float(np.mean((e[:, :2] < 0.10).all(axis=1))), 2)}
            rows.append(row)
            print(f"{name:9s} {sensor.name:10s} ISO {iso:5d}  a {row['a_err_median_pct']:5.1f} % "
                  f"(p90 {row['a_err_p90_pct']:6.1f})  b {row['b_err_median_pct']:6.1f} % "
                  f"(p90 {row['b_err_p90_pct']:7.1f})  std at mid-grey {row['std_err_median_pct']:5.1f} %  "
                  f"both within 10 %: {row['both_within_10pct']:.0%}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
