"""Build the INT8 network shipped beside a model (core.inference.quantized), deterministically: calibration on
centre crops of every k-th training photo (sorted), white Gaussian noise at fixed levels and seeds.

    python packaging/build_int8.py [--model resources/models/default.safetensors] \
        [--data ../shared/datasets/train/CBSD432 --data ../shared/datasets/train/SunHays80 ...]
      -> resources/models/default.int8.onnx (needs onnx and onnxruntime)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "datasets" / "train"
CROPS, SIDE = 36, 160  # one size (the calibrator stacks them); CBSD432's photos load at 240x160


def main() -> None:
    import torch

    from denoiser.core.inference.quantized import build_int8, int8_path
    from denoiser.core.training.patches import centre_crop, list_images, load_rgb8

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "models" / "default.safetensors")
    ap.add_argument("--data", type=Path, action="append",
                    help="training photo folders (default: CBSD432, SunHays80, photos)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    folders = args.data or [TRAIN / "CBSD432", TRAIN / "SunHays80", TRAIN / "photos"]
    photos = sorted(list_images(folders))
    chosen = photos[::max(1, len(photos) // CROPS)][:CROPS]
    crops = [centre_crop(load_rgb8(p), SIDE).astype(np.float32) / 255 for p in chosen]
    crops = [c for c in crops if c.shape[:2] == (SIDE, SIDE)]
    out = int8_path(args.model)
    meta = build_int8(args.model, crops, out)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, {meta}")


if __name__ == "__main__":
    main()
