"""Can the folder's measured noise level tell a folder of clean photos from one of noisy photos? The fine-tune
window's clean/noisy suggestion (core.training.finetune.estimate_folder_sigma: the median classical estimate on
up to 5 centre crops, as the window samples a folder) on folders of 5 photos from clean and from really noisy
sets. The ranges it prints chose the window's UNSURE band (gui/dialogs/finetune_dialog.py): inside the overlap of
the clean and the noisy ranges the window says it cannot tell instead of choosing a mode.

python benchmarks/finetune_suggestion.py -> benchmarks/results/finetune_suggestion.json
"""
from __future__ import annotations

import json
from pathlib import Path

from denoiser.core.training.finetune import estimate_folder_sigma

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = {"CBSD68": ("clean", "test/CBSD68"), "Kodak24": ("clean", "test/Kodak24"),
        "McMaster": ("clean", "test/McMaster"), "Nam25 gt": ("clean", "real/Nam25/gt"),
        "RENOIR50 gt": ("clean", "real/RENOIR50/gt"), "Nam25 noisy": ("noisy", "real/Nam25/noisy"),
        "RENOIR50 noisy": ("noisy", "real/RENOIR50/noisy"), "RNI15": ("noisy", "real/RNI15")}
FOLDER, MAX_PHOTOS = 5, 40


def main() -> None:
    rows = {}
    for name, (kind, rel) in SETS.items():
        files = sorted(p for p in (DATA / rel).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".tif", ".bmp"))
        values = [round(estimate_folder_sigma(files[i:i + FOLDER])[0], 2)
                  for i in range(0, min(len(files), MAX_PHOTOS), FOLDER)]
        rows[name] = {"kind": kind, "folders": values}
        print(f"{name:15s} {kind:5s} {min(values):5.2f} .. {max(values):5.2f}  ({len(values)} folders of {FOLDER})")
    for kind in ("clean", "noisy"):
        vals = [v for r in rows.values() if r["kind"] == kind for v in r["folders"]]
        print(f"all {kind}: {min(vals):.2f} .. {max(vals):.2f}")
    out = Path(__file__).parent / "results" / "finetune_suggestion.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
