"""The ship rule: does a candidate model replace the shipped one?

A candidate ships when the mean PSNR over the real-noise *validation* halves (Nam25, RENOIR50 T3i, RENOIR50
`dglr`: the odd positions of benchmarks/real_noise.py's split, never tuned on; Auto as the app runs it) rises
by >= 0.05 dB and no set loses more than 0.05 dB: each real validation half, and CBSD68, Kodak24 and McMaster
in full at sigma 15/25/50 (the DESIGN.md protocol: fixed seeds, noisy input not clipped, the true sigma given).

    python benchmarks/ship_rule.py --candidate runs/heavy/model.safetensors [--baseline FILE] [--name NAME]
      -> comparison table, SHIP / NO SHIP and why; benchmarks/results/ship_<name>.json

Each model's per-set table is cached in benchmarks/results/ship_table_<sha256[:16]>.json, keyed by the model
file's and the Auto estimator's sha256, so only a new candidate costs time (~25 MP of Gaussian sets x 3 sigmas
plus ~11 MP of real photos).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATA, SETS, SIGMAS
from real_noise import groups, psnr

from denoiser.core.files import file_sha256

RESULTS = Path(__file__).parent / "results"
DEFAULT_BASELINE = Path(__file__).resolve().parents[1] / "resources" / "models" / "default.safetensors"
MIN_REAL_GAIN = 0.05  # dB: the mean over the real validation halves must rise by at least this
MAX_LOSS = 0.05  # dB: no set may lose more than this
PROTOCOL = 1  # bump when the sets or the way they are scored change (invalidates cached tables)


def real_sets() -> list[str]:
    return [f"{name} val" for name in groups("val")]


def gaussian_sets() -> list[str]:
    return [f"{s} σ{sig}" for s in SETS for sig in SIGMAS]


@dataclass(frozen=True)
class Verdict:
    ship: bool
    reason: str
    real_gain: float  # dB: candidate's mean over the real validation halves minus the baseline's
    worst_set: str
    worst_delta: float  # dB: the largest loss (most negative delta) over every set


def decide(baseline: dict[str, float], candidate: dict[str, float], real: list[str],
           min_gain: float = MIN_REAL_GAIN, max_loss: float = MAX_LOSS) -> Verdict:
    """The rule as a pure function of two {set: mean PSNR} tables over the same sets; `real` names the real
    validation sets whose mean must rise."""
    if set(baseline) != set(candidate):
        raise ValueError(f"the tables cover different sets: {sorted(set(baseline) ^ set(candidate))}")
    if not real or any(r not in baseline for r in real):
        raise ValueError(f"real sets {real} must be a non-empty part of the tables")
    deltas = {k: candidate[k] - baseline[k] for k in baseline}
    gain = float(np.mean([deltas[r] for r in real]))
    worst = min(deltas, key=deltas.get)
    losers = [f"{k} {deltas[k]:+.2f} dB" for k in deltas if deltas[k] < -max_loss - 1e-9]
    if losers:
        reason = f"loses more than {max_loss:.2f} dB on " + ", ".join(losers)
    elif gain < min_gain - 1e-9:
        reason = f"real-noise validation mean rises {gain:+.3f} dB (< {min_gain:.2f})"
    else:
        reason = f"real-noise validation mean {gain:+.3f} dB; worst set {worst} {deltas[worst]:+.3f} dB"
    return Verdict(not losers and gain >= min_gain - 1e-9, reason, gain, worst, deltas[worst])


def estimator_sha() -> str:
    from denoiser.core.noise.learned import default_estimator_path

    path = default_estimator_path()
    return file_sha256(path) if path.is_file() else "none"


def measure(model: Path, precision: str = "fp32") -> dict[str, float]:
    """{set: mean PSNR} of one model: Auto on the real validation halves, the true sigma on the Gaussian sets."""
    from denoiser.core.evaluation.evaluate import evaluate_synthetic, load_eval_image
    from denoiser.core.inference.engine import Denoiser

    den = Denoiser.from_file(model, device="cpu", tile=1024, precision=precision)
    table: dict[str, float] = {}
    for name, pairs in groups("val").items():
        scores = []
        for noisy_path, ref_path in pairs:
            noisy, ref = load_eval_image(noisy_path), load_eval_image(ref_path)
            scores.append(psnr(den.denoise(noisy, den.auto_strength(noisy)), ref))
        table[f"{name} val"] = float(np.mean(scores))
        print(f"  {name} val: {table[f'{name} val']:.3f} dB ({len(scores)} photos)", flush=True)
    for s in SETS:
        for sig in SIGMAS:
            r = evaluate_synthetic(lambda x, sigma: den.denoise(x, sigma), DATA / "test" / s, sig)
            table[f"{s} σ{sig}"] = r.psnr
            print(f"  {s} σ{sig}: {r.psnr:.3f} dB ({r.images} images, {r.seconds_per_mp:.2f} s/MP)", flush=True)
    return table


def cached_table(model: Path, threads: int, refresh: bool = False, precision: str = "fp32") -> dict:
    """The model's table from the cache (same model bytes, heavy-noise expert beside it, estimator, precision
    and protocol), else measured and cached. Precision int8 runs the model's INT8 build
    (core.inference.quantized), keyed by its bytes and the runtime that runs it (int8_runtime:
    $DENOISER_INT8_RUNTIME picks one) too."""
    from denoiser.core.files import atomic_write_bytes
    from denoiser.core.inference.int8_runtime import choose
    from denoiser.core.inference.quantized import int8_path
    from denoiser.core.model.experts import expert_file
    from denoiser.core.model.file import read_card

    key = {"model_sha256": file_sha256(model), "estimator_sha256": estimator_sha(), "protocol": PROTOCOL}
    suffix = ""
    expert = expert_file(model, read_card(model).training)
    if expert is not None:  # the engine runs the model's heavy-noise expert too
        key["expert_sha256"] = file_sha256(expert)
        suffix = f"_heavy_{key['expert_sha256'][:8]}"
    if precision != "fp32":
        key.update(precision=precision, int8_sha256=file_sha256(int8_path(model)), runtime=choose())
        suffix += f"_{precision}_{key['int8_sha256'][:8]}_{key['runtime']}"
    path = RESULTS / f"ship_table_{key['model_sha256'][:16]}{suffix}.json"
    if path.is_file() and not refresh:
        entry = json.loads(path.read_text())
        if all(entry.get(k) == v for k, v in key.items()):
            print(f"{model}: cached table {path.name}", flush=True)
            return entry
    print(f"{model}: measuring ({threads} threads, {precision})", flush=True)
    t0 = time.perf_counter()
    table = measure(model, precision)
    entry = {**key, "model": str(model), "threads": threads, "minutes": round((time.perf_counter() - t0) / 60, 1),
             "date": time.strftime("%Y-%m-%d %H:%M"), "table": {k: round(v, 4) for k, v in table.items()}}
    atomic_write_bytes(path, json.dumps(entry, indent=1, ensure_ascii=False).encode())
    return entry


def default_name(model: Path) -> str:
    return model.parent.name if model.stem in ("model", "default") else model.stem


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidate", type=Path, required=True, help="candidate model (.safetensors)")
    ap.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE, help="model it must beat (default: shipped)")
    ap.add_argument("--name", help="name in the results file (default: the file's stem, or its folder's name)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidate-precision", choices=("fp32", "int8"), default="fp32",
                    help="run the candidate through its INT8 build (the loss INT8 costs against fp32)")
    ap.add_argument("--refresh", action="store_true", help="measure again even when a cached table exists")
    args = ap.parse_args()
    for p in (args.candidate, args.baseline):
        if not p.is_file():
            sys.exit(f"{p}: no such model file")
    name = args.name or default_name(args.candidate)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        sys.exit(f"--name {name!r}: use letters, digits, '-', '_' or '.' only")
    torch.set_num_threads(args.threads)
    base = cached_table(args.baseline, args.threads, args.refresh)
    cand = cached_table(args.candidate, args.threads, args.refresh, args.candidate_precision)
    real = real_sets()
    verdict = decide(base["table"], cand["table"], real)
    print(f"\n{'set':<22}{'baseline':>10}{'candidate':>11}{'delta':>8}")
    for k in base["table"]:
        b, c = base["table"][k], cand["table"][k]
        print(f"{k:<22}{b:>10.2f}{c:>11.2f}{c - b:>+8.2f}")
    mean_b = float(np.mean([base["table"][r] for r in real]))
    print(f"{'real validation mean':<22}{mean_b:>10.2f}{mean_b + verdict.real_gain:>11.2f}{verdict.real_gain:>+8.2f}")
    print(f"\n{'SHIP' if verdict.ship else 'NO SHIP'}: {verdict.reason}")
    from denoiser.core.files import atomic_write_bytes

    payload = {"candidate": str(args.candidate), "baseline": str(args.baseline), "verdict": asdict(verdict),
               "rule": {"min_real_gain": MIN_REAL_GAIN, "max_loss": MAX_LOSS, "real_sets": real},
               "baseline_table": base, "candidate_table": cand, "date": time.strftime("%Y-%m-%d %H:%M")}
    atomic_write_bytes(RESULTS / f"ship_{name}.json", json.dumps(payload, indent=1, ensure_ascii=False).encode())


if __name__ == "__main__":
    main()
