"""Time start-up to a visible window: the bundled app against the unbundled one, same code path.

Both start the real window with `--exit-after-show` (denoiser.gui.app), which prints `SHOWN` once the main
window is exposed and painted, then quits. Start-up = time from just before spawning the process to reading
that line. Runs alternate bundled/unbundled; each run is printed, then the median (the first bundled run
is usually slower: a cold page cache for the bundle's libraries).

    python packaging/startup_time.py --bundle dist/photo-denoiser/photo-denoiser [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_once(command: list[str], timeout: float) -> float:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    with tempfile.TemporaryDirectory() as home:  # fresh settings and user data: a first start
        env.update(DENOISER_DATA_DIR=home, XDG_CONFIG_HOME=home, XDG_CACHE_HOME=home)
        start = time.time()
        proc = subprocess.Popen(command + ["--exit-after-show"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        shown_at = None
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith("SHOWN"):
                shown_at = time.time()
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError(f"{' '.join(command)} did not exit within {timeout:.0f} s") from None
    if proc.returncode != 0 or shown_at is None:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode} without showing a window:\n{err[-2000:]}")
    return shown_at - start


def report(label: str, command: list[str], times: list[float]) -> float:
    median = statistics.median(times)
    shown = ", ".join(f"{t:.2f}" for t in times)
    print(f"  {label:<10} median {median:5.2f} s   (runs: {shown} s)  {' '.join(command)}")
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="the bundled executable (omit to time only the unbundled app)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    print("Start-up to a visible window (offscreen Qt platform, fresh settings):")
    commands = {"unbundled": [sys.executable, "-m", "denoiser.gui.app"]}
    if args.bundle:
        commands["bundled"] = [str(args.bundle)]
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(args.runs):
        for label, command in commands.items():
            times[label].append(time_once(command, args.timeout))
    medians = {label: report(label, commands[label], times[label]) for label in commands}
    if args.bundle:
        print(f"  bundled/unbundled = {medians['bundled'] / medians['unbundled']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
