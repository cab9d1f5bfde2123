"""Denoising synthetic raws: the joint raw model against today's path, a classical raw path and a peer demosaicker.

Each clean photo (Kodak24, McMaster) is unprocessed without clipping (inverse sRGB curve, inverse of a fixed,
mildly mixing colour matrix whose inverse has no negative entries, inverse white balance; no tone curve), mosaicked
at RGGB and given sensor noise of four levels (LEVELS: a full-frame and a phone sensor at ISO 800-12800,
noise.raw_synthesis.SensorModel), one fixed seed per photo and level. Every path's result is rendered the same
way (noise.camera.render: white balance, colour matrix, clip, sRGB curve) and scored by PSNR against the clean
photo itself, so demosaicing errors count as well as noise.

Paths
  joint        the joint raw model (inference.raw_model) with the noise model measured on the mosaic
               (SensorNoise.estimate, as the app runs it); joint_true: with the true (a, b)
  today        LibRaw's AHD demosaic of a CFA DNG (core.io.dng), rendered, then the shipped RGB model with Auto
  bm3d         BM3D (pip package `bm3d`, benchmark-only) on each CFA plane after the generalised Anscombe
               transform with the true (a, b), the Makitalo-Foi closed-form inverse, then the same AHD demosaic
  demosaicnet  Gharbi et al. 2016's pretrained Bayer network (pip `demosaicnet`, weights read with
               torch.load(weights_only=True)) on the noisy mosaic, white-balanced and sRGB-encoded as it was trained
  clean_ahd    the noise-free mosaic through the same AHD demosaic: what demosaicing alone loses

python benchmarks/raw_noise.py [--paths joint,today,...] [--model FILE] [--sets Kodak24,McMaster] [--every N]
    [--threads 2] [--out benchmarks/results/raw_noise.json]   (results merge into --out by path)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "test"
sys.path.insert(0, str(ROOT))

from denoiser.core.evaluation.metrics import psnr  # noqa: E402
from denoiser.core.noise.camera import add_sensor_noise, colour_matrix, mosaic, render, unprocess  # noqa: E402
from denoiser.core.noise.raw_synthesis import FULL_FRAME, PHONE  # noqa: E402
from denoiser.core.noise.sensor import SensorNoise  # noqa: E402

CAM2RGB = colour_matrix(np.array([[0, 0.30, 0.05], [0.15, 0, 0.25], [0.05, 0.35, 0]]))
WB = (2.0, 1.0, 1.6)
LEVELS = ((FULL_FRAME, 3200), (PHONE, 800), (FULL_FRAME, 12800), (PHONE, 3200))
PATHS = ("joint", "joint_true", "today", "bm3d", "demosaicnet", "clean_ahd")
BLACK, WHITE = 2048.0, 65535.0  # the CFA DNG's levels: negative noise down to -0.03 survives


def level_name(sensor, iso: int) -> str:
    return f"{sensor.name} ISO {iso}"


def images(sets: list[str], every: int) -> list[tuple[str, Path]]:
    out = []
    for name in sets:
        files = sorted(p for p in (DATA / name).iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff"))
        out += [(name, p) for p in files[::every]]
    return out


def load(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2])


# -- demosaicing --------------------------------------------------------------------------------------------
def ahd(cfa: np.ndarray) -> np.ndarray:
    """LibRaw's AHD on a CFA DNG of the mosaic; linear camera RGB, not white-balanced (negatives clipped)."""
    import rawpy

    from denoiser.core.io.dng import DngContent, write_dng
    from denoiser.core.io.raw import RawImage

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "synthetic.dng"
        raw = RawImage(path=Path(tmp) / "source", kind="bayer", cfa=cfa, pattern="RGGB", rgb=None,
                       black_level=(BLACK,) * 4, white_level=(WHITE,) * 4, wb=WB,
                       color_matrix1=np.linalg.inv(CAM2RGB) @ np.linalg.inv(_SRGB_TO_XYZ), illuminant1=21,
                       make="Synthetic", model="raw_noise", unique_camera_model="Synthetic raw_noise")
        write_dng(raw, DngContent(kind="cfa", pixels=cfa, noise_profile=((0.0, 0.0),)), src)
        with rawpy.imread(str(src)) as r:
            out = r.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, output_color=rawpy.ColorSpace.raw,
                                gamma=(1, 1), no_auto_bright=True, use_camera_wb=False, user_wb=[1, 1, 1, 1],
                                output_bps=16, user_flip=0, highlight_mode=rawpy.HighlightMode.Clip)
    return out.astype(np.float32) / 65535.0


