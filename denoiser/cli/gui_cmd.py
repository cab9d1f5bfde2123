"""`denoiser gui [IMAGE]`: open the desktop window (Qt is imported only when this runs)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop window")
    p.add_argument("image", nargs="?", type=Path, help="photo (or folder, for a batch) to open")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problem = display_problem()
    if problem:  # before Qt loads: its own message would blame a missing xcb-cursor library
        print(f"denoiser gui: {problem}", file=sys.stderr)
        return 2
    from denoiser.gui.app import main

    return main([str(args.image)] if args.image else [])


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """Why no window can open here, or "". On Linux and the BSDs Qt needs an X11 or Wayland display; with
    neither it aborts with "xcb-cursor0 is needed", which sends people hunting for a library. Qt platforms
    that need no display server (offscreen, vnc, eglfs...) are left alone."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return ""
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0]
    if qpa and qpa not in ("xcb", "wayland", "wayland-egl"):
        return ""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    wayland = env.get("WAYLAND_DISPLAY") or (runtime and Path(runtime, "wayland-0").exists())
    if env.get("DISPLAY") or wayland:
        return ""
    return ("no display found (DISPLAY and WAYLAND_DISPLAY are not set: an SSH session or a server?), so no "
            "window can open. Run it in a desktop session or with `ssh -X`, or use the command line: "
            "denoiser denoise PHOTO -o OUT")
