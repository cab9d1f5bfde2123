"""Do raw editors take our DNG as they take the original raw? Each file of ../shared/datasets/raw is denoised
into a linear DNG (the app's RAW→DNG path) and both are developed by darktable-cli and rawtherapee-cli at the
same settings, as 16-bit TIFF: darktable with its workflow preference "none" (no auto-applied exposure or
tone mapping: its default scene-referred pipeline treats a demosaiced raw differently from a mosaic, about
8 % brighter on the same data), RawTherapee with its neutral profile (no -p/-d). Compared: size and
orientation, the per-channel mean (colour and brightness, relative difference) on the common centre (RawTherapee
trims a 4-pixel demosaic border from a mosaic and none from a linear DNG), and the noise in flat areas (the
project's weak-texture PCA estimator, core.noise.estimation.estimate_sigma, on the developed images).

    .venv/bin/python benchmarks/raw_clients.py [--out benchmarks/results/raw_clients.json] [--dng linear|cfa]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "raw"
CLIENTS = ("darktable-cli", "rawtherapee-cli")


def develop(client: str, src: Path, out: Path, work: Path) -> np.ndarray | None:
    """Develop `src` to a 16-bit TIFF with the client's default raw settings; float 0..1 (H, W, 3) or None."""
    if client == "darktable-cli":
        cmd = [client, str(src), str(out), "--core", "--configdir", str(work / "dtconf"),
               "--conf", "plugins/imageio/format/tiff/bpp=16", "--conf", "plugins/darkroom/workflow=none"]
    else:
        cmd = [client, "-o", str(out), "-t", "-b16", "-Y", "-c", str(src)]
    subprocess.run(cmd, capture_output=True, timeout=600)
    if not out.is_file():
        return None
    img = tifffile.imread(out)
    return img[..., :3].astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)


def compare(orig: np.ndarray, ours: np.ndarray) -> dict[str, object]:
    from denoiser.core.noise.estimation import estimate_sigma

    row: dict[str, object] = {"size_orig": list(orig.shape[:2]), "size_dng": list(ours.shape[:2]),
                              "same_size": orig.shape == ours.shape}
    orig, ours = _centre(orig, ours.shape), _centre(ours, orig.shape)
    m_o, m_d = orig.reshape(-1, 3).mean(axis=0), ours.reshape(-1, 3).mean(axis=0)
    row["mean_orig"] = [round(float(v), 4) for v in m_o]
    row["mean_dng"] = [round(float(v), 4) for v in m_d]
    row["mean_diff_pct"] = [round(float(100 * (d - o) / max(o, 1e-6)), 2) for o, d in zip(m_o, m_d, strict=True)]
    row["noise_orig"] = round(float(estimate_sigma(orig)), 3)
    row["noise_dng"] = round(float(estimate_sigma(ours)), 3)
    return row


def _centre(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The centre of `img` no larger than `shape` in either dimension."""
    h, w = min(img.shape[0], shape[0]), min(img.shape[1], shape[1])
    y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[y:y + h, x:x + w]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "raw_clients.json")
    ap.add_argument("--dng", choices=("linear", "cfa"), default="linear")
    args = ap.parse_args()
    missing = [c for c in CLIENTS if not shutil.which(c)]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install darktable rawtherapee)", file=sys.stderr)
        return 2
    from denoiser import __version__
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.inference.raw_path import RawOptions, raw_to_dng

    engine = Denoiser.from_name(None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for src in sorted(DATA.iterdir()):
            dng = work / f"{src.stem}-denoised.dng"
            t0 = time.perf_counter()
            try:
                saved = raw_to_dng(src, dng, RawOptions(), engine, dng=args.dng)
            except ValueError as exc:  # a CFA DNG of an already linear raw
                print(f"{src.name}: {exc}")
                continue
            seconds = time.perf_counter() - t0
            for client in CLIENTS:
                orig = develop(client, src, work / f"{src.stem}-orig-{client}.tif", work)
                ours = develop(client, dng, work / f"{src.stem}-dng-{client}.tif", work)
                row = {"file": src.name, "client": client, "path": saved.path, "model": saved.model,
                       "noise_source": saved.noise.source, "dng_seconds": round(seconds, 2)}
                if orig is None or ours is None:
                    row["error"] = f"{client} could not develop the {'original' if orig is None else 'DNG'}"
                else:
                    row |= compare(orig, ours)
                rows.append(row)
                print(_line(row), flush=True)
    result = {"version": __version__, "dng": args.dng, "settings": "darktable-cli workflow=none, "
              "rawtherapee-cli neutral profile; 16-bit TIFF; means and noise on the common centre", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {args.out}")
    return 0


def _line(row: dict[str, object]) -> str:
    if "error" in row:
        return f"{row['file']:40s} {row['client']:16s} {row['error']}"
    diff = "/".join(f"{v:+.2f}" for v in row["mean_diff_pct"])  # type: ignore[union-attr]
    return (f"{row['file']:40s} {row['client']:16s} size {'same' if row['same_size'] else 'DIFFERS'} "
            f"{row['size_orig']} vs {row['size_dng']}  mean R/G/B {diff} %  "
            f"flat-area noise {row['noise_orig']:.2f} -> {row['noise_dng']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
