"""Launch -> main window on screen: time from starting the process until the window is exposed and painted.

Runs `python -m denoiser.gui.app --exit-after-show` several times (offscreen unless a display is set) and
prints the times. Target: <= 2 s. torch must not be imported by then (it loads on a worker afterwards).

    python benchmarks/gui_startup.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def one_launch(env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "denoiser.gui.app", "--exit-after-show"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("SHOWN"):
            shown = time.perf_counter() - start
            proc.wait(timeout=120)
            return shown, line.strip()
    proc.wait(timeout=120)
    raise SystemExit(f"the window never reported being shown (exit code {proc.returncode})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("DENOISER_DATA_DIR", tempfile.mkdtemp(prefix="gui-startup-"))
    times = []
    for i in range(args.runs):
        t, line = one_launch(env)
        times.append(t)
        print(f"run {i + 1}: window shown after {t:.2f} s ({line})")
    print(f"platform={env.get('QT_QPA_PLATFORM', 'default')} runs={len(times)} median={statistics.median(times):.2f} s "
          f"best={min(times):.2f} s worst={max(times):.2f} s (target <= 2 s)")
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
