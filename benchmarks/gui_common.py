"""Shared set-up for the window benchmarks: a large noisy test photo, a model in an isolated data folder,
and a real MainWindow with throw-away settings."""
from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as denoiser.gui.app does, before numpy loads

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "datasets" / "test" / "Kodak24"
FALLBACK_MODEL = Path("/work/runs/default1/default.safetensors")


def make_photo(megapixels: float, seed: int = 0, folder: Path | None = None) -> Path:
    """kodim01 scaled up to `megapixels` (3:2) plus Gaussian noise sigma 15, as a JPEG (cached in /tmp)."""
    import cv2
    import numpy as np

    folder = folder or Path(tempfile.gettempdir())
    path = folder / f"gui-bench-{megapixels:g}mp-s{seed}.jpg"
    if path.is_file():
        return path
    w = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    h = int(round(w / 1.5))
    src = cv2.imread(str(KODAK / "kodim01.png"))
    if src is None:
        raise SystemExit(f"missing {KODAK / 'kodim01.png'}")
    big = cv2.resize(src, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    big += np.random.default_rng(seed).normal(0, 15, big.shape).astype(np.float32)
    cv2.imwrite(str(path), np.clip(big, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


def model_env(model: Path | None) -> str:
    """Isolated data folder; without a shipped default model, a temporary resources folder holding the
    given (or latest training run's) model as `default`, so the window looks as it will when shipped."""
    os.environ["DENOISER_DATA_DIR"] = tempfile.mkdtemp(prefix="gui-bench-data-")
    shipped = REPO / "resources" / "models" / "default.safetensors"
    if model is None and shipped.is_file():
        return "default"
    src = model or FALLBACK_MODEL
    if not src.is_file():
        raise SystemExit(f"no model: pass --model PATH (tried {shipped} and {FALLBACK_MODEL})")
    res = Path(tempfile.mkdtemp(prefix="gui-bench-res-"))
    (res / "models").mkdir()
    (res / "icons").symlink_to(REPO / "resources" / "icons")
    for f in (src, src.with_suffix(".json")):
        if f.is_file():
            shutil.copy(f, res / "models" / f"default{f.suffix}")
    os.environ["DENOISER_RESOURCES"] = str(res)
    return "default"


def make_window(threads: int):
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch
    from PySide6.QtCore import QSettings

    torch.set_num_threads(threads)  # the machine is shared; see the printed figure
    sys.path.insert(0, str(REPO))
    from denoiser.gui.app import create_application
    from denoiser.gui.main_window import MainWindow

    app = create_application()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, interactive=False)
    window.failed.connect(lambda text: (print(f"error: {text}", file=sys.stderr), app.exit(1)))
    return app, window


def wait_for(app, signal, timeout_s: float = 1800) -> list:
    """Run the event loop until `signal` fires; returns its arguments."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, got = QEventLoop(), []
    signal.connect(lambda *args: (got.extend(args), loop.quit()))
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    start = time.monotonic()
    loop.exec()
    if not got and time.monotonic() - start >= timeout_s - 1:
        raise SystemExit(f"timed out after {timeout_s:.0f} s")
    return got


def pump(app, seconds: float) -> None:
    """Process events for `seconds` (e.g. so a result gets painted)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


class Ticker:
    """A 10 ms timer on the GUI thread; the gaps between its ticks show how long the GUI thread was busy."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import QTimer

        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))

    def start(self) -> None:
        self.times = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        self.times.append(time.perf_counter())
        gaps = sorted(b - a for a, b in itertools.pairwise(self.times))
        return {"ticks": len(gaps), "max_ms": gaps[-1] * 1000, "p99_ms": gaps[int(len(gaps) * 0.99)] * 1000,
                "over_50ms": sum(g > 0.05 for g in gaps)}
