"""Batch throughput: photos per minute on a folder of 12 MP photos, overlapped decode vs a strictly
sequential loop, and resident memory after 1, 10 and 20 files (it must stay flat).

    python benchmarks/batch_throughput.py [--photos 20] [--sequential-photos 3] [--megapixels 12]
                                          [--threads 1] [--model NAME|PATH]

The photos are made from ../shared/datasets/train/photos (resized and cropped to 4:3, plus seeded
Gaussian noise, saved as JPEG q95) in /tmp/denoiser-batch-bench, once. Both loops use the same loaded
model; the sequential loop runs on the first --sequential-photos files only (a 12 MP photo takes
minutes on a shared 2-core CPU), the overlapped one on all of them. Besides the wall times, the script
sums the time spent decoding, denoising and saving, so the decode time the overlap hides is measured
directly (wall times drift when the machine is shared).
On a shared machine the wall times say more about the other load than about the loop, so each stage's
CPU time (of the thread that ran it) is measured too, and the idle-machine pace is derived from it:
sequential = decode + estimate + denoise + save; overlapped = max(denoise + save, decode + estimate).
Results go to benchmarks/results/batch_throughput.json.
"""
from __future__ import annotations

import os

# numpy's BLAS (used by the noise estimate) must not fight torch for the cores: set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import resource
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import torch

from denoiser.core.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT.parent / "shared" / "datasets" / "train" / "photos"
WORK = Path("/tmp/denoiser-batch-bench")
CHECKPOINTS = (1, 10, 20)


