"""The heavy-noise expert's ramp (core.model.experts): where the model and its expert each do better.

Data, none of it from test/ nor from the real-noise validation halves:
- the 8 training photos every training run holds out (the model card's val_images; centre crops of 384 px):
  white Gaussian noise at sigma 20..100 with the true sigma given, and high-ISO camera noise after the camera's
  processing (heavy_noise.camera_params at three sensor gains) with Auto, for the model alone, the expert alone
  and the pair as the app runs it;
- the real-noise tuning halves (Nam25, RENOIR50 T3i and dglr): how high Auto's map reaches there, and the model
  alone against the pair with Auto (real low-light noise, where networks trained further on heavy noise lost).

    python benchmarks/level_experts.py [--model resources/models/default.safetensors] [--expert FILE]
      [--precision fp32|int8] [--threads 2]
      -> table; benchmarks/results/level_experts.json (one entry per model, expert and precision)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from heavy_noise import camera_params
from peers import DATA
from real_noise import groups, psnr
from results_file import merge_entries

from denoiser.core.files import file_sha256

RESULTS = Path(__file__).parent / "results" / "level_experts.json"
MODEL = Path(__file__).resolve().parents[1] / "resources" / "models" / "default.safetensors"
SIGMAS = (20, 25, 30, 40, 50, 60, 70, 80, 90, 100)
SHOTS = (3e-3, 1e-2, 2e-2, 4e-2)  # raw variance per unit signal: "ISO 3200-like" to beyond "ISO 12800-like"
CROP = 384


def held_out_photos(model: Path) -> list[np.ndarray]:
    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.core.model.file import read_card
    from denoiser.core.training.patches import centre_crop

    names = read_card(model).training.get("val_images") or []
    if not names:
        sys.exit(f"{model}: its card names no held-out training photos (training.val_images)")
    found = {p.name: p for p in (DATA / "train").rglob("*") if p.name in names}
    return [np.ascontiguousarray(centre_crop(load_eval_image(found[n]), CROP)) for n in names if n in found]


def engines(model: Path, expert: Path, precision: str):  # -> dict[str, Denoiser]
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.inference.heavy_expert import HeavyExpert

    alone = Denoiser.from_file(model, device="cpu", tile=1024, precision=precision)
    alone.heavy = None
    pair = Denoiser.from_file(model, device="cpu", tile=1024, precision=precision)
    pair.heavy = HeavyExpert(expert, pair.model.config)
    heavy = Denoiser.from_file(expert, device="cpu", tile=1024, precision=precision)
    heavy.heavy = None
    return {"model": alone, "expert": heavy, "pair": pair}


def measure(model: Path, dens: dict) -> dict:
    from denoiser.core.evaluation.evaluate import add_gaussian
    from denoiser.core.noise.camera import simulate
    from denoiser.core.noise.learned import auto_map

    photos = held_out_photos(model)
    table: dict[str, dict[str, float]] = {}
    for sig in SIGMAS:
        noisy = [add_gaussian(c, sig, 7 * i + sig) for i, c in enumerate(photos)]
        table[f"σ{sig}"] = {k: float(np.mean([psnr(d.denoise(n, float(sig)), c)
                                              for n, c in zip(noisy, photos, strict=True)])) for k, d in dens.items()}
        print(f"  σ{sig}: " + "  ".join(f"{k} {v:.2f}" for k, v in table[f"σ{sig}"].items()), flush=True)
    for shot in SHOTS:
        noisy = [simulate(c, camera_params(shot, i), np.random.default_rng(1000 + i)) for i, c in enumerate(photos)]
        maps = [auto_map(n) for n in noisy]
        row = {k: float(np.mean([psnr(d.denoise(n, d.auto_strength(n)), c)
                                 for n, c in zip(noisy, photos, strict=True)])) for k, d in dens.items()}
        row["map mean"], row["map max"] = float(np.mean([m.mean() for m in maps])), float(max(m.max() for m in maps))
        table[f"camera shot {shot:g}"] = row
        print(f"  camera shot {shot:g}: " + "  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    return {"photos": len(photos), "crop": CROP, "table": table}


def real_tuning(dens: dict) -> dict[str, dict[str, float]]:
    """On the real-noise tuning halves: Auto's map (median, 99th percentile, maximum; 0..255 std) and the mean
    PSNR of the model alone and of the pair, both with Auto."""
    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.core.noise.learned import auto_map

    out = {}
    for name, pairs in groups("tune").items():
        maps, alone, pair = [], [], []
        for noisy_path, ref_path in pairs:
            noisy, ref = load_eval_image(noisy_path), load_eval_image(ref_path)
            maps.append(auto_map(noisy).ravel())
            level = dens["model"].auto_strength(noisy)
            alone.append(psnr(dens["model"].denoise(noisy, level), ref))
            pair.append(psnr(dens["pair"].denoise(noisy, level), ref))
        values = np.concatenate(maps)
        out[f"{name} tune"] = {"photos": len(pairs), "median": float(np.median(values)),
                               "p99": float(np.percentile(values, 99)), "max": float(values.max()),
                               "model": float(np.mean(alone)), "pair": float(np.mean(pair))}
        print(f"  {name} tune: map median {np.median(values):.1f}, 99th percentile {np.percentile(values, 99):.1f}, "
              f"max {values.max():.1f}; model {np.mean(alone):.3f}, pair {np.mean(pair):.3f} dB", flush=True)
    return out


def main() -> None:
    import torch

    from denoiser.core.model.experts import HEAVY_RAMP, heavy_expert_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--expert", type=Path, help="the expert (default: the one beside the model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                    help="int8: the model's and the expert's INT8 builds (the Fast quality)")
    args = ap.parse_args()
    expert = args.expert or heavy_expert_path(args.model)
    for p in (args.model, expert):
        if not p.is_file():
            sys.exit(f"{p}: no such model file")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    dens = engines(args.model, expert, args.precision)  # one set of engines for both protocols
    entry = measure(args.model, dens)
    entry["real_tuning"] = real_tuning(dens)
    entry["precision"] = args.precision
    entry.update(model=str(args.model), expert=str(expert), ramp=[HEAVY_RAMP.start, HEAVY_RAMP.full],
                 threads=args.threads, minutes=round((time.perf_counter() - t0) / 60, 1),
                 date=time.strftime("%Y-%m-%d %H:%M"))
    key = f"{file_sha256(args.model)[:16]}|{file_sha256(expert)[:16]}|{args.precision}"
    merge_entries(RESULTS, {key: entry})
    print(f"\n{'':<22}{'model':>8}{'expert':>8}{'pair':>8}")
    for k, row in entry["table"].items():
        print(f"{k:<22}" + "".join(f"{row[c]:>8.2f}" for c in ("model", "expert", "pair")))
    for k, row in entry["real_tuning"].items():
        print(f"{k:<22}{row['model']:>8.2f}{'':>8}{row['pair']:>8.2f}   map median {row['median']:.1f}, max "
              f"{row['max']:.1f}")


if __name__ == "__main__":
    main()
