"""Auto against the best hand-set strength on real camera noise (photos with references).

For each photo of Nam25 (mild DSLR noise) and RENOIR50 (heavy low-light noise; its Canon T3i and `dglr` parts
reported apart): PSNR of the noisy input, of Auto (the app's default), and of the best single strength searched
per photo against the reference (a coarse grid, then a log-space refinement). RENOIR50 is split by file order
into a tuning half (even positions) and a validation half (odd positions): settings are chosen on the tuning
half only; both halves are reported.

python benchmarks/real_noise.py [--model M] [--estimator FILE] [--half tune|val|all] [--threads 2] [--limit N]
  -> table; JSON in benchmarks/results/real_noise[_TAG].json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "real"
GRID = (2.0, 5.0, 10.0, 18.0, 30.0, 50.0, 80.0)


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    from denoiser.core.evaluation.metrics import psnr as metric

    return metric(ref, np.clip(out, 0, 1))


def best_strength(run, noisy: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(strength, PSNR) of the best constant strength: grid, then four log-space narrowing steps."""
    cache: dict[float, float] = {}

    def score(s: float) -> float:
        s = round(float(s), 2)
        if s not in cache:
            cache[s] = psnr(run(noisy, s), ref)
        return cache[s]

    vals = [score(s) for s in GRID]
    i = int(np.argmax(vals))
    lo, hi = GRID[max(i - 1, 0)], GRID[min(i + 1, len(GRID) - 1)]
    for _ in range(4):
        a, b = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * np.array([1 / 3, 2 / 3]))
        if score(a) > score(b):
            hi = b
        else:
            lo = a
    s = max(cache, key=cache.get)
    return s, cache[s]


def groups(half: str) -> dict[str, list[tuple[Path, Path]]]:
    def pick(files: list[Path]) -> list[Path]:
        return {"tune": files[0::2], "val": files[1::2], "all": files}[half]

    ren = sorted((DATA / "RENOIR50/noisy").glob("*.png"))
    nam = sorted((DATA / "Nam25/noisy").glob("*.png"))
    return {
        "Nam25": [(p, DATA / "Nam25/gt" / p.name) for p in pick(nam)],
        "RENOIR50 t3i": [(p, DATA / "RENOIR50/gt" / p.name) for p in pick([p for p in ren if "_t3i_" in p.name])],
        "RENOIR50 dglr": [(p, DATA / "RENOIR50/gt" / p.name) for p in pick([p for p in ren if "_dglr_" in p.name])],
    }


def main() -> None:
    import torch

    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.core.files import atomic_write_bytes
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.noise import learned

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model name or .safetensors file (default: the shipped model)")
    ap.add_argument("--estimator", type=Path, help="noise-map estimator file (default: the shipped one)")
    ap.add_argument("--half", choices=("tune", "val", "all"), default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="photos per set (0 = all)")
    ap.add_argument("--no-best", action="store_true", help="skip the best-strength search (Auto only)")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    ap.add_argument("--gains", default="", help="comma-separated scales on Auto's map to compare (chooses the "
                                                "estimator's Auto gain; use --half tune)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.estimator:
        net = learned.load_estimator(args.estimator)
        learned.shipped_estimator = lambda: net
    if args.model and args.model.endswith(".safetensors"):
        den = Denoiser.from_file(Path(args.model), device="cpu", tile=1024)
    else:
        den = Denoiser.from_name(args.model, device="cpu", tile=1024)
    rows, summary = [], {}
    for name, pairs in groups(args.half).items():
        pairs = pairs[:args.limit] if args.limit else pairs
        for noisy_path, ref_path in pairs:
            noisy, ref = load_eval_image(noisy_path), load_eval_image(ref_path)
            if args.gains:
                auto = den.auto_strength(noisy)
                row = {"set": name, "photo": noisy_path.name, "noisy": psnr(noisy, ref)}
                row.update({f"gain {g}": psnr(den.denoise(noisy, auto.scaled(float(g))), ref)
                            for g in args.gains.split(",")})
                rows.append(row)
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
                continue
            t0 = time.perf_counter()
            auto = den.auto_strength(noisy)
            out = den.denoise(noisy, auto)
            t_auto = time.perf_counter() - t0
            t0 = time.perf_counter()
            den.denoise(noisy, float(auto))
            t_fixed = time.perf_counter() - t0
            row = {"set": name, "photo": noisy_path.name, "noisy": psnr(noisy, ref), "auto": psnr(out, ref),
                   "auto_strength": float(auto), "auto_seconds": t_auto, "fixed_seconds": t_fixed}
            if not args.no_best:
                row["best_strength"], row["best"] = best_strength(lambda x, s: den.denoise(x, s), noisy, ref)
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        sel = [r for r in rows if r["set"] == name]
        if sel:
            summary[name] = {k: float(np.mean([r[k] for r in sel])) for k in sel[0] if isinstance(sel[0][k], float)}
            summary[name]["photos"] = len(sel)
    for name, s in summary.items() if args.gains else ():
        print(f"{name:<15}" + "  ".join(f"{k} {v:.2f}" for k, v in s.items() if k != "photos"))
    print(f"\n{'set':<15}{'photos':>7}{'noisy':>8}{'Auto':>8}{'best':>8}{'Auto-best':>10}{'Auto/fixed time':>17}")
    for name, s in summary.items() if not args.gains else ():
        best = s.get("best", float("nan"))
        print(f"{name:<15}{s['photos']:>7}{s['noisy']:>8.2f}{s['auto']:>8.2f}{best:>8.2f}{s['auto'] - best:>10.2f}"
              f"{s['auto_seconds'] / s['fixed_seconds']:>16.2f}x")
    out = Path(__file__).parent / "results" / f"real_noise{'_' + args.tag if args.tag else ''}.json"
    payload = {"model": args.model or "default", "estimator": str(args.estimator or "shipped"), "half": args.half,
               "threads": args.threads, "summary": summary, "rows": rows}
    atomic_write_bytes(out, json.dumps(payload, indent=1).encode())


if __name__ == "__main__":
    main()
