"""Noisy-mode fine-tuning per camera: train on some noisy photos of a camera, score its OTHER photos.

What a photographer gets: `finetune(mode="noisy")` (the CLI's core entry) on a folder of their noisy photos (no
references), then both the default model and the fine-tuned one run as the app runs them (Auto strength), scored
by PSNR against the references, which training never sees. Cameras: RENOIR50's `renoir_t3i_*` (Canon T3i) and
`renoir_dglr_*` (another camera), and Nam25 as one group (its file names do not say which Nikon/Canon camera).

Splits follow benchmarks/real_noise.py's halves (tuning half: even positions, validation half: odd ones):
  --phase tune    train on the tuning half's even positions, score on its odd positions (settings are chosen here)
  --phase report  train on the tuning half, score on the validation half (never used to choose a setting)

The curve scores the run's EMA model at budget-minute marks (1, 2, 4, ...) of one run whose budget is the last
mark (a shorter run would end its learning-rate decay sooner), one thread. The trainer's budget clock is the
process's CPU time here (`cpu_clock`), so a "minute" is what one idle core gives in a minute of training steps,
whatever else the machine runs; the one-off noise measurement before the budget is reported apart.

    python benchmarks/finetune_camera.py [--cameras t3i,dglr,nam25] [--phase report] [--marks 1,2,4,8] [--tag T]
        [--noise-source synthetic|real|both] [--wise ALPHA] [--lr LR] [--distill-weight W] [--teacher-passes N]
        [--oracle [noise|target]]
    python benchmarks/finetune_camera.py --bank-check [--phase tune]   -> finetune_camera_bank_PHASE.json
      -> a table per camera; JSON in benchmarks/results/finetune_camera[_TAG].json
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_noise import DATA, groups

from denoiser.core.evaluation.evaluate import load_eval_image
from denoiser.core.evaluation.metrics import psnr
from denoiser.core.files import atomic_write_bytes

CAMERAS = {"t3i": "RENOIR50 t3i", "dglr": "RENOIR50 dglr", "nam25": "Nam25"}
RESULTS = Path(__file__).resolve().parent / "results"


def split(camera: str, phase: str) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """(noisy photos to train on, (noisy, reference) pairs to score) of one camera."""
    tune, val = groups("tune")[CAMERAS[camera]], groups("val")[CAMERAS[camera]]
    if phase == "tune":
        return [n for n, _ in tune[0::2]], tune[1::2]
    return [n for n, _ in tune], val


def app_score(engine, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean PSNR of the engine run as the app runs it: Auto strength (its noise map), one pass."""
    return float(np.mean([psnr(gt, engine.denoise(noisy, engine.auto_strength(noisy))) for noisy, gt in pairs]))


class cpu_clock:
    """The trainer's time module with monotonic() reading this process's CPU time."""

    def __init__(self) -> None:
        import denoiser.core.training.trainer as trainer

        self.trainer, self.real = trainer, trainer.time

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def monotonic(self) -> float:
        return self.real.process_time()

    def __enter__(self) -> cpu_clock:
        self.trainer.time = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self.trainer.time = self.real


def override(lr: float | None, distill_weight: float | None, noise_source: str | None = None,
             teacher_passes: int | None = None, r2r: tuple[float, float] | None = None) -> dict:
    """Settings tried against the shipped ones (recorded with the results): the learning rate, the weight of
    "match the base on the real photos" in noisy mode, and the noise its restoring term adds (synthetic, real,
    both)."""
    import denoiser.core.training.finetune as ft
    from denoiser.core.training.finetune_modes import NoisyFinetuneTrainer

    if lr is not None:
        make = ft.make_config
        ft.make_config = lambda *a, **k: replace(make(*a, **k), lr=lr)  # type: ignore[assignment]
    if distill_weight is not None:
        NoisyFinetuneTrainer.distill_weight = distill_weight
    if noise_source is not None:
        NoisyFinetuneTrainer.noise_source = noise_source
    if teacher_passes is not None:
        NoisyFinetuneTrainer.teacher_passes = teacher_passes
    if r2r is not None:
        NoisyFinetuneTrainer.r2r_share, NoisyFinetuneTrainer.r2r_alpha = r2r
    return {"lr": lr or "shipped", "distill_weight": NoisyFinetuneTrainer.distill_weight,
            "noise_source": NoisyFinetuneTrainer.noise_source, "teacher_passes": NoisyFinetuneTrainer.teacher_passes,
            "r2r": [NoisyFinetuneTrainer.r2r_share, NoisyFinetuneTrainer.r2r_alpha]}


