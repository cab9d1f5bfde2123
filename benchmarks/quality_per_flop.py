"""Quality per FLOP: smaller students pruned from the shipped model (and trained back by distillation) against it.

    python benchmarks/quality_per_flop.py scan [--model FILE]                 # dB lost per removed block
    python benchmarks/quality_per_flop.py prune --drop mid.2,mid.5 --out runs/x/pruned.safetensors
    python benchmarks/quality_per_flop.py student --drop mid.0,mid.1 --config resources/train/student_naf.json \
        --out runs/x/init.safetensors
    python benchmarks/quality_per_flop.py table --models default,runs/a/model.safetensors [--limit N]
    python benchmarks/quality_per_flop.py blocks                              # a res and a NAF block timed per level

`scan` and every choice made from it (which blocks to remove) use held-out TRAINING crops only: the validation
files of `denoiser train` (the same deterministic split), centre crops of 256 px at sigma 15/25/50.
`table` reports, never tunes on, CBSD68/Kodak24/McMaster at sigma 15/25/50 (DESIGN.md protocol, the true sigma
given) and each model's GFLOP/MP and s/MP measured at one thread with every model timed in turn in the same process
(ratios against the first model hold under load; the load is recorded), and again at each --threads count; Nam25
with Auto on its tuning half (to choose by) and, with --nam25 tune,val, its validation half. Results:
benchmarks/results/quality_per_flop.json (table) and quality_per_flop_scan.json (scan).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATA, SETS, SIGMAS

from denoiser.core.evaluation.block_worth import drop_costs, drop_costs_by
from denoiser.core.evaluation.evaluate import evaluate_synthetic
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.files import atomic_write_bytes, file_sha256
from denoiser.core.model.file import ModelCard, load_model, save_model
from denoiser.core.model.network import count_parameters, gflops_per_megapixel
from denoiser.core.model.prune import prune
from denoiser.core.model.students import student_from
from denoiser.core.noise import synthesize
from denoiser.core.training.patches import list_images, load_rgb8, split_validation
from denoiser.core.training.trainer import TrainConfig

RESULTS = Path(__file__).parent / "results"
CONTINUE = Path(__file__).resolve().parents[1] / "resources" / "train" / "continue.json"
SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "models" / "default.safetensors"
TRAIN = [DATA / "train" / d for d in ("CBSD432", "SunHays80", "photos")]


def held_out_crops(side: int = 256, sigmas: tuple[float, ...] = (15, 25, 50), mix: int = 0) -> list[tuple]:
    """(clean, noisy, level) centre crops of the training run's validation files (never trained on): Gaussian at
    each sigma, and `mix` draws of the training noise mix (continue.json: camera pipeline, correlated, JPEG; level
    maps as the model is trained with)."""
    _, val = split_validation(list_images(TRAIN), 0.02, 8)
    gen = torch.Generator().manual_seed(1234)
    noise = TrainConfig.from_file(CONTINUE).noise
    crops = []
    for path in val:
        img = load_rgb8(path, 2, native_quality=90)
        c = min(side, min(img.shape[:2]) // 16 * 16)
        y, x = (img.shape[0] - c) // 2, (img.shape[1] - c) // 2
        clean = torch.from_numpy(img[y:y + c, x:x + c].astype(np.float32) / 255).permute(2, 0, 1)[None]
        for s in sigmas:
            crops.append((clean, clean + torch.randn(clean.shape, generator=gen) * s / 255, float(s)))
        for _ in range(mix):
            crops.append((clean, *synthesize(clean, noise, gen)))
    return crops


def real_costs(model: Path, sets: str) -> tuple[dict[str, float], str]:
    """drop_costs on real photos of the real-noise TUNING halves (never the validation halves), Auto as the app
    runs it (the level map measured once per photo with the whole model)."""
    from real_noise import groups
    from real_noise import psnr as real_psnr

    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.core.inference.engine import Denoiser

    engine = Denoiser.from_file(model, "cpu")
    photos = [(load_eval_image(n), load_eval_image(r)) for s in sets.split(",") for n, r in groups("tune")[s]]
    levels = [engine.auto_strength(noisy) for noisy, _ in photos]

    def score() -> float:
        return float(np.mean([real_psnr(engine.denoise(noisy, lvl), ref)
                              for (noisy, ref), lvl in zip(photos, levels, strict=True)]))
    return drop_costs_by(engine.model, score), f"real-noise tuning halves of {sets}, Auto ({len(photos)} photos)"


def nam25(engine: object, half: str) -> float:
    """Mean PSNR with Auto on one half of Nam25 (real camera noise): 'tune' to choose by, 'val' as the ship rule
    measures it (never chosen on)."""
    from real_noise import groups
    from real_noise import psnr as real_psnr

    from denoiser.core.evaluation.evaluate import load_eval_image

    scores = []
    for noisy_path, ref_path in groups(half)["Nam25"]:
        noisy, ref = load_eval_image(noisy_path), load_eval_image(ref_path)
        scores.append(real_psnr(engine.denoise(noisy, engine.auto_strength(noisy)), ref))  # type: ignore[attr-defined]
    return float(np.mean(scores))


def scan(args: argparse.Namespace) -> None:
    if args.real:
        costs, data = real_costs(Path(args.model), args.real)
        model = load_model(Path(args.model))[0]
    else:
        model, _ = load_model(Path(args.model))
        costs = drop_costs(model, held_out_crops(sigmas=args.sigmas, mix=args.mix))
        data = (f"held-out training crops (denoiser train's validation split), 256 px, Gaussian sigma {args.sigmas}, "
                f"{args.mix} draws each of continue.json's noise mix")
    cfg = model.config
    ranked = sorted(costs.items(), key=lambda kv: kv[1])
    for name, cost in ranked:
        print(f"{name:<10} {cost:7.3f} dB", flush=True)
    out = {"model": args.model, "gflops_per_mp": round(gflops_per_megapixel(cfg), 1), "costs_db": dict(ranked),
           "data": data,
           "date": time.strftime("%Y-%m-%d %H:%M")}
    atomic_write_bytes(RESULTS / args.out, json.dumps(out, indent=1).encode())


def prune_cmd(args: argparse.Namespace) -> None:
    path = Path(args.model)
    model, card = load_model(path)
    drop = [n for n in args.drop.split(",") if n]
    small = prune(model, drop)
    crops = held_out_crops(sigmas=(25,))
    with torch.inference_mode():
        val = float(np.mean([psnr(c[0].numpy(), small(n, torch.tensor([s]))[0].clamp(0, 1).numpy())
                             for c, n, s in crops]))
    new_card = ModelCard(name=args.out.stem, config=small.config,
                         training={"pruned_from": str(path), "removed_blocks": drop},
                         metrics={"val_psnr_sigma25": val}, description=f"{path.name} without {', '.join(drop)}")
    save_model(args.out, small, new_card)
    print(f"{args.out}: {count_parameters(small) / 1e6:.2f} M params, "
          f"{gflops_per_megapixel(small.config):.1f} GFLOP/MP, held-out sigma 25: {val:.2f} dB")
    print(f"its \"model\" section for a training config: {json.dumps(small.config.to_dict())}")


def student_cmd(args: argparse.Namespace) -> None:
    """The starting weights of a student (core/model/students.py): the source without the --drop blocks, in the
    architecture of the training config's "model" section."""
    path = Path(args.model)
    model, _ = load_model(path)
    drop = [n for n in args.drop.split(",") if n]
    cfg = TrainConfig.from_file(Path(args.config)).model
    torch.manual_seed(args.seed)  # the fresh weights of new channels
    student, done = student_from(model, drop, cfg)
    card = ModelCard(name=args.out.stem, config=cfg,
                     training={"student_of": str(path), "source_sha256": file_sha256(path), "removed_blocks": drop,
                               "identity_blocks": done.identity, "widened": len(done.widened)},
                     description=f"{path.name} without {len(drop)} blocks, {len(done.identity)} NAF blocks added, "
                                 f"{len(done.widened)} tensors widened; to be trained from here")
    save_model(args.out, student.eval(), card)
    print(f"{args.out}: {count_parameters(student) / 1e6:.2f} M params, {gflops_per_megapixel(cfg):.1f} GFLOP/MP, "
          f"{len(done.copied)} tensors copied, {len(done.widened)} widened, identity blocks: {done.identity}")


