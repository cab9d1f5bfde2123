"""Luma/chroma, detail and removed-detail map: what they cost and what they do on real camera noise.

python benchmarks/controls.py [--limit 10] [--picture docs/removed-detail-map.png [--picture-gain G]]

- time: one model run (fixed strength) vs the controls' post-processing (luma/chroma blend, 50 % detail,
  the removed-detail map) on the first RENOIR50 photo; printed, no assertion.
- quality: on the first --limit photos of Nam25 and RENOIR50, PSNR against the references of Auto, Auto
  luma-only (chroma 0x) and Auto chroma-only (luma 0x), each recombined in YCbCr, an opponent space and
  CIELAB (the design choice for core.inference.controls), plus each photo's removed-detail score.
Written to benchmarks/results/controls.json. One thread (torch.set_num_threads(1)).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from denoiser.core.evaluation.evaluate import image_files, load_eval_image
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.files import atomic_write_bytes
from denoiser.core.inference.controls import SPACES, apply_detail, blend
from denoiser.core.inference.detail_map import detail_report
from denoiser.core.inference.engine import Denoiser

REAL = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "real"
RESULTS = Path(__file__).resolve().parent / "results" / "controls.json"


def _best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def timing(den: Denoiser, photo: Path) -> dict[str, float]:
    noisy = load_eval_image(photo).astype(np.float32)
    t0 = time.perf_counter()
    out = den.denoise(noisy, 25.0)
    run = time.perf_counter() - t0
    lc = _best_of(lambda: blend(noisy, out, 0.5, 1.0))
    det = _best_of(lambda: apply_detail(noisy, out, 0.5, 25.0))
    dmap = _best_of(lambda: detail_report(noisy, out))
    mp = noisy.shape[0] * noisy.shape[1] / 1e6
    row = {"megapixels": mp, "run_s": run, "luma_chroma_s": lc, "detail_s": det, "map_s": dmap,
           "controls_pct_of_run": 100 * (lc + det) / run, "map_pct_of_run": 100 * dmap / run}
    print(f"time on {photo.name} ({mp:.2f} MP): run {run:.2f} s; luma/chroma {lc * 1e3:.1f} ms, detail "
          f"{det * 1e3:.1f} ms ({row['controls_pct_of_run']:.2f} % of the run); map {dmap * 1e3:.1f} ms "
          f"({row['map_pct_of_run']:.2f} %)")
    return row


def quality(den: Denoiser, name: str, limit: int) -> list[dict]:
    rows = []
    for f in image_files(REAL / name / "noisy", limit):
        noisy = load_eval_image(f).astype(np.float32)
        clean = load_eval_image(REAL / name / "gt" / f.name)
        level = den.auto_strength(noisy)  # Auto's map, run as the app runs it; its mean goes in the row
        out = den.denoise(noisy, level)
        sigma = float(level)
        row = {"photo": f.name, "sigma": sigma, "noisy": psnr(clean, np.clip(noisy, 0, 1)),
               "auto": psnr(clean, out)}
        for space in SPACES:
            row[f"luma_only_{space}"] = psnr(clean, np.clip(blend(noisy, out, 1.0, 0.0, space), 0, 1))
            row[f"chroma_only_{space}"] = psnr(clean, np.clip(blend(noisy, out, 0.0, 1.0, space), 0, 1))
        row["removed_detail_score"] = detail_report(noisy, out).score
        rows.append(row)
        print(f"{name}/{f.name}: sigma {sigma:.1f}  auto {row['auto']:.2f}  luma-only {row['luma_only_ycbcr']:.2f}"
              f"  chroma-only {row['chroma_only_ycbcr']:.2f}  score {row['removed_detail_score']:.2f} %",
              flush=True)
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    keys = [k for k in rows[0] if k not in ("photo", "removed_detail_score")]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def picture(den: Denoiser, photo: Path, gain: float, path: Path, side: int = 256) -> dict:
    """Noisy | denoised | map overlay, on the crop with the most flagged area, the photo denoised at
    `gain` x its Auto strength (a gain above 1 makes the model eat detail, for the map to show)."""
    noisy = load_eval_image(photo).astype(np.float32)
    sigma = gain * float(den.auto_strength(noisy))
    out = den.denoise(noisy, min(sigma, 255.0))
    rep = detail_report(noisy, out)
    score = cv2.boxFilter(rep.map, -1, (side, side), normalize=True, borderType=cv2.BORDER_CONSTANT)
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    y = int(np.clip(y - side // 2, 0, max(0, noisy.shape[0] - side)))
    x = int(np.clip(x - side // 2, 0, max(0, noisy.shape[1] - side)))
    crop = (slice(y, y + side), slice(x, x + side))
    tiles = [np.rint(np.clip(noisy[crop], 0, 1) * 255).astype(np.uint8),
             np.rint(np.clip(out[crop], 0, 1) * 255).astype(np.uint8), rep.overlay(out)[crop]]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    img = np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1)
    img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    ok, enc = cv2.imencode(".png", img[..., ::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, enc.tobytes())
    row = {"photo": photo.name, "gain": gain, "sigma": sigma, "score": rep.score, "crop": [x, y, side]}
    print(f"picture: {path} ({photo.name} at {gain:g}x Auto = {sigma:.1f}, score {rep.score:.2f} %, crop {x},{y})")
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--picture", type=Path, default=None, help="write the removed-detail map picture here")
    ap.add_argument("--picture-photo", default="RENOIR50/renoir_dglr_10.png")
    ap.add_argument("--picture-gain", type=float, default=1.0, help="strength as a multiple of Auto")
    ap.add_argument("--picture-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    den = Denoiser.from_name(None, device="cpu")
    if args.picture:
        name, photo = args.picture_photo.split("/", 1)
        row = picture(den, REAL / name / "noisy" / photo, args.picture_gain, args.picture)
        if args.picture_only:
            return
    result = {"threads": 1, "model": den.model_name, "limit": args.limit,
              "time": timing(den, image_files(REAL / "RENOIR50" / "noisy", 1)[0]), "sets": {}}
    if args.picture:
        result["picture"] = row
    for name in ("Nam25", "RENOIR50"):
        rows = quality(den, name, args.limit)
        result["sets"][name] = {"summary": summary(rows), "photos": rows}
        print(name, json.dumps(result["sets"][name]["summary"], indent=1))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(RESULTS, (json.dumps(result, indent=2) + "\n").encode())

if __name__ == "__main__":
    main()
