"""--strength-scale: the strength as a scale on Auto's noise map (1.0 = Auto), shared by denoise and batch.
The range and its check are core.noise.level's (SCALE_RANGE, check_scale), as the window's slider uses them."""
from __future__ import annotations

import argparse

from denoiser.core.noise.level import SCALE_RANGE, check_scale


def parse_scale(text: str) -> float:
    try:
        return check_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_strength_scale_option(p: argparse.ArgumentParser) -> None:
    lo, hi = SCALE_RANGE
    p.add_argument("--strength-scale", type=parse_scale, default=1.0, metavar="K",
                   help=f"with Auto: drive the model K times harder (or softer, K < 1) than the estimated noise "
                        f"map; {lo:g}..{hi:g}, 1 = Auto (default)")


def scale_conflict(args: argparse.Namespace) -> str | None:
    """The message when --strength-scale is given with a fixed --strength (it scales Auto only), else None."""
    if args.strength is not None and args.strength_scale != 1.0:
        return (f"--strength-scale scales Auto's noise map; with a fixed --strength {args.strength:g}, "
                f"give the strength you want instead (e.g. --strength {args.strength * args.strength_scale:g})")
    return None