def oracle_trainer(references: dict[str, Path], part: str = "both") -> type:
    """The ceiling of any noise model at this budget: noisy mode's trainer (same crops, Auto's map, anchor, budget)
    trained on the training photos' own references instead of pseudo-clean targets (`--oracle`; a user has no
    references: this only measures how much a perfect noise model could give). `part` says what is made true:
    "both" (the pair itself), "noise" (noisy mode's target plus the true noise) or "target" (the reference plus
    noisy mode's noise), which tells which of the two limits noisy mode."""
    import torch.nn.functional as F

    from denoiser.core.training.finetune_modes import NoisyFinetuneTrainer
    from denoiser.core.training.selfsup import NativePatchPool, load_native

    class PairedPool(NativePatchPool):
        def _load(self, i: int) -> np.ndarray | None:
            noisy = super()._load(i)
            gt = load_native(references[self.files[i].name])
            return None if noisy is None else np.concatenate([noisy, gt], axis=2)

        def batch(self, n: int, patch: int) -> np.ndarray:
            self._maybe_refresh()
            out = np.empty((n, patch, patch, 6), np.float32)
            for k in range(n):
                img = self.images[int(self.rng.integers(len(self.images)))]
                y, x = (int(self.rng.integers(d - patch + 1)) for d in img.shape[:2])
                crop = np.rot90(img[y:y + patch, x:x + patch], int(self.rng.integers(4)))
                out[k] = (crop[:, ::-1] if self.rng.integers(2) else crop).astype(np.float32) / 255.0
            return out

    class OracleTrainer(NoisyFinetuneTrainer):
        pool_class = PairedPool

        def main_loss(self, model, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            noisy, gt = batch[:, :3].contiguous(), batch[:, 3:].contiguous()
            measured = self.measured_map(noisy)
            if part == "noise":  # noisy mode's pseudo-clean target, with the photos' true noise added to it
                target = self._pseudo_clean(noisy, measured)
                return F.l1_loss(model(target + (noisy - gt), measured), target)
            if part == "target":  # the true reference as target, with noisy mode's noise (the bank) added to it
                noise = self._fresh_noise(gt, measured, gen)
                assert noise is not None
                return F.l1_loss(model(gt + noise, measured), gt)
            return F.l1_loss(model(noisy, measured), gt)

    return OracleTrainer


def wise(model: torch.nn.Module, base: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """WiSE-FT (Wortsman et al. 2022): the weights (1 - alpha) x base + alpha x fine-tuned."""
    out = copy.deepcopy(model)
    state, ref = out.state_dict(), base.state_dict()
    out.load_state_dict({k: (v * alpha + ref[k] * (1 - alpha)) if v.is_floating_point() else v
                         for k, v in state.items()})
    return out


def run_camera(camera: str, phase: str, marks: list[float], base: str | None, workdir: Path,
               save: Callable[[dict], None], wise_alpha: float | None = None, oracle: str | None = None,
               expert_check: bool = False) -> dict:
    import denoiser.core.training.finetune as ft
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.model.registry import find_model

    train, score = split(camera, phase)
    if oracle:
        refs = {n.name: g for n, g in groups("all")[CAMERAS[camera]]}
        ft.TRAINERS["noisy"] = oracle_trainer({p.name: refs[p.name] for p in train}, oracle)
    folder = workdir / f"{camera}-{phase}"
    folder.mkdir()
    for p in train:
        shutil.copy2(p, folder / p.name)
    pairs = [(load_eval_image(n), load_eval_image(g)) for n, g in score]
    base_entry = find_model(base)
    base_engine = Denoiser.from_file(base_entry.path, device="cpu")
    before, base_expert = app_score(base_engine, pairs), base_engine.heavy
    print(f"{camera}: {len(train)} photos to train on, {len(pairs)} scored; default model with Auto "
          f"{before:.2f} dB", flush=True)
    curve: list[dict] = []
    state = {"trainer": None, "cpu0": 0.0, "scoring": 0.0, "next": 0}

    def cpu_minutes() -> float:
        return (time.process_time() - state["cpu0"] - state["scoring"]) / 60

    def mark(trainer, step: int) -> None:
        t = time.process_time()
        engine = Denoiser(copy.deepcopy(trainer.ema).eval(), device="cpu")
        engine.heavy = base_expert  # as the app runs the published model (core.model.experts.expert_file)
        after = app_score(engine, pairs)
        state["scoring"] += time.process_time() - t
        row = {"minutes": round(trainer.elapsed / 60, 2), "cpu_minutes": round(cpu_minutes(), 2), "step": step,
               "after": after, "gain": after - before}
        curve.append(row)
        save({"camera": CAMERAS[camera], "phase": phase, "before": before, "curve": curve, "partial": True})
        print(f"  {row['minutes']:.2f} min ({row['cpu_minutes']:.2f} CPU-min, step {step}): {after:.2f} dB "
              f"({after - before:+.2f})", flush=True)

    def on_step(info: ft.StepInfo) -> None:
        trainer = state["trainer"]
        while state["next"] < len(marks) - 1 and trainer.elapsed / 60 >= marks[state["next"]]:
            state["next"] += 1
            mark(trainer, info.step)

    hook_init = ft._Hook.__init__

    def grab(self, trainer, *a, **k):  # the benchmark scores the trainer's EMA model mid-run
        state["trainer"], state["cpu0"] = trainer, time.process_time()
        hook_init(self, trainer, *a, **k)

    ft._Hook.__init__ = grab
    t0, c0 = time.time(), time.process_time()
    state["cpu0"] = c0
    try:
        with cpu_clock():
            res = ft.finetune(folder, mode="noisy", name=f"bench-{camera}-{phase}", base_model=base,
                              minutes=marks[-1], threads=1, on_step=on_step, preview_every=10 ** 9)
    finally:
        ft._Hook.__init__ = hook_init
    train_cpu = cpu_minutes()
    calibration_cpu = (state["cpu0"] - c0) / 60
    after = app_score(Denoiser.from_file(res.path, device="cpu"), pairs)
    curve.append({"minutes": round(res.minutes, 2), "cpu_minutes": round(train_cpu, 2), "step": res.steps,
                  "after": after, "gain": after - before})
    print(f"  end {res.minutes:.2f} min ({train_cpu:.2f} CPU-min, step {res.steps}): {after:.2f} dB "
          f"({after - before:+.2f})", flush=True)
    from denoiser.core.model.file import load_model

    tuned, card = load_model(res.path)
    expert_rows = heavy_check(res.path, base_entry.path, pairs) if expert_check else None
    wise_row = None
    if wise_alpha is not None:  # the weight is fixed before the run, never chosen on these scores
        blend = wise(tuned, load_model(base_entry.path)[0], wise_alpha)
        wise_after = app_score(Denoiser(blend.eval(), device="cpu"), pairs)
        wise_row = {"alpha": wise_alpha, "after": wise_after, "gain": wise_after - before}
        print(f"  WiSE-FT alpha {wise_alpha:g}: {wise_after:.2f} dB ({wise_after - before:+.2f})", flush=True)
    return {"camera": CAMERAS[camera], "phase": phase, "trained_on": [p.name for p in train],
            "scored": [n.name for n, _ in score], "before": before, "after": after, "gain": after - before,
            "curve": curve, "steps": res.steps, "calibration_cpu_minutes": round(calibration_cpu, 2),
            "wall_s": round(time.time() - t0), "strength_gain": card.training.get("strength_gain"),
            "method": card.training.get("method"), "val_before": res.val_before, "val_after": res.val_after,
            "wise": wise_row, "base_expert": expert_rows}


GAUSSIAN_CHECK = (("Kodak24", 6), (50.0, 100.0))  # first images of the set, sigmas (DESIGN.md protocol, seeded)


def heavy_check(tuned_path: Path, base_path: Path, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The fine-tuned model alone and with its base's heavy-noise expert (as the app runs it), on the
    camera's scored photos and on heavy Gaussian noise (what a photo noisier than the folder's meets), with the
    base itself for reference; all at Auto strength."""
    from denoiser.core.inference.engine import Denoiser

    paired = Denoiser.from_file(tuned_path, device="cpu")  # with its base's expert, as the app runs it
    if paired.heavy is None:
        raise SystemExit(f"{base_path}: no heavy-noise expert beside the base to check with")
    alone = Denoiser.from_file(tuned_path, device="cpu")
    alone.heavy = None
    base = Denoiser.from_file(base_path, device="cpu")
    engines = {"tuned": alone, "tuned+base expert": paired, "base": base}
    out = {"camera": {k: app_score(e, pairs) for k, e in engines.items()}}
    (name, count), sigmas = GAUSSIAN_CHECK
    test = DATA.parent / "test" / name
    clean = [load_eval_image(p) for p in sorted(test.glob("*.png"))[:count]]
    for sigma in sigmas:
        noisy = [c + np.random.default_rng(i).normal(0, sigma / 255, c.shape).astype(np.float32)
                 for i, c in enumerate(clean)]
        out[f"{name}[:{count}] sigma {sigma:g}"] = {k: app_score(e, list(zip(noisy, clean, strict=True)))
                                                    for k, e in engines.items()}
    for key, row in out.items():
        print(f"  {key}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    return out


def bank_fidelity(camera: str, phase: str, base: str | None) -> dict:
    """The bank noisy mode cuts from the training photos against the true noise (noisy - reference) of the scored
    photos in their flattest windows, both relative to Auto's map: per-channel std and autocorrelation at lags 1
    and 3 (right, down). Shows how much of the camera's noise the base's residual at Auto captures."""
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.model.registry import find_model
    from denoiser.core.noise.learned import auto_map
    from denoiser.core.noise.level import NoiseLevel
    from denoiser.core.training.calibration import CALIBRATION_SIDE, flat_windows, relative_residual
    from denoiser.core.training.noise_bank import BANK_SIDE, FLAT_FRACTION, NoiseBank, autocorrelation
    from denoiser.core.training.selfsup import bank_photos

    train, score = split(camera, phase)
    engine = Denoiser.from_file(find_model(base).path, device="cpu")
    bank = NoiseBank.build(bank_photos(train, CALIBRATION_SIDE),
                           lambda img, level: engine.denoise(img, NoiseLevel.auto(level)), auto_map)
    true = []
    for noisy_path, gt_path in score:
        noisy, gt = load_eval_image(noisy_path), load_eval_image(gt_path)
        residual = relative_residual(noisy, gt, np.maximum(auto_map(noisy), np.float32(0.5)))
        cells = flat_windows(gt, BANK_SIDE, BANK_SIDE // 2)
        for _, y, x in cells[:max(1, int(len(cells) * FLAT_FRACTION))]:
            crop = residual[y:y + BANK_SIDE, x:x + BANK_SIDE]
            true.append(crop - crop.mean(axis=(0, 1)))

    def describe(crops: np.ndarray) -> dict:
        acf = autocorrelation(crops)
        c = len(acf) // 2
        return {"std_rgb": [round(float(v), 3) for v in crops.std(axis=(0, 1, 2))],
                "acf_right_1": round(float(acf[c, c + 1]), 3), "acf_down_1": round(float(acf[c + 1, c]), 3),
                "acf_right_3": round(float(acf[c, c + 3]), 3), "acf_down_3": round(float(acf[c + 3, c]), 3)}

    return {"camera": CAMERAS[camera], "phase": phase, "crops": len(bank.crops), "ops": len(bank.ops),
            "bank": describe(bank.crops.permute(0, 2, 3, 1).numpy()),
            "true": describe(np.stack(true).astype(np.float32))}


def table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(f"\n{r['camera']} ({r['phase']}): trained on {len(r['trained_on'])} photos, scored on "
                     f"{len(r['scored'])} others; default model with Auto {r['before']:.2f} dB; noise measurement "
                     f"before the budget {r['calibration_cpu_minutes']:.2f} CPU-min")
        lines.append(f"{'minutes':>8} {'CPU-min':>8} {'steps':>6} {'before':>7} {'after':>7} {'gain':>6} "
                     f"{'dB/CPU-min':>10}")
        for c in r["curve"]:
            per = c["gain"] / c["cpu_minutes"] if c["cpu_minutes"] > 0 else float("nan")
            lines.append(f"{c['minutes']:8.2f} {c['cpu_minutes']:8.2f} {c['step']:6d} {r['before']:7.2f} "
                         f"{c['after']:7.2f} {c['gain']:+6.2f} {per:+10.3f}")
        if r.get("wise"):
            w = r["wise"]
            lines.append(f"  the end's model blended with the base (WiSE-FT, alpha {w['alpha']:g}): "
                         f"{w['after']:.2f} dB ({w['gain']:+.2f})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", default="t3i,dglr,nam25")
    ap.add_argument("--phase", choices=("tune", "report"), default="report")
    ap.add_argument("--marks", default="1,2,4,8", help="budget minutes to score at; the run's budget is the last")
    ap.add_argument("--base", default=None, help="model to fine-tune (default: the shipped one)")
    ap.add_argument("--tag", default="", help="results file suffix")
    ap.add_argument("--lr", type=float, help="try another learning rate (default: the shipped setting)")
    ap.add_argument("--distill-weight", type=float, help="try another noisy-mode distillation weight")
    ap.add_argument("--noise-source", choices=("synthetic", "real", "both"),
                    help="the noise noisy mode's restoring term adds (default: the shipped setting)")
    ap.add_argument("--teacher-passes", type=int, choices=(1, 2, 4, 8),
                    help="views of the base's self-ensemble that make noisy mode's targets (default: shipped)")
    ap.add_argument("--r2r", type=float, nargs=2, metavar=("SHARE", "ALPHA"),
                    help="share of noisy mode's batch trained recorrupted-to-recorrupted, and its alpha")
    ap.add_argument("--expert-check", action="store_true",
                    help="also score the tuned model with its base's heavy-noise expert, and on heavy Gaussian noise")
    ap.add_argument("--wise", type=float, help="also score the end's model blended with the base at this weight")
    ap.add_argument("--bank-check", action="store_true",
                    help="only compare the real-noise bank with the true noise of the scored photos")
    ap.add_argument("--oracle", nargs="?", const="both", choices=("both", "noise", "target"),
                    help="train on the training photos' references instead (the ceiling of any noise model); "
                         "noise/target: make only that part true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.bank_check:
        checks = [bank_fidelity(c.strip(), args.phase, args.base) for c in args.cameras.split(",")]
        print(json.dumps(checks, indent=1))
        atomic_write_bytes(RESULTS / f"finetune_camera_bank_{args.phase}.json", json.dumps(checks, indent=2).encode())
        return 0
    marks = sorted(float(m) for m in args.marks.split(","))
    work = Path(tempfile.mkdtemp(prefix="ft-camera-"))
    os.environ["DENOISER_DATA_DIR"] = str(work / "data")  # the user data folder: models and runs go there
    settings = override(args.lr, args.distill_weight, args.noise_source, args.teacher_passes, args.r2r) | \
        ({"oracle": True if args.oracle == "both" else args.oracle} if args.oracle else {})
    print(f"settings: {settings}", flush=True)
    out = RESULTS / f"finetune_camera{'_' + args.tag if args.tag else ''}.json"
    rows: list[dict] = []

    def save(partial: dict | None = None) -> None:  # after every mark, so a stopped run keeps its figures
        payload = {"phase": args.phase, "marks": marks, "threads": 1, "load_average": os.getloadavg(),
                   "cpu": os.cpu_count(), "torch": torch.__version__, "base": args.base or "default",
                   "date": time.strftime("%Y-%m-%d"), "settings": settings,
                   "rows": rows + ([partial] if partial else [])}
        atomic_write_bytes(out, json.dumps(payload, indent=2).encode())

    try:
        for camera in args.cameras.split(","):
            rows.append(run_camera(camera.strip(), args.phase, marks, args.base, work, save, args.wise, args.oracle,
                                   args.expert_check))
            save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    print(f"\n-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
