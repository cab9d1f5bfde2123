"""Markdown table (and a plot) from benchmarks/results/peers.json, for the README.

    python benchmarks/make_table.py  -> prints the tables; writes docs/benchmark.png
Peers ran on the first N images of each set (N = their image count); ours is shown on exactly the same
images (from its per-image figures) and, separately, on the full sets. Each named run (peers.py --run NAME:
methods interleaved in one process) gets a table of its own, with its s/MP over all its Gaussian images.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "peers.json"
SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "models" / "default.safetensors"


def _params_of_shipped_model() -> float:
    """Millions of parameters of the shipped model, counted from the architecture on its card."""
    from denoiser.core.model.file import read_card
    from denoiser.core.model.network import build_model, count_parameters

    return count_parameters(build_model(read_card(SHIPPED).config)) / 1e6


NAMES = {"ours": f"**Ours** (U-Net, {_params_of_shipped_model():.1f} M params)",
         "ours-x2": "Ours, quality *Better* (`--passes 2`)",
         "ours-x4": "Ours, quality *High* (`--passes 4`)", "ours-x8": "Ours, quality *Best* (`--passes 8`)",
         "ours-int8": "Ours, quality *Fast* (INT8, `--precision int8`)",
         "ffdnet": "FFDNet (published weights)",
         "nlm": "OpenCV fastNlMeansDenoisingColored", "bm3d": "CBM3D (`bm3d` package)",
         "ffdnet-cal": "FFDNet driven by our calibrated Auto"}
RUN_NAMES = {"ours": "Ours fp32 (quality *Standard*)", "ours-int8": "Ours INT8 (quality *Fast*)",
             "ffdnet": "FFDNet (published weights)"}  # rows of a named run's table
COLUMNS = [("CBSD68", 15), ("CBSD68", 25), ("CBSD68", 50), ("Kodak24", 15), ("Kodak24", 25), ("Kodak24", 50),
           ("McMaster", 15), ("McMaster", 25), ("McMaster", 50), ("Nam25", "real")]


def subset(entry: dict, n: int) -> float:
    return float(np.mean([p["psnr"] for p in entry["per_image"][:n]]))


def main() -> None:
    res = json.loads(RESULTS.read_text())
    def get(m: str, s: str, sig: object) -> dict | None:
        return res.get(f"{m}|{s}|{sig}")

    labels = (f"{s} {'σ' + str(g) if g != 'real' else 'real'}" for s, g in COLUMNS)
    head = "| method | " + " | ".join(labels) + " | s/MP |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for m in ("ours", "ours-x2", "ours-x4", "ours-x8", "ffdnet", "nlm", "bm3d"):  # ffdnet-cal: CHANGELOG 0.1.0
        cells, speeds = [], []
        for s, g in COLUMNS:
            e = get(m, s, g)
            if e is None:
                cells.append("–")
                continue
            n = e["images"]
            speeds.append(e["s_per_mp"])
            if m.startswith("ours"):
                peer = next((get(p, s, g) for p in ("ffdnet", "nlm") if get(p, s, g)), None)
                n = peer["images"] if peer else n
                cells.append(f"{subset(e, n):.2f}")
            else:
                cells.append(f"{e['psnr']:.2f}")
        if any(c != "–" for c in cells):
            lines.append(f"| {NAMES[m]} | " + " | ".join(cells) + f" | {np.median(speeds):.2f} |")
    b = [get("bm3d", s, g) for s, g in COLUMNS if get("bm3d", s, g)]
    if b:
        n = b[0]["images"]
        ours_b = [get("ours", s, g) for s, g in COLUMNS if get("bm3d", s, g) and get("ours", s, g)]
        lines.append("")
        lines.append(f"CBM3D is slow, so it ran on the first {n} images of each set at σ 25 and Nam25; on those "
                     "same images: " + ", ".join(
                         f"{e['set']} CBM3D {e['psnr']:.2f} vs ours {subset(o, n):.2f}"
                         for e, o in zip(b, ours_b, strict=False)) + ".")
    full = [get("ours", s, g) for s, g in COLUMNS if get("ours", s, g)]
    if full:
        lines.append("")
        lines.append("Ours on the full sets: " + ", ".join(
            f"{e['set']} {('σ' + str(e['sigma'])) if e['sigma'] != 'real' else 'real'} {e['psnr']:.2f} dB "
            f"({e['images']} images)" for e in full) + ".")
    print("\n".join(lines))
    for run in sorted({k.partition("/")[0] for k in res if "/" in k}):
        print()
        print("\n".join(run_table(res, run)))
    plot(res, Path(__file__).resolve().parents[1] / "docs" / "benchmark.png")


def run_table(res: dict, run: str) -> list[str]:
    """One named run's table: PSNR per set and sigma, Nam25, and s/MP over all of the method's Gaussian images
    (total seconds / total megapixels); methods in the order they ran."""
    entries = {k.partition("/")[2]: e for k, e in res.items() if k.startswith(run + "/")}
    methods = list(dict.fromkeys(e["method"] for e in entries.values()))
    sets = list(dict.fromkeys(s for s, g in COLUMNS if g != "real"))
    any_e = next(iter(entries.values()))
    loads = [e["load"][0] for e in entries.values() if e.get("load")]
    lines = [f"Run `{run}`: {any_e['threads']} thread(s), {any_e['date'][:10]}, load average "
             f"{min(loads, default=0):.1f}–{max(loads, default=0):.1f}; images: " + ", ".join(
                 f"{s} {entries[f'{methods[0]}|{s}|15']['images']}" for s in sets if f"{methods[0]}|{s}|15" in entries),
             "",
             "| method | " + " | ".join(f"{s} σ15/25/50" for s in sets) + " | Nam25 real | s/MP |",
             "|---|" + "---|" * (len(sets) + 2)]
    speeds: dict[str, float] = {}
    for m in methods:
        cells, seconds, megapixels = [], 0.0, 0.0
        for s in sets:
            row = [entries.get(f"{m}|{s}|{g}") for g in (15, 25, 50)]
            cells.append(" / ".join("–" if e is None else f"{e['psnr']:.2f}" for e in row))
            for e in filter(None, row):
                if e.get("per_image"):
                    t = sum(p["seconds"] for p in e["per_image"])
                    seconds, megapixels = seconds + t, megapixels + t / e["s_per_mp"]
                else:  # an entry kept without per-image figures: its set's megapixels and its s/MP
                    seconds, megapixels = seconds + e["s_per_mp"] * e["megapixels"], megapixels + e["megapixels"]
        real = entries.get(f"{m}|Nam25|real")
        cells.append("–" if real is None else f"{real['psnr']:.2f}")
        if megapixels:
            speeds[m] = seconds / megapixels
        speed = f"{speeds[m]:.2f}" if m in speeds else "–"
        lines.append(f"| {RUN_NAMES.get(m, NAMES.get(m, m))} | " + " | ".join(cells) + f" | {speed} |")
    if len(speeds) > 1:
        first = next(iter(speeds))
        lines += ["", f"Times as fast as {RUN_NAMES.get(first, first)}, in the same run: " + ", ".join(
            f"{RUN_NAMES.get(m, m)} {speeds[first] / v:.2f}×" for m, v in speeds.items() if m != first) + "."]
    return lines


PLOT_COLUMNS = [("CBSD68", 25), ("Kodak24", 25), ("McMaster", 25), ("Nam25", "real")]
PLOT_METHODS = [("ours", (230, 120, 30)), ("ffdnet", (60, 110, 200)), ("nlm", (120, 170, 90))]  # CBM3D: 2 images only


def plot(res: dict, out: Path) -> None:
    """Grouped bars, PSNR at sigma 25 and on Nam25, on the images each peer ran (ours on the same ones)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])  # pyqtgraph needs one alive
    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    widget = pg.PlotWidget(title="PSNR (dB) at σ 25 and on real camera noise (Nam25); ours on the peers' images")
    widget.addLegend(offset=(10, 10), colCount=3)
    width = 0.8 / len(PLOT_METHODS)
    low, high = 99.0, 0.0
    for k, (method, colour) in enumerate(PLOT_METHODS):
        xs, ys = [], []
        for i, (s, g) in enumerate(PLOT_COLUMNS):
            e = res.get(f"{method}|{s}|{g}")
            if e is None:
                continue
            if method == "ours":
                peer = next((res[f"{p}|{s}|{g}"] for p in ("ffdnet", "nlm") if f"{p}|{s}|{g}" in res), None)
                ys.append(subset(e, peer["images"] if peer else e["images"]))
            else:
                ys.append(e["psnr"])
            xs.append(i - 0.4 + width * (k + 0.5))
        if xs:
            low, high = min(low, *ys), max(high, *ys)
            widget.addItem(pg.BarGraphItem(x=xs, height=ys, width=width * 0.9, brush=pg.mkBrush(*colour),
                                           name=NAMES[method].replace("*", "")))
    widget.setYRange(max(0.0, low - 3), high + 3, padding=0)  # room for the legend above the bars
    axis = widget.getAxis("bottom")
    axis.setTicks([[(i, f"{s} σ{g}" if g != "real" else f"{s} (real)") for i, (s, g) in enumerate(PLOT_COLUMNS)]])
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    exporter = pyqtgraph.exporters.ImageExporter(widget.plotItem)
    exporter.parameters()["width"] = 1000
    exporter.export(str(tmp))
    tmp.replace(out)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
