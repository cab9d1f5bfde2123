"""`denoiser finetune DIR`: teach a model the user's own photos (clean or noisy), resumable."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoiser.cli.common import (
    Terminated,
    model_name,
    noise_level,
    positive_float,
    positive_int,
    signals_stop,
    stopped_status,
)
from denoiser.cli.progress import TerminalProgress
from denoiser.core.progress import Cancelled
from denoiser.exit_codes import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on a folder of your own photos",
                       description="Fine-tune on a folder of clean photos (synthetic noise at --sigma) or of "
                                   "noisy photos only (self-supervised). The result is a named model in your "
                                   "models folder; Ctrl+C stops with a checkpoint, --resume continues it.")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder of photos (subfolders included)")
    p.add_argument("--mode", choices=("clean", "noisy", "auto"), default="auto",
                   help="clean: low-noise photos; noisy: photos with the noise to remove; auto: suggest from "
                        "the folder's estimated noise level (default)")
    p.add_argument("--name", required=True, type=model_name, help="name of the new model")
    p.add_argument("--minutes", type=positive_float,
                   help="time budget (default 10, or none when --steps is given)")
    p.add_argument("--steps", type=positive_int, help="step budget instead of (or as well as) minutes")
    p.add_argument("--from", dest="base", metavar="MODEL", help="model to start from (default: the shipped one)")
    p.add_argument("--sigma", type=noise_level, help="clean mode: noise level 0..255 to train for (default 25); "
                   "noisy mode: the strength you found right for these photos, to be applied automatically")
    p.add_argument("--sample", type=Path, help="clean mode: a noisy photo to estimate the noise level from")
    p.add_argument("--resume", action="store_true", help="continue the stopped run named --name")
    p.add_argument("--discard", action="store_true", help="forget a stopped run named --name and start afresh")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps")
    p.add_argument("--threads", type=positive_int, help="CPU threads (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from denoiser.core.training.finetune import FinetuneError, discard_run, finetune, has_unfinished_run, suggest_mode

    minutes = args.minutes if args.minutes is not None else (0.0 if args.steps else 10.0)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # process-wide, so set here at the entry point
    received: list[int] = []
    try:
        if args.discard:  # discard-and-start-afresh completes or changes nothing: every check comes first
            from denoiser.core.model.store import runs_dir, validate_name

            name = validate_name(args.name)  # a finished model of this name: refused here, its run kept
            if not (runs_dir() / name).is_symlink() and not has_unfinished_run(name):
                raise FinetuneError(f"no stopped run named {args.name!r} to discard (--discard forgets a "
                                    "stopped run; `denoiser models delete` removes a finished model)")
            discard_run(args.name)
        mode = args.mode
        if mode == "auto" and not args.resume:
            s = suggest_mode(args.folder)
            mode = s.mode
            print(f"mode: {s.mode} ({s.reason}); choose --mode to override", file=sys.stderr)
        with TerminalProgress(f"fine-tuning {args.name}", delay=0) as bar, \
                signals_stop(bar, "stopping after this step (Ctrl+C again to abort)...") as received:
            res = finetune(args.folder, mode=mode, name=args.name, base_model=args.base, minutes=minutes,
                           steps=args.steps or 0, device=args.device, resume=args.resume, progress=bar,
                           sigma=args.sigma, noisy_sample=args.sample, threads=args.threads)
    except Cancelled:
        if has_unfinished_run(args.name):
            print(f"denoiser finetune: stopped; continue with: denoiser finetune {args.folder} --name "
                  f"{args.name!r} --resume", file=sys.stderr)
        else:
            print("denoiser finetune: stopped before the first checkpoint; nothing was kept", file=sys.stderr)
        return stopped_status(received)
    except KeyboardInterrupt as exc:
        print("denoiser finetune: interrupted before the first checkpoint", file=sys.stderr)
        return ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED
    except (FinetuneError, ValueError, OSError) as exc:
        print(f"denoiser finetune: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    for path, reason in res.skipped.items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} dB"

    print(f"model {res.name!r} saved to {res.path}")
    print(f"{res.mode} mode, {res.steps} steps in {res.minutes:.1f} min; {res.val_metric} on held-out images: "
          f"{fmt(res.val_before)} -> {fmt(res.val_after)}")
    return ExitCode.OK

