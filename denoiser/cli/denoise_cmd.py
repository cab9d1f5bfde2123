"""`denoiser denoise IMG... (-o OUT | --out-dir DIR)`: clean photos one by one."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from denoiser.cli.common import (add_control_options, add_model_options, controls_from, fail, load_denoiser,
                                 parse_quality, parse_strength, positive_float)
from denoiser.cli.common import add_memory_option, memory_limit
from denoiser.cli.progress import TerminalProgress
from denoiser.core.io.formats import SAVE_FORMATS
from denoiser.cli.strength import add_strength_scale_option, scale_conflict
from denoiser.core.progress import Cancelled
from denoiser.exit_codes import ExitCode

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
    p.add_argument("--quality", type=parse_quality, default=95, help="JPEG/WebP quality 1..100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (never an input)")
    p.add_argument("--max-megapixels", type=positive_float, default=250.0,
                   help="refuse larger inputs (default 250)")
    add_model_options(p)
    add_memory_option(p)
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
    chooser = _chooser(args, denoiser)
    failed = len(plan.items) - len(plan.todo) + sum(not _one(args, chooser, item.source, item.output)
                                                    for item in plan.todo)
    for notice in denoiser.notices:
        fail("denoise", notice)
    return ExitCode.FAILED if failed else ExitCode.OK


def _chooser(args: argparse.Namespace, denoiser):
    """Per-photo model choice: the pinned --model, or (auto) a camera profile matching the photo's EXIF."""
    from denoiser.core.inference.engine import open_denoiser
    from denoiser.core.model.profiles import ModelChooser

    return ModelChooser(args.model, lambda name: open_denoiser(name, args.device, tile=args.tile), first=denoiser)


def _one(args: argparse.Namespace, chooser, path: Path, target: Path) -> bool:
    """Denoise one photo into `target`; False (after one line on stderr) when it fails."""
    from denoiser.core.inference import controls as tone
    from denoiser.core.inference.detail_map import detail_report
    from denoiser.core.io.photo import PhotoError, check_target, load_photo, remove_stale_parts, save_photo

    try:
        t0 = time.perf_counter()
        photo = load_photo(path, max_megapixels=args.max_megapixels, max_memory=memory_limit(args))
        log.info("%s: %d x %d (%.1f MP), %s %d-bit%s, read in %.1f s", path, photo.width, photo.height,
                 photo.megapixels, photo.format, photo.bit_depth, ", alpha kept" if photo.alpha is not None else "",
                 time.perf_counter() - t0)
        target.parent.mkdir(parents=True, exist_ok=True)
        check_target(photo, target, args.overwrite)  # the same refusal save_photo makes, before the work
        denoiser, choice = chooser.for_exif(photo.exif)
        if choice.profile:
            print(f"{path}: {choice.reason}")
        sigma = args.strength if args.strength is not None else _auto_strength(args, denoiser, photo, path)
        t1 = time.perf_counter()
        with TerminalProgress(path.name, delay=1.0) as bar:
            result, sigma = tone.denoise_photo(denoiser, photo, sigma, controls_from(args), bar, args.passes)
        score = detail_report(photo.pixels, result.pixels).score
        result = tone.with_note(result, denoiser.model_name, sigma, args.passes, controls_from(args))
        log.info("%s: denoised at strength %.2f in %.1f s", path, sigma, time.perf_counter() - t1)
        for stale in remove_stale_parts([target]):
            log.info("removed %s, left by an interrupted run", stale)
        saved = save_photo(result, target, fmt=args.format, quality=args.quality, overwrite=args.overwrite)
        print(f"{path} -> {saved}  (noise level {sigma:.1f}, {time.perf_counter() - t0:.1f} s, "
              f"{denoiser.device_name}; removed detail {score:.2f} %)")
        return True
    except (PhotoError, ValueError, OSError) as exc:
        fail("denoise", str(exc) if str(path) in str(exc) else f"{path}: {exc}")
    except Cancelled:
        fail("denoise", "cancelled")
        raise KeyboardInterrupt from None
    return False


def _auto_strength(args: argparse.Namespace, denoiser, photo, path: Path) -> float:
    """Auto's estimate (and, for camera noise, its calibration: seconds on a CPU), announced and timed on
    the terminal so a photo never sits silent."""
    from denoiser.core.io.photo import PhotoError

    t0 = time.perf_counter()
    with TerminalProgress(f"{path.name}: estimating the noise level (Auto)", delay=0.0, ticking=True):
        try:
            sigma = denoiser.auto_strength(photo.pixels, scale=args.strength_scale)
        except ValueError as exc:
            hint = "" if "--strength" in str(exc) else "; give the strength yourself, e.g. --strength 15"
            raise PhotoError(f"{path}: Auto cannot measure the noise of a {photo.width} x {photo.height} photo "
                             f"({exc}){hint}") from None
    log.info("%s: Auto strength %.2f, found in %.1f s", path, sigma, time.perf_counter() - t0)
    return sigma
