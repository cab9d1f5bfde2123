"""Write the ONNX export of Auto's noise estimator beside its weights (core.noise.learned.export_shipped_onnx):
Auto then compiles it directly instead of exporting the network in every process (~0.8 s of each start).

    python packaging/export_estimator.py [--weights resources/models/estimator.safetensors]
      -> resources/models/estimator.onnx (needs onnx)
"""
from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from denoiser.core.noise.learned import export_shipped_onnx

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=ROOT / "resources" / "models" / "estimator.safetensors")
    args = ap.parse_args()
    out = args.weights.with_suffix(".onnx")
    meta = export_shipped_onnx(args.weights, out)
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB, {meta}")


if __name__ == "__main__":
    main()