def make_photos(n: int, megapixels: float) -> tuple[Path, int, int]:
    """n noisy 4:3 JPEGs of about `megapixels`, cached between runs; (folder, width, height)."""
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5 / 16) * 16)
    h = w * 3 // 4
    folder = WORK / f"in-{n}x{w}x{h}"
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == n:
        return folder, w, h
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in SOURCES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for k in range(n):
        img = cv2.imread(str(sources[k % len(sources)]), cv2.IMREAD_COLOR)
        scale = max(w / img.shape[1], h / img.shape[0])
        size = (max(w, int(np.ceil(img.shape[1] * scale))), max(h, int(np.ceil(img.shape[0] * scale))))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        img = img[y0:y0 + h, x0:x0 + w].astype(np.float32)
        rng = np.random.default_rng(k)
        img += rng.standard_normal(img.shape, dtype=np.float32) * float(rng.uniform(10, 30))
        cv2.imwrite(str(folder / f"photo{k:02d}.jpg"), np.clip(img, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder, w, h


class Stage:
    """Wraps a function and sums the wall and CPU seconds of the calling thread spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds, self.cpu, self.calls, self.lock = fn, 0.0, 0.0, 0, threading.Lock()

    def __call__(self, *a, **kw):
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.fn(*a, **kw)
        finally:
            with self.lock:
                self.seconds += time.perf_counter() - start
                self.cpu += time.thread_time() - cpu
                self.calls += 1


def run_loop(folder: Path, out: Path, denoiser, prefetch: bool, count: int) -> dict:
    import denoiser.core.batch.runner as batch
    import denoiser.core.pipeline as pipeline  # where each photo is decoded and saved

    shutil.rmtree(out, ignore_errors=True)
    proc, rss, finished = psutil.Process(), {}, [0]

    def on_file(index: int, total: int, item) -> None:
        if item.status in ("done", "failed"):
            finished[0] += 1
            if finished[0] in CHECKPOINTS or finished[0] == count:
                rss[finished[0]] = round(proc.memory_info().rss / 2**20)
                print(f"  {finished[0]:2d} files, {item.seconds:6.1f} s last, RSS {rss[finished[0]]} MiB", flush=True)

    stages = {"decode": Stage(pipeline.load_photo), "estimate": Stage(denoiser.auto_strength),
              "denoise": Stage(denoiser.denoise_photo), "save": Stage(pipeline.save_photo)}
    pipeline.load_photo, pipeline.save_photo = stages["decode"], stages["save"]
    denoiser.auto_strength, denoiser.denoise_photo = stages["estimate"], stages["denoise"]
    try:
        include = tuple(sorted(p.name for p in folder.glob("*.jpg"))[:count])
        opts = batch.BatchOptions(input_dir=folder, output_dir=out, prefetch=prefetch, quality=95, include=include)
        start, cpu = time.perf_counter(), proc.cpu_times()
        result = batch.run_batch(opts, denoiser=denoiser, on_file=on_file)
        wall, cpu_end = time.perf_counter() - start, proc.cpu_times()
    finally:
        pipeline.load_photo, pipeline.save_photo = stages["decode"].fn, stages["save"].fn
        del denoiser.denoise_photo, denoiser.auto_strength
    busy = stages["denoise"].seconds + stages["save"].seconds
    n = max(1, len(result.done))
    cpu_s = cpu_end.user + cpu_end.system - cpu.user - cpu.system
    # On an idle machine the loop's pace is its critical path: everything in sequence, or, overlapped,
    # denoise + save while decode + estimate run on the spare core (when they are shorter).
    side = stages["decode"].cpu + stages["estimate"].cpu
    critical = stages["denoise"].cpu + stages["save"].cpu + (0.0 if prefetch else side)
    if prefetch:
        critical = max(critical, side)
    done = len(result.done)
    return {"photos": done, "wall_s": round(wall, 1), "photos_per_minute": round(60 * done / wall, 3),
            "seconds_per_photo": round(wall / max(1, done), 1),
            "failed": [f"{i.rel}: {i.reason}" for i in result.failed],
            **{f"{k}_s_per_photo": round(s.seconds / max(1, s.calls), 2) for k, s in stages.items()},
            **{f"{k}_cpu_s_per_photo": round(s.cpu / max(1, s.calls), 2) for k, s in stages.items()},
            "process_cpu_s_per_photo": round(cpu_s / n, 1),
            "idle_machine_photos_per_minute": round(60 * n / critical, 3) if critical else None,
            # time per photo the loop spent on anything but denoise+save: the decode+estimate it did not hide
            "unhidden_s_per_photo": round((wall - busy) / max(1, len(result.done)), 2),
            "rss_mib_after_files": {str(k): v for k, v in sorted(rss.items())},
            "peak_rss_mib_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def training_running() -> bool:
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "denoiser" in cmd and " train " in f" {cmd} " and p.pid != os.getpid():
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--sequential-photos", type=int, default=3)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 while training runs)")
    ap.add_argument("--model", default=None, help="model name or .safetensors (default: the shipped model)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch_throughput.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from denoiser.core.inference.engine import Denoiser

    folder, w, h = make_photos(args.photos, args.megapixels)
    denoiser = Denoiser.from_name(args.model, device="cpu")
    print(f"{args.photos} photos in {folder}, model {denoiser.model_name}, {denoiser.device_name}", flush=True)
    report = {
        "benchmark": "batch throughput (benchmarks/batch_throughput.py)",
        "photos": args.photos, "size": f"{w}x{h}", "megapixels": round(w * h / 1e6, 2),
        "format": "JPEG q95 in, JPEG q95 out (--format keep)",
        "model": denoiser.model_name, "device": denoiser.device_name, "torch_threads": args.threads,
        "decode_thread": "1 prefetch thread: decode + noise estimate (overlapped loop only)",
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "training_running_meanwhile": training_running(),
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name, prefetch, count in (("sequential", False, args.sequential_photos), ("overlapped", True, args.photos)):
        print(f"{name}:", flush=True)
        report[name] = run_loop(folder, WORK / f"out-{name}", denoiser, prefetch, count)
        print(f"  {json.dumps(report[name])}", flush=True)
        # partial results survive an interrupt
        atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode())
    seq, ovl = report["sequential"], report["overlapped"]
    report["gain_percent_wall"] = round(100 * (ovl["photos_per_minute"] / seq["photos_per_minute"] - 1), 1)
    report["gain_percent_idle_machine"] = round(100 * (ovl["idle_machine_photos_per_minute"]
                                                       / seq["idle_machine_photos_per_minute"] - 1), 1)
    report["decode_hidden_s_per_photo"] = round(seq["unhidden_s_per_photo"] - ovl["unhidden_s_per_photo"], 2)
    report["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    report["training_running_at_end"] = training_running()
    atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
