"""`denoiser finetune DIR`: teach a model the user's own photos (clean or noisy), resumable."""
from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager
from typing import Iterator
from pathlib import Path

from denoiser.cli.progress import TerminalProgress
from denoiser.core.progress import Cancelled, CancelToken


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on a folder of your own photos",
                       description="Fine-tune on a folder of clean photos (synthetic noise at --sigma) or of "
                                   "noisy photos only (self-supervised). The result is a named model in your "
                                   "models folder; Ctrl+C stops with a checkpoint, --resume continues it.")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder of photos (subfolders included)")
    p.add_argument("--mode", choices=("clean", "noisy", "auto"), default="auto",
                   help="clean: low-noise photos; noisy: photos with the noise to remove; auto: suggest from "
                        "the folder's estimated noise level (default)")
    p.add_argument("--name", required=True, help="name of the new model")
    p.add_argument("--minutes", type=float, help="time budget (default 10, or none when --steps is given)")
    p.add_argument("--steps", type=int, default=0, help="step budget instead of (or as well as) minutes")
    p.add_argument("--from", dest="base", metavar="MODEL", help="model to start from (default: the shipped one)")
    p.add_argument("--sigma", type=float, help="clean mode: noise level 0..255 to train for (default 25); "
                   "noisy mode: the strength you found right for these photos, to be applied automatically")
    p.add_argument("--sample", type=Path, help="clean mode: a noisy photo to estimate the noise level from")
    p.add_argument("--resume", action="store_true", help="continue the stopped run named --name")
    p.add_argument("--discard", action="store_true", help="forget a stopped run named --name and start afresh")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from denoiser.core.finetune import FinetuneError, discard_run, finetune, suggest_mode

    minutes = args.minutes if args.minutes is not None else (0.0 if args.steps > 0 else 10.0)
    try:
        if args.discard:
            discard_run(args.name)
        mode = args.mode
        if mode == "auto" and not args.resume:
            s = suggest_mode(args.folder)
            mode = s.mode
            print(f"mode: {s.mode} ({s.reason}); choose --mode to override", file=sys.stderr)
        with TerminalProgress(f"fine-tuning {args.name}", delay=0) as bar, _ctrl_c_cancels(bar):
            res = finetune(args.folder, mode=mode, name=args.name, base_model=args.base, minutes=minutes,
                           steps=max(0, args.steps), device=args.device, resume=args.resume, progress=bar,
                           sigma=args.sigma, noisy_sample=args.sample, threads=args.threads)
    except Cancelled:
        print(f"denoiser finetune: stopped; continue with: denoiser finetune {args.folder} --name "
              f"{args.name!r} --resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("denoiser finetune: interrupted before the first checkpoint", file=sys.stderr)
        return 130
    except (FinetuneError, ValueError, OSError) as exc:
        print(f"denoiser finetune: {exc}", file=sys.stderr)
        return 2
    for path, reason in res.skipped.items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    fmt = lambda v: "n/a" if v is None else f"{v:.2f} dB"  # noqa: E731
    print(f"model {res.name!r} saved to {res.path}")
    print(f"{res.mode} mode, {res.steps} steps in {res.minutes:.1f} min; {res.val_metric} on held-out images: "
          f"{fmt(res.val_before)} -> {fmt(res.val_after)}")
    return 0


@contextmanager
def _ctrl_c_cancels(token: CancelToken) -> Iterator[None]:
    """First Ctrl+C asks the run to stop at the next step (it writes a checkpoint); a second one aborts."""
    def handler(signum: int, frame: object) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print("\nstopping after this step (Ctrl+C again to abort)...", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl+C alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
