"""batch --cluster on Dask (core.batch.cluster): loopback only, tiny photos, a tiny model."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main

ROOT = Path(__file__).resolve().parents[2]
N_PHOTOS = 6


def _photos(folder: Path, n: int = N_PHOTOS, size: tuple[int, int] = (48, 64)) -> list[Path]:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
        clean = np.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * np.sin(6 * yy + k), 0.6 - 0.3 * yy], axis=2)
        noisy = np.clip(clean + rng.normal(0, 20 / 255, clean.shape), 0, 1)
        paths.append(folder / f"p{k}.png")
        Image.fromarray((noisy * 255 + 0.5).astype(np.uint8)).save(paths[-1])
    return paths


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.suffix in (".part", ".claim", ".tmp"))


def _report(path: Path) -> dict[str, dict]:
    return {r["file"]: r for r in json.loads(path.read_text())["files"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- workers: helpers run inside the worker processes (sent by value) ------------------------------------------

def _slow_photos(seconds: float) -> int:
    """Each photo on this worker takes at least `seconds` (so a test can kill a worker mid-photo)."""
    import denoiser.core.pipeline as pipeline

    real = getattr(pipeline, "_real_develop", pipeline.develop_raster)
    pipeline._real_develop = real

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    pipeline.develop_raster = slow
    return os.getpid()


def _set_version(version: str) -> str:
    import denoiser

    old, denoiser.__version__ = denoiser.__version__, version
    return old


def _other_model_bytes(on: bool) -> None:
    import denoiser.core.batch.cluster_worker as worker

    real = getattr(worker, "_real_digest", worker.model_digest)
    worker._real_digest = real
    worker.model_digest = (lambda model: "0" * 64) if on else real


def _other_expert_bytes(on: bool) -> None:
    import denoiser.core.batch.cluster_worker as worker

    real = getattr(worker, "_real_expert_digest", worker.expert_digest)
    worker._real_expert_digest = real
    worker.expert_digest = (lambda model: "1" * 64) if on else real


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     host="127.0.0.1")
    client = distributed.Client(local)
    yield local, client
    client.close()
    local.close()


def test_cluster_spec_refuses_nonsense_and_an_unreachable_scheduler_in_one_line(tmp_path, tiny_model, capsys):
    from denoiser.core.batch.cluster import ClusterError, ClusterSpec

    for bad in ("local:0", "local:x", "tcp://host", "tcp://:8786", ""):
        with pytest.raises(ClusterError, match="--cluster"):
            ClusterSpec.parse(bad)
    assert ClusterSpec.parse("10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    _photos(tmp_path / "in", 1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", tiny_model,
                 "--cluster", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and address in err[0] and "cannot reach the Dask scheduler" in err[0]
    assert not (tmp_path / "out").exists()  # refused before anything was planned or written


@pytest.mark.slow
def test_local_cluster_outputs_are_pixel_identical_to_a_local_batch(tmp_path, tiny_model, capsys):
    import torch

    _photos(tmp_path / "in")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each single-threaded worker runs
    try:
        assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "local"), "--model", tiny_model]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "dask"), "--model", tiny_model,
                 "--cluster", "local:2", "--report", str(tmp_path / "r.json")]) == 0
    assert "2 worker(s)" in capsys.readouterr().err
    for k in range(N_PHOTOS):
        a = np.asarray(Image.open(tmp_path / "local" / f"p{k}-denoised.png"))
        b = np.asarray(Image.open(tmp_path / "dask" / f"p{k}-denoised.png"))
        assert np.array_equal(a, b)
    rows = _report(tmp_path / "r.json")
    assert len(rows) == N_PHOTOS and all(r["status"] == "done" and r["strength_mode"] == "auto"
                                         for r in rows.values())
    assert _leftovers(tmp_path / "dask") == []


@pytest.mark.slow
def test_version_or_model_mismatch_is_refused_before_any_work(tmp_path, tiny_model, cluster, capsys):
    local, client = cluster
    _photos(tmp_path / "in", 2)
    args = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", tiny_model,
            "--cluster", local.scheduler_address]
    client.run(_set_version, "9.9.9")
    try:
        assert main(args) == 2
    finally:
        client.run(_set_version, __import__("denoiser").__version__)
    err = capsys.readouterr().err
    assert "another app version: 9.9.9 there" in err
    client.run(_other_model_bytes, True)
    try:
        assert main(args) == 2
    finally:
        client.run(_other_model_bytes, False)
    assert "another model file (SHA-256)" in capsys.readouterr().err
    client.run(_other_expert_bytes, True)  # the same model, another heavy-noise expert beside it
    try:
        assert main(args) == 2
    finally:
        client.run(_other_expert_bytes, False)
    assert "another heavy-noise expert (SHA-256): 111111" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_a_worker_killed_mid_photo_leaves_every_output_once(tmp_path, tiny_model, cluster, capsys):
    local, client = cluster
    _photos(tmp_path / "in")
    pids = client.run(_slow_photos, 1.5)
    out, report = tmp_path / "out", tmp_path / "r.json"
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(main([
        "batch", str(tmp_path / "in"), "-o", str(out), "--model", tiny_model, "--strength", "10",
        "--cluster", local.scheduler_address, "--report", str(report)])))
    run.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        busy = {w: keys for w, keys in client.processing().items() if any("photo-" in str(k) for k in keys)}
        victim = next(iter(busy), None)
        time.sleep(0.2)
    assert victim is not None, "no photo ever started on a worker"
    time.sleep(0.5)  # inside the photo's 1.5 s
    os.kill(pids[victim], signal.SIGKILL)
    run.join(timeout=300)
    assert not run.is_alive() and codes == [0], capsys.readouterr().err
    rows = _report(report)
    assert sorted(rows) == [f"p{k}.png" for k in range(N_PHOTOS)] and all(r["status"] == "done"
                                                                           for r in rows.values())
    assert sorted(p.name for p in out.iterdir()) == [f"p{k}-denoised.png" for k in range(N_PHOTOS)]
    for k in range(N_PHOTOS):
        Image.open(out / f"p{k}-denoised.png").load()  # complete files
    assert _leftovers(out) == []
    client.run(_slow_photos, 0.0)


@pytest.mark.slow
def test_two_concurrent_local_batches_make_each_photo_once(tmp_path, tiny_model):
    _photos(tmp_path / "in", 8, size=(160, 200))
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "denoiser", "batch", str(tmp_path / "in"), "-o",
                               str(tmp_path / "out"), "--model", tiny_model, "--report", str(tmp_path / f"{n}.json")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    a, b = _report(tmp_path / "a.json"), _report(tmp_path / "b.json")
    done_a = {f for f, r in a.items() if r["status"] == "done"}
    done_b = {f for f, r in b.items() if r["status"] == "done"}
    assert not done_a & done_b  # nobody redid the other's photo
    assert done_a | done_b == {f"p{k}.png" for k in range(8)}
    for rows, done in ((a, done_a), (b, done_b)):
        others = [r for f, r in rows.items() if f not in done]
        assert all(r["status"] == "skipped" and (r["reason"] == "output exists" or "another run" in r["reason"])
                   for r in others), others
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"p{k}-denoised.png" for k in range(8)]
    assert _leftovers(tmp_path / "out") == []


def test_without_cluster_dask_is_never_imported(tmp_path, tiny_model):
    _photos(tmp_path / "in", 1)
    code = ("import sys\nfrom denoiser.cli import main\n"
            f"rc = main(['batch', {str(tmp_path / 'in')!r}, '-o', {str(tmp_path / 'out')!r}, "
            f"'--model', {tiny_model!r}])\n"
            "print(rc, 'distributed' in sys.modules, 'dask' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert res.stdout.split()[-3:] == ["0", "False", "False"], res.stderr


@pytest.mark.slow
def test_cluster_io_client_sends_the_photos_through_the_client(tmp_path, tiny_model, cluster, capsys):
    """Workers that share no folder with the client: same pixels as the shared-folder run, every output once."""
    local, client = cluster
    _photos(tmp_path / "in", 4)
    common = ["batch", str(tmp_path / "in"), "--model", tiny_model, "--strength", "12",
              "--cluster", local.scheduler_address]
    assert main(common + ["-o", str(tmp_path / "shared")]) == 0
    assert main(common + ["-o", str(tmp_path / "via"), "--cluster-io", "client", "--report",
                          str(tmp_path / "r.json")]) == 0
    assert "through this machine" in capsys.readouterr().err
    rows = _report(tmp_path / "r.json")
    assert all(r["status"] == "done" and r["output"].startswith(str(tmp_path / "via")) for r in rows.values())
    for k in range(4):
        a = np.asarray(Image.open(tmp_path / "shared" / f"p{k}-denoised.png"))
        b = np.asarray(Image.open(tmp_path / "via" / f"p{k}-denoised.png"))
        assert np.array_equal(a, b)
    assert _leftovers(tmp_path / "via") == []


@pytest.mark.slow
def test_ctrl_c_on_the_client_stops_the_tasks_and_leaves_no_partial_file(tmp_path, tiny_model, cluster):
    local, client = cluster
    _photos(tmp_path / "in")
    client.run(_slow_photos, 2.0)
    out, report = tmp_path / "out", tmp_path / "r.json"
    try:
        proc = subprocess.Popen([sys.executable, "-m", "denoiser", "batch", str(tmp_path / "in"), "-o", str(out),
                                 "--model", tiny_model, "--strength", "10", "--cluster", local.scheduler_address,
                                 "--report", str(report)], cwd=ROOT, env=os.environ | {"OMP_NUM_THREADS": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                any("photo-" in str(k) for k in keys) for keys in client.processing().values()):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        client.run(_slow_photos, 0.0)
    assert proc.returncode == 130, err
    rows = _report(report)
    assert len(rows) == N_PHOTOS and any(r["reason"] == "cancelled" for r in rows.values())
    made = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert made == sorted(Path(r["output"]).name for r in rows.values() if r["status"] == "done")  # complete ones
    assert _leftovers(tmp_path) == []
