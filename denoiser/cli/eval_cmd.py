"""`denoiser eval`: PSNR/SSIM and speed on synthetic Gaussian noise or real noisy/clean pairs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from denoiser.cli.common import add_model_options, add_precision_option, fail, load_denoiser, non_negative_int
from denoiser.exit_codes import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure PSNR/SSIM and s/MP of a model")
    p.add_argument("folder", nargs="?", type=Path, help="clean images (synthetic Gaussian noise is added)")
    p.add_argument("--sigma", default="15,25,50", help="comma-separated noise levels (default 15,25,50)")
    p.add_argument("--blind", action="store_true", help="do not tell the model sigma: estimate it (auto)")
    p.add_argument("--noisy", type=Path, help="real noisy images (with --clean: same file names)")
    p.add_argument("--clean", type=Path, help="clean references for --noisy")
    p.add_argument("--limit", type=non_negative_int, default=0, help="use only the first N images (default 0: all)")
    p.add_argument("--json", type=Path, help="also write the results as JSON (a new .json file)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file (never an input)")
    add_model_options(p)
    add_precision_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from denoiser.core.evaluation.evaluate import evaluate_pairs, evaluate_synthetic

    if bool(args.noisy) != bool(args.clean) or bool(args.noisy) == bool(args.folder):
        fail("eval", "give either FOLDER (synthetic noise) or both --noisy DIR and --clean DIR")
        return ExitCode.USAGE
    try:
        sigmas = [float(s) for s in args.sigma.split(",") if s.strip()]
    except ValueError:
        fail("eval", f"--sigma must be comma-separated numbers, got {args.sigma!r}")
        return ExitCode.USAGE
    if args.json:
        from denoiser.core.files import OutputFileError, check_output_file

        inputs = tuple(p for p in (args.folder, args.noisy, args.clean) if p is not None)
        try:  # before the model loads: a bad --json never costs the run
            check_output_file(args.json, args.overwrite, inputs, suffixes=(".json",))
        except OutputFileError as exc:
            fail("eval", f"--json {exc}")
            return ExitCode.USAGE
    denoiser = load_denoiser(args, "eval")
    if denoiser is None:
        return ExitCode.USAGE

    def fn(img, sigma):
        return denoiser.denoise(img, sigma, passes=args.passes)

    results = []
    try:
        if args.noisy:
            results.append(evaluate_pairs(fn, args.noisy, args.clean, limit=args.limit))
        else:
            for sigma in sigmas:
                results.append(evaluate_synthetic(fn, args.folder, sigma, blind=args.blind, limit=args.limit))
    except (ValueError, OSError) as exc:
        fail("eval", str(exc))
        return ExitCode.FAILED
    print(f"model {denoiser.model_name} on {denoiser.device_name}, {denoiser.precision}")
    for notice in denoiser.notices:
        fail("eval", notice)
    for r in results:
        print(r.row())
    if args.json:
        from denoiser.core.files import OutputFileError, atomic_write_bytes

        try:
            atomic_write_bytes(args.json, json.dumps([dict(vars(r)) for r in results], indent=2).encode(),
                               overwrite=args.overwrite)
        except (OutputFileError, OSError) as exc:
            fail("eval", f"--json {exc}")
            return ExitCode.FAILED
    return ExitCode.OK
