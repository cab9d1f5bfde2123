"""`denoiser denoise IMG... (-o OUT | --out-dir DIR)`: clean photos one by one."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from denoiser.cli.common import add_model_options, fail, load_denoiser, parse_strength
from denoiser.cli.progress import TerminalProgress

FORMATS = ("keep", "jpeg", "png", "tiff", "webp")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("denoise", help="denoise one or more photos")
    p.add_argument("images", nargs="+", type=Path, metavar="IMG")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="output file (one input only)")
    out.add_argument("--out-dir", type=Path, help="output folder: <stem>-denoised.<ext> per input")
    p.add_argument("--strength", type=parse_strength, default=None, metavar="auto|SIGMA",
                   help="noise level in 0..255 units, or auto (estimated per photo; default)")
    p.add_argument("--format", choices=FORMATS, default="keep", help="output format (default: as the input)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1..100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (never an input)")
    p.add_argument("--max-megapixels", type=float, default=250.0, help="refuse larger inputs (default 250)")
    add_model_options(p)
    p.set_defaults(func=run)


def _target(args: argparse.Namespace, photo, fmt: str) -> Path:
    from denoiser.core.photo import output_suffix

    if args.output:
        return args.output
    return args.out_dir / f"{photo.source.stem}-denoised{output_suffix(photo, fmt)}"


def run(args: argparse.Namespace) -> int:
    from denoiser.core.photo import PhotoError, check_target, load_photo, resolve_target, save_photo
    from denoiser.core.progress import Cancelled

    if args.output and len(args.images) > 1:
        fail("denoise", "-o/--output takes one input; use --out-dir for several")
        return 2
    if not 1 <= args.quality <= 100:
        fail("denoise", f"--quality must be in 1..100, got {args.quality}")
        return 2
    if args.out_dir and args.out_dir.exists() and not args.out_dir.is_dir():
        fail("denoise", f"{args.out_dir}: not a folder")
        return 2
    denoiser = load_denoiser(args, "denoise")
    if denoiser is None:
        return 2
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.images:
        try:
            t0 = time.perf_counter()
            photo = load_photo(path, max_megapixels=args.max_megapixels)
            target = resolve_target(photo, _target(args, photo, args.format), args.format)[1]
            check_target(photo, target, args.overwrite)  # the same refusal save_photo makes, before the work
            with TerminalProgress(path.name, delay=1.0) as bar:
                result, sigma = denoiser.denoise_photo(photo, args.strength, bar, args.passes)
            saved = save_photo(result, target, fmt=args.format, quality=args.quality, overwrite=args.overwrite)
            print(f"{path} -> {saved}  (noise level {sigma:.1f}, {time.perf_counter() - t0:.1f} s, "
                  f"{denoiser.device_name})")
        except (PhotoError, ValueError, OSError) as exc:
            fail("denoise", str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            failed += 1
        except Cancelled:
            fail("denoise", "cancelled")
            return 1
    for notice in denoiser.notices:
        fail("denoise", notice)
    return 1 if failed else 0
