"""Take docs/screenshot.png: the real window (run under a display, e.g. Xvfb) with a noisy Kodak photo
opened and denoised by the current model, captured from the screen.

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 python benchmarks/gui_screenshot.py [--image kodim23.png] [--sigma 25] [--out docs/screenshot.png]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gui_common import KODAK, REPO, make_window, model_env, pump, wait_for
from PySide6.QtCore import QPointF


def noisy_copy(name: str, sigma: float, seed: int = 1) -> Path:
    import cv2
    import numpy as np

    src = cv2.imread(str(KODAK / name)).astype(np.float32)
    noisy = src + np.random.default_rng(seed).normal(0, sigma, src.shape).astype(np.float32)
    out = Path("/tmp") / f"{Path(name).stem}-noisy-s{sigma:g}.png"
    cv2.imwrite(str(out), np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="kodim23.png")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--zoom", type=float, default=2.0)
    ap.add_argument("--center", type=float, nargs=2, default=(500.0, 250.0), help="image point in the middle")
    ap.add_argument("--mode", default="side", choices=["side", "split", "difference"])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("needs a display: run under Xvfb (see the docstring)")
    model = model_env(args.model)
    photo = noisy_copy(args.image, args.sigma)
    app, window = make_window(threads=2)
    window.resize(1440, 900)
    window.move(0, 0)
    window.show()
    wait_for(app, window.catalogue_loaded)
    window.controls.model_combo.setCurrentIndex(window.controls.model_combo.findData(model))
    window.open_path(photo)
    wait_for(app, window.photo_loaded)
    wait_for(app, window.noise_estimated)
    window.compare.set_mode(args.mode)
    window.compare.state.set_zoom(args.zoom)
    window.compare.state.set_center(QPointF(*args.center))
    window.denoise()
    wait_for(app, window.denoised)
    pump(app, 1.5)
    screen = window.screen()
    shot = screen.grabWindow(0).copy(window.frameGeometry())  # the real screen pixels, cropped to the window
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shot.save(str(args.out))
    print(f"saved {args.out} ({shot.width()}x{shot.height()}) from {photo} (sigma {args.sigma:g}), "
          f"estimated {window.photo.sigma:.1f}, run {window.result.seconds:.1f} s")
    window.close()


if __name__ == "__main__":
    main()
