"""Whether a desktop window can open here: the one check the CLI's `denoiser gui` and the window's own
entry point (`denoiser-gui`) both make before Qt loads. Neither Qt nor the CLI nor the GUI is imported here,
so the GUI never needs the CLI for it."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path


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