_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


# -- paths ------------------------------------------------------------------------------------------------
def run_joint(model, noisy: np.ndarray, noise: SensorNoise) -> np.ndarray:
    from denoiser.core.inference.raw_model import denoise_demosaic

    return render(denoise_demosaic(model, noisy, "RGGB", WB, noise, tile=1024), CAM2RGB, WB)


def run_today(rgb_denoiser, noisy: np.ndarray) -> np.ndarray:
    developed = render(ahd(noisy), CAM2RGB, WB).astype(np.float32)
    return rgb_denoiser.denoise(developed, None)  # Auto


def _makitalo_foi(d: np.ndarray) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of the Anscombe transform (Makitalo & Foi 2011)."""
    d = np.maximum(d, 0.8)
    return 0.25 * d ** 2 + 0.25 * np.sqrt(1.5) / d - 1.375 / d ** 2 + 0.625 * np.sqrt(1.5) / d ** 3 - 0.125


def run_bm3d(noisy: np.ndarray, shot: float, read: float) -> np.ndarray:
    import bm3d

    out = np.empty_like(noisy)
    var_counts = read / shot ** 2  # read noise in photon units
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        counts = noisy[dy::2, dx::2] / shot
        d = 2.0 * np.sqrt(np.maximum(counts + 0.375 + var_counts, 0.0))
        den = bm3d.bm3d(d, sigma_psd=1.0)
        out[dy::2, dx::2] = (_makitalo_foi(den) - var_counts) * shot
    return render(ahd(out.astype(np.float32)), CAM2RGB, WB)


def demosaicnet_model() -> torch.nn.Module:
    """The package's network definition (its modules.py alone: the package's __init__ pulls dataset tools) and
    its pretrained Bayer weights, read as data."""
    import importlib.util

    spec = importlib.util.find_spec("demosaicnet")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("demosaicnet is not installed: pip install --no-deps demosaicnet")
    folder = Path(list(spec.submodule_search_locations)[0])
    sys.modules.setdefault("pkg_resources", types.SimpleNamespace(resource_filename=lambda *a: ""))
    mod_spec = importlib.util.spec_from_file_location("demosaicnet_modules", folder / "modules.py")
    assert mod_spec is not None and mod_spec.loader is not None
    modules = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(modules)
    net = modules.BayerDemosaick(pretrained=False, pad=True)
    net.load_state_dict(torch.load(folder / "data" / "bayer.pth", map_location="cpu", weights_only=True))
    return net.eval()


def run_demosaicnet(net: torch.nn.Module, noisy: np.ndarray) -> np.ndarray:
    from denoiser.core.colour import linear_to_srgb, srgb_to_linear_signed

    gains = np.array([[WB[0], 1.0], [1.0, WB[2]]], np.float32)
    wb_cfa = noisy * np.tile(gains, (noisy.shape[0] // 2, noisy.shape[1] // 2))
    enc = linear_to_srgb(torch.from_numpy(wb_cfa)).numpy()
    p = 64  # reflect padding (even: keeps the phase); one more column on the left makes RGGB its G-R-B-G layout
    padded = np.pad(enc, ((p, p), (p + 1, p - 1)), mode="reflect")
    h, w = padded.shape
    site = np.zeros((3, h, w), np.float32)
    colour = np.array([[1, 0], [2, 1]])  # GRBG: G R / B G
    idx = np.tile(colour, (h // 2, w // 2))
    for c in range(3):
        site[c][idx == c] = padded[idx == c]
    with torch.inference_mode():
        out = net(torch.from_numpy(site)[None])[0].numpy()
    out = out[:, p:p + noisy.shape[0], p + 1:p + 1 + noisy.shape[1]].transpose(1, 2, 0)
    lin = srgb_to_linear_signed(torch.from_numpy(np.ascontiguousarray(out))).numpy()
    return render(lin / np.asarray(WB, np.float32), CAM2RGB, WB)


# -- driver -----------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "models" / "raw.safetensors")
    ap.add_argument("--sets", default="Kodak24,McMaster")
    ap.add_argument("--every", type=int, default=1, help="every Nth photo of each set (a fixed subset)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "raw_noise.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = args.paths.split(",")
    unknown = set(paths) - set(PATHS)
    if unknown:
        ap.error(f"unknown paths {sorted(unknown)}; choose from {', '.join(PATHS)}")
    joint = rgb = dmn = None
    if {"joint", "joint_true"} & set(paths):
        from denoiser.core.inference.raw_model import load_raw_model

        joint = load_raw_model(args.model)
    if "today" in paths:
        from denoiser.core.inference.engine import Denoiser

        rgb = Denoiser.from_name("default", device="cpu", tile=1024)
    if "demosaicnet" in paths:
        dmn = demosaicnet_model()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
    rows = [r for r in results["rows"] if r["path"] not in paths]
    for set_name, file in images(args.sets.split(","), args.every):
        clean = load(file)
        raw = mosaic(unprocess(clean, CAM2RGB, WB))
        assert raw.min() >= 0 and raw.max() <= 1  # nothing clipped
        mp = raw.size / 1e6
        for j, (sensor, iso) in enumerate(LEVELS):
            shot, read = sensor.shot(iso), sensor.read(iso)
            seed = 10_000 * j + sum(map(ord, f"{set_name}/{file.name}"))
            noisy = add_sensor_noise(raw, shot, read, np.random.default_rng(seed))
            true = SensorNoise((shot,) * 4, (read,) * 4, "given")
            for path in paths:
                t0 = time.perf_counter()
                if path == "joint":
                    out = run_joint(joint, noisy, SensorNoise.estimate(noisy, "RGGB"))
                elif path == "joint_true":
                    out = run_joint(joint, noisy, true)
                elif path == "today":
                    out = run_today(rgb, noisy)
                elif path == "bm3d":
                    out = run_bm3d(noisy, shot, read)
                elif path == "demosaicnet":
                    out = run_demosaicnet(dmn, noisy)
                else:
                    out = render(ahd(raw), CAM2RGB, WB)
                secs = time.perf_counter() - t0
                rows.append({"set": set_name, "image": file.name, "level": level_name(sensor, iso), "path": path,
                             "psnr": round(psnr(clean, np.clip(out, 0, 1)), 3), "seconds": round(secs, 2),
                             "mp": round(mp, 4)})
                print(f"{set_name}/{file.name} {level_name(sensor, iso)} {path}: {rows[-1]['psnr']:.2f} dB "
                      f"{secs:.1f} s", flush=True)
        results = {"protocol": __doc__.split("\n\n")[1], "colour_matrix": CAM2RGB.round(4).tolist(), "wb": WB,
                   "levels": {level_name(s, iso): {"a": s.shot(iso), "b": s.read(iso)} for s, iso in LEVELS},
                   "sets": args.sets, "every": args.every, "threads": args.threads,
                   "model": str(args.model), "rows": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    print_table(results)


def summarise(results: dict, paths: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{level: {path: {psnr, s_per_mp, n}}} over the photos all of `paths` have at that level."""
    rows = [r for r in results["rows"] if r["path"] in paths]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for level in dict.fromkeys(r["level"] for r in rows):
        sel = [r for r in rows if r["level"] == level]
        common = set.intersection(*({(r["set"], r["image"]) for r in sel if r["path"] == p} for p in paths))
        table[level] = {}
        for path in paths:
            mine = [r for r in sel if r["path"] == path and (r["set"], r["image"]) in common]
            if mine:
                table[level][path] = {"psnr": round(float(np.mean([r["psnr"] for r in mine])), 2),
                                      "s_per_mp": round(sum(r["seconds"] for r in mine) / sum(r["mp"] for r in mine),
                                                        2), "n": len(mine)}
    return table


def print_table(results: dict) -> None:
    """One table over the photos every path but bm3d has, and one over bm3d's (smaller) subset."""
    present = [p for p in PATHS if any(r["path"] == p for r in results["rows"])]
    main = [p for p in present if p != "bm3d"]
    for paths in (main, present) if "bm3d" in present else (main,):
        table = summarise(results, paths)
        print("| level | " + " | ".join(paths) + " |")
        print("|---|" + "---|" * len(paths))
        for level, cols in table.items():
            n = max((c["n"] for c in cols.values()), default=0)
            print(f"| {level} (n={n}) | " + " | ".join(f"{cols[p]['psnr']:.2f}" if p in cols else "" for p in paths)
                  + " |")
        print("| s/MP | " + " | ".join(
            f"{np.mean([c[p]['s_per_mp'] for c in table.values() if p in c]):.1f}" for p in paths) + " |\n")


if __name__ == "__main__":
    main()
