"""Noisy-mode fine-tuning on real camera noise (Nam25): PSNR against the references vs minutes.

The references (Nam25/gt) are used only to score; training sees Nam25/noisy alone. The curve scores each
model at the noise level estimated on each photo (estimate_sigma); at the end both models are also scored
as the app runs them (Auto strength = Denoiser.auto_strength, calibrated per photo on correlated noise).

    python benchmarks/finetune_noisy.py --minutes 10 [--base PATH] [--every 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from denoiser.core.evaluation.evaluate import load_eval_image
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.files import atomic_write_bytes
from denoiser.core.model.file import load_model
from denoiser.core.noise import estimate_sigma

NAM = Path(__file__).resolve().parents[2] / "shared/datasets/real/Nam25"


def default_base() -> Path:
    shipped = Path(__file__).resolve().parents[1] / "resources/models/default.safetensors"
    return shipped if shipped.is_file() else Path("/work/runs/default1/default.safetensors")


def read(path: Path) -> np.ndarray:
    return load_eval_image(path)  # as evaluation reads every photo (io.photo)


def score(model: torch.nn.Module, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> float:
    vals = []
    with torch.inference_mode():
        for noisy, gt, sigma in pairs:
            x = torch.from_numpy(noisy).permute(2, 0, 1)[None]
            out = model(x, torch.tensor([sigma]))[0].clamp(0, 1).permute(1, 2, 0).numpy()
            vals.append(psnr(gt, out))
    return float(np.mean(vals))


def score_app(path: Path, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[float, float]:
    """(PSNR, mean strength) as the app runs the model: Auto strength = Denoiser.auto_strength, which
    calibrates the strength on each photo's own noise when it is spatially correlated."""
    from denoiser.core.inference.engine import Denoiser

    d = Denoiser.from_file(path, device="cpu")
    vals, strengths = [], []
    for noisy, gt, _ in pairs:
        s = d.auto_strength(noisy)
        vals.append(psnr(gt, d.denoise(noisy, s)))
        strengths.append(float(s))
    return float(np.mean(vals)), float(np.mean(strengths))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=2.0, help="score every N training minutes")
    ap.add_argument("--base", type=Path, default=None)
    ap.add_argument("--sigma", type=float, default=None, help="strength target (noisy mode's optional --sigma)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/finetune_noisy_nam25.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("DENOISER_DATA_DIR", tempfile.mkdtemp(prefix="ft-bench-"))
    from denoiser.core.training.finetune import finetune  # after DENOISER_DATA_DIR is set

    base = args.base or default_base()
    files = sorted((NAM / "noisy").glob("*.png"))
    pairs = []
    for f in files:
        noisy = read(f)
        pairs.append((noisy, read(NAM / "gt" / f.name), estimate_sigma(noisy, max_patches=20000)))
    base_model, _ = load_model(base)
    curve = [{"minutes": 0.0, "step": 0, "psnr": score(base_model, pairs)}]
    noisy_db = np.mean([psnr(g, n) for n, g, _ in pairs])
    print(f"noisy input {noisy_db:.2f} dB; base {curve[0]['psnr']:.2f} dB", flush=True)
    next_mark = [args.every]

    def on_step(info) -> None:
        trainer = on_step.trainer
        if trainer.elapsed / 60 >= next_mark[0]:
            next_mark[0] += args.every
            p = score(trainer.ema, pairs)
            curve.append({"minutes": round(trainer.elapsed / 60, 2), "step": info.step, "psnr": p})
            print(f"{trainer.elapsed / 60:.1f} min step {info.step}: {p:.2f} dB", flush=True)

    import denoiser.core.training.finetune as ft
    orig = ft._Hook.__init__

    def grab(self, trainer, *a, **k):  # the benchmark needs the trainer to score its EMA model
        on_step.trainer = trainer
        orig(self, trainer, *a, **k)

    ft._Hook.__init__ = grab
    t0 = time.time()
    res = finetune(NAM / "noisy", mode="noisy", name="nam25-bench", base_model=str(base), minutes=args.minutes,
                   threads=1, on_step=on_step, preview_every=10**9, sigma=args.sigma)
    final, card = load_model(res.path)
    curve.append({"minutes": round(res.minutes, 2), "step": res.steps, "psnr": score(final, pairs)})
    base_app, base_strength = score_app(base, pairs)
    final_app, final_strength = score_app(res.path, pairs)
    print(f"as the app runs them (Auto = calibrated strength): base {base_app:.2f} dB (mean strength "
          f"{base_strength:.2f}), fine-tuned {final_app:.2f} dB ({final_strength:.2f})", flush=True)
    out = {"base_model": str(base), "strength_target": args.sigma, "threads": 1, "minutes_budget": args.minutes,
           "wall_s": round(time.time() - t0),
           "noisy_input_psnr": float(np.mean([psnr(g, n) for n, g, _ in pairs])),
           "base_psnr_auto_sigma": curve[0]["psnr"], "final_psnr_auto_sigma": curve[-1]["psnr"],
           "gain_db": curve[-1]["psnr"] - curve[0]["psnr"], "curve": curve,
           "base_psnr_app_auto": base_app, "final_psnr_app_auto": final_app, "gain_db_app_auto": final_app - base_app,
           "base_mean_strength_app_auto": base_strength, "final_mean_strength_app_auto": final_strength,
           "steps": res.steps,
           "strength_gain": card.training.get("strength_gain"), "calibration": card.training.get("calibration"),
           "val_metric": res.val_metric, "val_before": res.val_before, "val_after": res.val_after,
           "cpu": os.cpu_count(), "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, json.dumps(out, indent=2).encode())
    print(json.dumps({k: v for k, v in out.items() if k != "curve"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
