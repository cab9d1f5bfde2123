"""--strength-scale: the strength as a scale on Auto's noise map (1.0 = Auto), shared by denoise and batch."""
from __future__ import annotations

import argparse
import math


def parse_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"strength scale must be a number such as 1.5, not {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"strength scale must be above 0 and at most 10, got {text}")
    return value


def add_strength_scale_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strength-scale", type=parse_scale, default=1.0, metavar="K",
                   help="with Auto: drive the model K times harder (or softer, K < 1) than the estimated noise "
                        "map; 1 = Auto (default)")


def scale_conflict(args: argparse.Namespace) -> str | None:
    """The message when --strength-scale is given with a fixed --strength (it scales Auto only), else None."""
    if args.strength is not None and args.strength_scale != 1.0:
        return (f"--strength-scale scales Auto's noise map; with a fixed --strength {args.strength:g}, "
                f"give the strength you want instead (e.g. --strength {args.strength * args.strength_scale:g})")
    return None
