"""`denoiser denoise IMG... (-o OUT | --out-dir DIR)`: clean photos one by one.

The files are planned as a batch is (core.batch.plan.plan_files: every input and output checked before the
model loads) and each photo is made by core.pipeline.process_photo, the path `batch`, the window and a
cluster worker share."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.cli.common import (
    DNG_HELP,
    add_control_options,
    add_memory_option,
    add_model_options,
    add_precision_option,
    controls_from,
    fail,
    load_denoiser,
    memory_limit,
    parse_quality,
    parse_strength,
    positive_float,
)
from denoiser.cli.progress import TerminalProgress
from denoiser.cli.strength import add_strength_scale_option, scale_conflict
from denoiser.core.io.formats import SAVE_FORMATS
from denoiser.core.progress import Cancelled
from denoiser.exit_codes import ExitCode

if TYPE_CHECKING:
    from denoiser.core.pipeline import EngineCache, PhotoOptions, PhotoTask, Prepared

log = logging.getLogger("denoiser.denoise")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("denoise", help="denoise one or more photos")
    p.add_argument("images", nargs="+", type=Path, metavar="IMG")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="output file (one input only)")
    out.add_argument("--out-dir", type=Path, help="output folder: <stem>-denoised.<ext> per input")
    p.add_argument("--strength", type=parse_strength, default=None, metavar="auto|SIGMA",
                   help="noise level in 0..255 units, or auto (estimated per photo; default)")
    add_strength_scale_option(p)
    p.add_argument("--format", choices=SAVE_FORMATS, default="keep", help="output format (default: as the input)")
    p.add_argument("--quality", type=parse_quality, default=95,
                   help="JPEG, WebP, HEIC and AVIF quality 1..100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (never an input)")
    p.add_argument("--max-megapixels", type=positive_float, default=250.0,
                   help="refuse larger inputs (default 250)")
    add_model_options(p)
    add_precision_option(p)
    add_memory_option(p)
    p.add_argument("--dng", choices=("linear", "cfa"), default="linear", help=DNG_HELP)
    add_control_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every input and output (and that the output folders take files) before torch, the model or
    any photo is loaded; then denoise the files one by one, each failure reported and the rest carried on."""
    from denoiser.core.batch.plan import FAILED, BatchError, plan_files
    from denoiser.core.files import write_problem
    from denoiser.core.io.photo import PhotoError, check_photo_header

    if scale_conflict(args):
        fail("denoise", scale_conflict(args))
        return ExitCode.USAGE
    if args.out_dir and args.out_dir.exists() and not args.out_dir.is_dir():
        fail("denoise", f"{args.out_dir}: not a folder; --out-dir takes a folder (use -o for one output file)")
        return ExitCode.USAGE
    try:
        plan = plan_files(args.images, args.format, args.overwrite, output=args.output, out_dir=args.out_dir)
    except BatchError as exc:
        fail("denoise", f"{exc} (-o takes one input; use --out-dir for several)")
        return ExitCode.USAGE
    for item in plan.items:
        if item.status == FAILED:
            fail("denoise", f"{item.source}: {item.reason}")
    for folder in sorted({item.output.parent for item in plan.todo}):
        problem = write_problem(folder)
        if problem:
            fail("denoise", f"{folder}: {problem}")
            return ExitCode.USAGE
    for item in plan.todo:  # empty, not an image, too many pixels, too much memory: before the model loads
        try:
            check_photo_header(item.source, args.max_megapixels, memory_limit(args))
        except PhotoError as exc:
            item.status, item.reason = FAILED, str(exc)
            fail("denoise", str(exc))
    if not plan.todo:
        return ExitCode.FAILED
    denoiser = load_denoiser(args, "denoise")
    if denoiser is None:
        return ExitCode.USAGE
    log.info("model %s on %s, tiles of %d px, %d pass(es)", denoiser.model_name or "?", denoiser.device_name,
             denoiser.tile, args.passes)
    from denoiser.core.pipeline import EngineCache

    engines = EngineCache()
    engines.put(denoiser, args.model, args.device, args.tile, args.precision)
    options = _photo_options(args)
    failed = len(plan.items) - len(plan.todo) + sum(not _one(options, engines, item.source, item.output)
                                                    for item in plan.todo)
    for notice in denoiser.notices:
        fail("denoise", notice)
    return ExitCode.FAILED if failed else ExitCode.OK


def _photo_options(args: argparse.Namespace) -> PhotoOptions:
    from denoiser.core.pipeline import PhotoOptions

    return PhotoOptions(fmt=args.format, quality=args.quality, strength=args.strength,
                        strength_scale=args.strength_scale, overwrite=args.overwrite, model=args.model,
                        device=args.device, tile=args.tile, passes=args.passes, controls=controls_from(args),
                        max_megapixels=args.max_megapixels, max_memory=memory_limit(args), dng=args.dng,
                        precision=args.precision)


def _one(options: PhotoOptions, engines: EngineCache, path: Path, target: Path) -> bool:
    """Denoise one photo into `target` (core.pipeline.process_photo); False (after one line on stderr) when
    it fails or another run holds it."""
    from denoiser.core.pipeline import DONE, PhotoTask, process_photo

    t0 = time.perf_counter()
    task = PhotoTask(path, target, str(path))
    try:
        prepared = _prepare(options, engines, task)
        t1 = time.perf_counter()
        with TerminalProgress(path.name, delay=1.0) as bar:
            result = process_photo(task, options, engines, bar, prepared)
    except Cancelled:
        fail("denoise", "cancelled")
        raise KeyboardInterrupt from None
    if result.status != DONE:
        fail("denoise", f"{path}: {result.reason}")
        return False
    if result.model_reason:
        print(f"{path}: {result.model_reason}")
    log.info("%s: denoised at strength %.2f in %.1f s", path, result.sigma, time.perf_counter() - t1)
    made = (f"removed detail {result.detail_score:.2f} %" if result.detail_score is not None
            else result.model)  # a raw's DNG: the model and path that made it
    print(f"{path} -> {result.output}  (noise level {result.sigma:.1f}, {time.perf_counter() - t0:.1f} s, "
          f"{result.device}; {made})")
    return True


def _prepare(options: PhotoOptions, engines: EngineCache, task: PhotoTask) -> Prepared:
    """Decode (and with Auto measure the noise map: seconds on a CPU, announced and timed on the terminal so a
    photo never sits silent); the photo's size and format are logged with -v."""
    from denoiser.core.pipeline import prepare

    t0 = time.perf_counter()
    prepared = prepare(task, options, engines, lambda: TerminalProgress(
        f"{task.source.name}: estimating the noise level (Auto)", delay=0.0, ticking=True))
    photo = prepared.photo
    if photo is not None:
        log.info("%s: %d x %d (%.1f MP), %s %d-bit%s, read%s in %.1f s", task.source, photo.width, photo.height,
                 photo.megapixels, photo.format, photo.bit_depth, ", alpha kept" if photo.alpha is not None else "",
                 " and measured" if prepared.level is not None else "", time.perf_counter() - t0)
    return prepared