def speed_ratios(engines: dict[str, object], rounds: int, side: int = 512) -> dict[str, float]:
    """Seconds per MP of each engine on the same noisy photo, the engines timed in turn for `rounds` rounds (the
    median of each): under a shared machine's load the ratios hold better than the absolute figures."""
    rng = np.random.default_rng(0)
    img = np.clip(rng.random((side, side, 3), np.float32) * 0.2 + 0.4, 0, 1)
    times: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(rounds + 1):  # the first round warms up
        for name, engine in engines.items():
            t0 = time.perf_counter()
            engine.denoise(img, 25.0)  # type: ignore[attr-defined]
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v[1:])) / (side * side / 1e6) for k, v in times.items()}


def blocks(args: argparse.Namespace) -> None:
    """Seconds per MP of photo of one residual block and one NAF block at each level of `default` (fp32, channels
    last, the two timed in turn), at each thread count: FLOPs alone mislead where a block is memory-bound."""
    from denoiser.core.model.network import NAFBlock, ResBlock

    side, rows = 1024, []  # the photo's side; level i works at side / 2 / 2**i
    for t in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(t)
        for level, ch in enumerate((32, 64, 128, 256)):
            hw = side // 2 // 2 ** level
            x = torch.rand(1, ch, hw, hw).contiguous(memory_format=torch.channels_last)
            made = {"res": ResBlock(ch), "naf": NAFBlock(ch)}
            times: dict[str, list[float]] = {k: [] for k in made}
            with torch.inference_mode():
                for _ in range(args.rounds + 1):
                    for k, b in made.items():
                        b.eval().to(memory_format=torch.channels_last)
                        t0 = time.perf_counter()
                        b(x)
                        times[k].append(time.perf_counter() - t0)
            mp = side * side / 1e6
            row = {"threads": t, "level": level, "channels": ch,
                   **{f"{k}_ms_per_mp": round(float(np.median(v[1:])) / mp * 1e3, 2) for k, v in times.items()}}
            row["naf_time_vs_res"] = round(row["naf_ms_per_mp"] / row["res_ms_per_mp"], 2)
            rows.append(row)
            print(row, flush=True)
    out = {"rows": rows, "flops_naf_vs_res": "about 1/3 (12 C^2 + 36 C against 36 C^2 per pixel)",
           "load": os.getloadavg(), "machine": platform.processor() or platform.machine(),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    atomic_write_bytes(RESULTS / args.out, json.dumps(out, indent=1).encode())


def table(args: argparse.Namespace) -> None:
    from denoiser.core.inference.engine import Denoiser

    paths = {Path(m).parent.name if Path(m).stem == "model" else Path(m).stem: Path(m)
             for m in args.models.split(",")}
    if len(paths) < len(args.models.split(",")):
        raise SystemExit("two models would share a row name (the file's stem, or its folder's for model.safetensors); "
                         "give them distinct names")
    engines = {k: Denoiser.from_file(p, "cpu") for k, p in paths.items()}
    threads = [int(t) for t in args.threads.split(",")]
    speeds = {}
    for t in threads:
        torch.set_num_threads(t)
        speeds[t] = speed_ratios(engines, args.rounds)
    torch.set_num_threads(1)
    speed = speeds[threads[0]]
    halves = [h for h in args.nam25.split(",") if h]
    rows = {}
    first = next(iter(engines))
    sets = [s for s in args.sets.split(",") if s]
    earlier: dict[str, dict] = {}  # figures already measured (same file bytes and limit), from --reuse files
    for f in args.reuse.split(","):
        if f:
            old = json.loads((RESULTS / f).read_text())
            for r in old["models"].values():
                if old["limit"] == args.limit:
                    merged = earlier.setdefault(r["sha256"], {"psnr": {}})
                    merged["psnr"].update(r["psnr"])
                    merged.update({k: r[k] for k in ("held_out_train_psnr", "nam25_val_auto", "nam25_tune_auto")
                                   if k in r})
    for name, engine in engines.items():
        cfg = engine.model.config
        digest = file_sha256(paths[name])
        row: dict[str, object] = {
            "file": str(paths[name]), "params_m": round(count_parameters(engine.model) / 1e6, 2),
            "gflops_per_mp": round(gflops_per_megapixel(cfg), 1), "s_per_mp": round(speed[name], 3),
            "speed_vs_first": round(speed[first] / speed[name], 3), "config": cfg.to_dict(), "psnr": {},
            "s_per_mp_by_threads": {t: round(speeds[t][name], 3) for t in threads},
            "speed_vs_first_by_threads": {t: round(speeds[t][first] / speeds[t][name], 3) for t in threads},
            "sha256": digest, "card_training": {k: v for k, v in engine.card.training.items() if k != "config"}}
        rows[name] = row
        known = earlier.get(digest, {"psnr": {}})
        if "held_out_train_psnr" in known:
            val = known["held_out_train_psnr"]
        else:
            val = round(float(np.mean([psnr(c[0].numpy(), engine.denoise(n[0].permute(1, 2, 0).numpy(), s)
                                            .transpose(2, 0, 1)) for c, n, s in held_out_crops()])), 3)
        row["held_out_train_psnr"] = val
        for half in halves:
            row[f"nam25_{half}_auto"] = known.get(f"nam25_{half}_auto") or round(nam25(engine, half), 3)
        for set_name in sets:
            for sigma in SIGMAS:
                key = f"{set_name}|{sigma}"
                if key not in known["psnr"]:
                    known["psnr"][key] = round(evaluate_synthetic(lambda x, sg, e=engine: e.denoise(x, sg),
                                                                  DATA / "test" / set_name, sigma,
                                                                  limit=args.limit).psnr, 3)
                row["psnr"][key] = known["psnr"][key]  # type: ignore[index]
        print(f"{name:<22} {row['params_m']:6.2f} M {row['gflops_per_mp']:7.1f} GFLOP/MP {row['s_per_mp']:6.2f} s/MP "
              f"(x{row['speed_vs_first']:.2f}; by threads {row['speed_vs_first_by_threads']})  held-out {val:.2f}  "
              + "  ".join(f"Nam25 {h} {row[f'nam25_{h}_auto']:.2f}" for h in halves) + "  "
              + "  ".join(f"{k} {v:.2f}" for k, v in row["psnr"].items()), flush=True)  # type: ignore[attr-defined]
    out = {"models": rows, "threads": threads, "limit": args.limit, "load": os.getloadavg(),
           "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "protocol": "DESIGN.md: unclipped Gaussian noise, fixed seeds, true sigma given, output clipped, 8-bit"}
    atomic_write_bytes(RESULTS / args.out, json.dumps(out, indent=1).encode())


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("scan")
    p.add_argument("--model", default=str(SHIPPED))
    p.add_argument("--sigmas", type=lambda v: tuple(float(x) for x in v.split(",") if x), default=(15.0, 25.0, 50.0),
                   help="Gaussian sigmas ('' for none)")
    p.add_argument("--mix", type=int, default=3, help="crops per file noised with the training mix")
    p.add_argument("--real", default="", help="measure on these real sets' tuning halves instead, e.g. Nam25")
    p.add_argument("--out", default="quality_per_flop_scan.json", help="file name under benchmarks/results/")
    p.set_defaults(func=scan)
    p = sub.add_parser("prune")
    p.add_argument("--model", default=str(SHIPPED))
    p.add_argument("--drop", required=True, help="comma-separated block names, e.g. mid.3,dec.2.1")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=prune_cmd)
    p = sub.add_parser("student")
    p.add_argument("--model", default=str(SHIPPED))
    p.add_argument("--drop", default="", help="comma-separated blocks of the source the student does without")
    p.add_argument("--config", required=True, help="training config whose \"model\" section is the student's "
                   "architecture (resources/train/student_*.json)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=student_cmd)
    p = sub.add_parser("blocks")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", default="quality_per_flop_blocks.json", help="file name under benchmarks/results/")
    p.set_defaults(func=blocks)
    p = sub.add_parser("table")
    p.add_argument("--models", default=str(SHIPPED), help="comma-separated model files; the first is the reference")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--limit", type=int, default=0, help="images per set (0 = all)")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (interleaved)")
    p.add_argument("--threads", default="1", help="thread counts to time at, e.g. 1,2 (the first gives s_per_mp)")
    p.add_argument("--nam25", default="tune,val", help="halves of Nam25 to score with Auto ('tune' to choose by)")
    p.add_argument("--out", default="quality_per_flop.json", help="file name under benchmarks/results/")
    p.add_argument("--reuse", default="", help="earlier result files (under benchmarks/results/) whose quality "
                   "figures are reused for the same model files")
    p.set_defaults(func=table)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    main()
