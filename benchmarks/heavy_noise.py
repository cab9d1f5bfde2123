"""Heavy noise (issue 34 part 3): models side by side where photos are worst.

Two protocols, both on test/ photos the models never trained on:
- Gaussian sigma 75 and 100 on CBSD68, Kodak24 and McMaster in full (DESIGN.md protocol: fixed seeds, noisy
  input not clipped, the true sigma given to the model).
- High-ISO camera noise after the camera's processing (core.noise.camera.simulate: raw shot + read noise on
  the log-linear sensor relation, demosaic, colour matrix, sRGB, tone curve, no in-camera chroma noise
  reduction so the chroma noise stays strong, JPEG q90) at two sensor gains: "ISO 3200-like" (shot 3e-3) and
  "ISO 12800-like" (shot 1e-2), on Kodak24 and McMaster; strength = Auto as the app runs it. Fixed seeds per
  photo, so every model sees the same noisy photos.

    python benchmarks/heavy_noise.py --model resources/models/default.safetensors --model runs/heavy/model.safetensors
      [--ffdnet] [--every N] [--threads 2]
      -> table; benchmarks/results/heavy_noise.json (one entry per model file sha256, and its expert's)

A model's heavy-noise expert (core.model.experts), when one is beside it, runs as in the app. FFDNet (--ffdnet) is
given the true sigma on the Gaussian sets and, on camera noise, scored at its best strength per photo (a search
against the reference that no user can make: the peer at its best).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATA, SETS, ffdnet_fn
from real_noise import psnr
from results_file import merge_entries

from denoiser.core.files import file_sha256
from denoiser.core.model.experts import expert_file
from denoiser.core.model.file import read_card

RESULTS = Path(__file__).parent / "results" / "heavy_noise.json"
GAUSSIAN = (75, 100)
CAMERA_SETS = ("Kodak24", "McMaster")
CAMERA = {"ISO 3200-like": 3e-3, "ISO 12800-like": 1e-2}  # shot-noise gain (raw variance per unit signal)


def camera_params(shot: float, seed: int):
    """One fixed high-ISO camera: read noise on the sensor relation, bilinear demosaic, tone curve, JPEG q90."""
    from denoiser.core.noise.camera import CameraParams, colour_matrix, read_for_shot

    off = np.full((3, 3), 0.25)
    return CameraParams(shot=shot, read=read_for_shot(shot), cam2rgb=colour_matrix(off), wb=(2.1, 1.0, 1.7),
                        phase=(seed % 2, (seed // 2) % 2), demosaic="bilinear", chroma_nr=0.0, sharpen=0.0,
                        jpeg=90, tone=True)


def images(folder: Path, every: int) -> list[Path]:
    from denoiser.core.evaluation.evaluate import image_files

    return list(image_files(folder))[::every]


FFDNET_GRID = (10, 15, 20, 25, 30, 35, 40, 50, 60, 75)  # FFDNet's strengths searched per camera photo


def measure(model: Path | None, every: int) -> dict[str, dict[str, float]]:
    """The table of one model file as the app runs it, or of FFDNet (model None): the true sigma on the
    Gaussian sets and, on camera noise, its best strength of FFDNET_GRID per photo against the reference (an
    oracle no user has: FFDNet at its best)."""
    from denoiser.core.evaluation.evaluate import evaluate_synthetic, load_eval_image
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.noise.camera import simulate

    if model is None:
        ffdnet = ffdnet_fn()
        fn = ffdnet

        def best(noisy: np.ndarray, clean: np.ndarray) -> float:
            return max(psnr(np.clip(ffdnet(noisy, float(s)), 0, 1), clean) for s in FFDNET_GRID)
    else:
        den = Denoiser.from_file(model, device="cpu", tile=1024)

        def fn(x: np.ndarray, sigma: float | None) -> np.ndarray:
            return den.denoise(x, sigma)

        def best(noisy: np.ndarray, clean: np.ndarray) -> float:
            return psnr(den.denoise(noisy, den.auto_strength(noisy)), clean)
    table: dict[str, dict[str, float]] = {}
    for s in SETS:
        for sig in GAUSSIAN:
            r = evaluate_synthetic(fn, DATA / "test" / s, sig)
            table[f"{s} σ{sig}"] = {"psnr": r.psnr, "images": r.images}
            print(f"  {s} σ{sig}: {r.psnr:.3f} dB ({r.images} images)", flush=True)
    for s in CAMERA_SETS:
        for label, shot in CAMERA.items():
            outs, ins = [], []
            for i, path in enumerate(images(DATA / "test" / s, every)):
                clean = load_eval_image(path)
                if clean.shape[2] != 3:
                    continue
                rng = np.random.default_rng(1000 + i)
                noisy = simulate(clean, camera_params(shot, i), rng)
                ins.append(psnr(noisy, clean))
                outs.append(best(noisy, clean))
            table[f"{s} {label}"] = {"psnr": float(np.mean(outs)), "noisy": float(np.mean(ins)), "images": len(outs)}
            print(f"  {s} {label}: {np.mean(outs):.3f} dB (noisy {np.mean(ins):.2f}, {len(outs)} images)", flush=True)
    return table


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, action="append", default=[], help="model file (repeatable)")
    ap.add_argument("--ffdnet", action="store_true", help="FFDNet too (true sigma; camera noise: its best strength)")
    ap.add_argument("--every", type=int, default=1, help="camera protocol: every Nth photo (Gaussian: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--refresh", action="store_true", help="measure again even when a cached entry exists")
    args = ap.parse_args()
    if not args.model and not args.ffdnet:
        ap.error("give --model FILE and/or --ffdnet")
    torch.set_num_threads(args.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    rows: dict[str, dict[str, dict[str, float]]] = {}
    labels: dict[str, str] = {}
    for model in args.model:
        if not model.is_file():
            sys.exit(f"{model}: no such model file")
    for model in [*args.model, *([None] if args.ffdnet else [])]:
        expert = expert_file(model, read_card(model).training) if model else None  # the engine runs it too
        if model is None:
            key, label = f"ffdnet|every{args.every}", "FFDNet"
        else:
            key = f"{file_sha256(model)[:16]}|every{args.every}" + \
                (f"|heavy{file_sha256(expert)[:16]}" if expert is not None else "")
            card = read_card(model)
            label = f"{card.name} v{card.version}" + \
                (f" + {read_card(expert).name} expert" if expert and expert.is_file() else "")
        if key in results and not args.refresh:
            print(f"{label}: cached", flush=True)
        else:
            print(f"{label}: measuring ({args.threads} threads)", flush=True)
            t0 = time.perf_counter()
            table = measure(model, args.every)
            entry = {"model": str(model or "ffdnet"), "card": label, "every": args.every,
                     "threads": args.threads, "minutes": round((time.perf_counter() - t0) / 60, 1),
                     "date": time.strftime("%Y-%m-%d %H:%M"), "table": table}
            results = merge_entries(RESULTS, {key: entry})
        rows[key] = results[key]["table"]
        labels[key] = results[key].get("card", label)
    names = list(rows)
    sets = list(rows[names[0]])
    print("\n" + f"{'set':<26}" + "".join(f"{labels[n]:>28}" for n in names))
    for k in sets:
        print(f"{k:<26}" + "".join(f"{rows[n][k]['psnr']:>28.2f}" for n in names))


if __name__ == "__main__":
    main()
