"""Planning a folder job: discovery, patterns, naming, sharding, refusals. No pixels are decoded."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from denoiser.core.batch.plan import (
    FAILED,
    QUEUED,
    SKIPPED,
    BatchError,
    BatchOptions,
    check_template,
    parse_shard,
    plan_batch,
)


def make_tree(root: Path) -> None:
    for rel in ["a.jpg", "B.JPG", "c.png", "notes.txt", "sub/d.jpg", "sub/deeper/e.tif", ".hidden.jpg",
                ".cache/f.jpg", "raw.NEF"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def plan(tmp_path: Path, **kw) -> list:
    opts = BatchOptions(input_dir=tmp_path / "in", output_dir=kw.pop("output_dir", tmp_path / "out"), **kw)
    return plan_batch(opts).items


def rels(items, status=None) -> list[str]:
    return [str(i.rel) for i in items if status is None or i.status == status]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_tree(tmp_path / "in")
    return tmp_path


def test_non_recursive_by_default_hidden_ignored_unsupported_reported(tree: Path) -> None:
    items = plan(tree)
    assert rels(items) == ["B.JPG", "a.jpg", "c.png", "notes.txt", "raw.NEF"]
    assert rels(items, QUEUED) == ["B.JPG", "a.jpg", "c.png", "raw.NEF"]
    (txt,) = [i for i in items if i.status == SKIPPED]
    assert "unsupported" in txt.reason and ".txt" in txt.reason


def test_recursive_mirrors_tree_and_names(tree: Path) -> None:
    items = {str(i.rel): i for i in plan(tree, recursive=True)}
    assert set(items) == {"B.JPG", "a.jpg", "c.png", "notes.txt", "raw.NEF", "sub/d.jpg", "sub/deeper/e.tif"}
    out = tree / "out"
    assert items["sub/deeper/e.tif"].output == out / "sub" / "deeper" / "e-denoised.tif"
    assert items["B.JPG"].output == out / "B-denoised.JPG"
    assert items["raw.NEF"].output == out / "raw-denoised.dng"  # a RAW kept as it is: its denoised raw, a DNG


def test_include_exclude_match_name_or_relative_path_case_insensitively(tree: Path) -> None:
    assert rels(plan(tree, recursive=True, include=("*.jpg",))) == ["B.JPG", "a.jpg", "sub/d.jpg"]
    assert rels(plan(tree, recursive=True, include=("*.jpg",), exclude=("sub/*",))) == ["B.JPG", "a.jpg"]


def test_template_fields_and_format(tree: Path) -> None:
    items = {str(i.rel): i for i in plan(tree, recursive=True, name_template="{parent}_{name}.{ext}", fmt="png")}
    assert items["sub/d.jpg"].output == tree / "out" / "sub" / "sub_d.jpg.png"
    assert items["a.jpg"].output == tree / "out" / "in_a.jpg.png"
    items = {str(i.rel): i for i in plan(tree, fmt="jpeg")}
    assert items["c.png"].output.name == "c-denoised.jpg"


def test_output_name_always_has_the_format_extension(tree: Path) -> None:
    items = {str(i.rel): i for i in plan(tree, name_template="{stem}_clean")}
    assert items["a.jpg"].output.name == "a_clean.jpg"
    assert items["raw.NEF"].output.name == "raw_clean.dng"
    items = {str(i.rel): i for i in plan(tree, name_template="{name}", fmt="png")}
    assert items["a.jpg"].output.name == "a.jpg.png"


@pytest.mark.parametrize("template", ["{stem}{bogus}.{ext}", "{}.jpg", "fixed.jpg", "sub/{stem}.{ext}", "{stem"])
def test_bad_templates_refused(template: str) -> None:
    with pytest.raises(BatchError):
        check_template(template)


def test_existing_outputs_skipped_unless_overwrite(tree: Path) -> None:
    (tree / "out").mkdir()
    (tree / "out" / "a-denoised.jpg").write_bytes(b"done before")
    a = [i for i in plan(tree) if str(i.rel) == "a.jpg"][0]
    assert (a.status, a.reason) == (SKIPPED, "output exists")
    a = [i for i in plan(tree, overwrite=True) if str(i.rel) == "a.jpg"][0]
    assert a.status == QUEUED


def test_colliding_outputs_are_failed_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("x.jpg", "x.png"):
        (tmp_path / "in" / name).write_bytes(b"x")
    items = plan(tmp_path, fmt="tiff")
    assert [i.status for i in items] == [QUEUED, FAILED]
    assert "also the output of x.jpg" in items[1].reason


@pytest.mark.parametrize("inside", ["in", "in/out"])
def test_output_inside_input_refused(tree: Path, inside: str) -> None:
    with pytest.raises(BatchError, match="inside"):
        plan(tree, output_dir=tree / inside)


def test_report_inside_input_refused(tree: Path) -> None:
    with pytest.raises(BatchError, match="report"):
        plan(tree, report=tree / "in" / "report.json")


def test_allowed_inside_never_targets_an_input(tree: Path) -> None:
    items = plan(tree, output_dir=tree / "in", allow_inside=True, name_template="{name}", recursive=True)
    status = {str(i.rel): i.status for i in items}
    assert status.pop("raw.NEF") == QUEUED  # written as raw.NEF.tif: a new file
    status.pop("notes.txt")
    assert status and set(status.values()) == {FAILED}
    assert all("overwrite an input" in i.reason for i in items if i.status == FAILED)


def test_allowed_inside_does_not_rediscover_outputs(tree: Path) -> None:
    (tree / "in" / "out").mkdir()
    (tree / "in" / "out" / "a-denoised.jpg").write_bytes(b"x")
    items = plan(tree, output_dir=tree / "in" / "out", allow_inside=True, recursive=True)
    assert not any(str(i.rel).startswith("out/") for i in items)


def test_shards_are_disjoint_and_cover_everything(tree: Path) -> None:
    everything = rels(plan(tree, recursive=True))
    shards = [rels(plan(tree, recursive=True, shard=(k, 3))) for k in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(everything)
    assert all(len(s) >= len(everything) // 3 for s in shards)


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "a/b", "2", "1/2/3", ""])
def test_bad_shard_specs(spec: str) -> None:
    with pytest.raises(BatchError):
        parse_shard(spec)


def test_good_shard_spec() -> None:
    assert parse_shard("2/3") == (2, 3)


@pytest.mark.parametrize("kw", [{"fmt": "gif"}, {"quality": 0}, {"strength": -1.0}, {"report": Path("r.txt")},
                                {"shard": (3, 2)}, {"passes": 3}])
def test_bad_options_refused(tree: Path, kw: dict) -> None:
    with pytest.raises(BatchError):
        plan(tree, **kw)


def test_missing_input_folder(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="not found"):
        plan(tmp_path)


def test_rel_paths_are_posix(tree: Path) -> None:
    assert all(isinstance(i.rel, PurePosixPath) for i in plan(tree, recursive=True))


# --- running jobs (decode, denoise, save) -----------------------------------------------------------------

import json  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from denoiser.core.progress import CancelToken  # noqa: E402


def noisy_rgb(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(ramp + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def photo_folder(root: Path, n: int, h: int = 48, w: int = 64) -> Path:
    root.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(noisy_rgb(h, w, k)).save(root / f"p{k:02d}.png")
    return root


def options(tmp_path: Path, model: str, **kw) -> BatchOptions:
    return BatchOptions(input_dir=tmp_path / "in", output_dir=tmp_path / "out", model=model, device="cpu", **kw)


def visible_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("prefetch", [True, False])
def test_run_cleans_every_photo_and_reports(tmp_path: Path, tiny_model_file: Path, prefetch: bool) -> None:
    """Every photo is saved as the engine denoises it (a random model: the pixels really change)."""
    from denoiser.core.batch.runner import run_batch
    from denoiser.core.inference.engine import Denoiser

    photo_folder(tmp_path / "in", 3)
    events: list[tuple[int, str]] = []
    result = run_batch(options(tmp_path, str(tiny_model_file), prefetch=prefetch, report=tmp_path / "r.json"),
                       on_file=lambda k, n, item: events.append((k, item.status)))
    assert result.ok and result.counts == {"done": 3, "skipped": 0, "failed": 0}
    assert visible_files(tmp_path / "out") == ["p00-denoised.png", "p01-denoised.png", "p02-denoised.png"]
    assert events == [(0, "running"), (0, "done"), (1, "running"), (1, "done"), (2, "running"), (2, "done")]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["done"] == 3 and report["summary"]["cancelled"] is False
    assert all(row["strength"] > 5 for row in report["files"])  # sigma 20 noise was estimated
    engine = Denoiser.from_file(tiny_model_file, device="cpu")
    for item in result.done:
        pixels = np.asarray(Image.open(item.source), np.float32)
        saved = np.asarray(Image.open(item.output), np.float32)
        expected = np.round(engine.denoise(pixels / 255, engine.auto_strength(pixels / 255)) * 255)
        assert saved.shape == (48, 64, 3) and np.abs(saved - expected).max() <= 1
        assert np.abs(saved - pixels).mean() > 2  # not a copy of the input


def test_rerun_skips_done_files(tmp_path: Path, tiny_model: str) -> None:
    from denoiser.core.batch.runner import run_batch

    photo_folder(tmp_path / "in", 2)
    run_batch(options(tmp_path, tiny_model))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    result = run_batch(options(tmp_path, tiny_model))
    assert result.counts == {"done": 0, "skipped": 2, "failed": 0}
    assert all(i.reason == "output exists" for i in result.skipped)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before


def test_fixed_strength_is_used_and_csv_report(tmp_path: Path, tiny_model: str) -> None:
    import csv

    from denoiser.core.batch.runner import run_batch

    photo_folder(tmp_path / "in", 2)
    result = run_batch(options(tmp_path, tiny_model, strength=12.5, report=tmp_path / "r.csv", fmt="jpeg"))
    assert [i.sigma for i in result.done] == [12.5, 12.5]
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["file"], r["status"], r["strength"]) for r in rows] == [("p00.png", "done", "12.5"),
                                                                           ("p01.png", "done", "12.5")]
    assert visible_files(tmp_path / "out") == ["p00-denoised.jpg", "p01-denoised.jpg"]


def test_passes_reach_the_engine(tmp_path: Path, tiny_model_file: Path) -> None:
    """A batch with passes=2 saves exactly what the engine's two-pass result quantises to."""
    from denoiser.core.batch.runner import run_batch
    from denoiser.core.inference.engine import Denoiser

    photo_folder(tmp_path / "in", 1)
    run_batch(options(tmp_path, str(tiny_model_file), strength=20.0, passes=2))
    pixels = np.asarray(Image.open(tmp_path / "in" / "p00.png"), np.float32) / 255
    engine = Denoiser.from_file(tiny_model_file, device="cpu")  # random weights: not the identity
    two, one = (np.round(engine.denoise(pixels, 20.0, passes=n) * 255) for n in (2, 1))
    saved = np.asarray(Image.open(tmp_path / "out" / "p00-denoised.png"), np.float32)
    assert np.abs(saved - two).max() <= 1 and np.abs(saved - one).max() > 1


class CancelDuringFile(CancelToken):
    """Cancels once the given file has reported its first tile; counts reports made afterwards."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target, self.seen, self.after = target, 0, 0

    def report(self, fraction: float, message: str = "") -> None:
        if self.cancelled:
            self.after += 1
        elif self.target in message:
            self.seen += 1  # 1: the file starts, 2: its first tile is done
            if self.seen == 2:
                self.cancel()


def test_cancel_mid_file_leaves_no_partial_output(tmp_path: Path, tiny_model: str) -> None:
    from denoiser.core.batch.runner import run_batch

    photo_folder(tmp_path / "in", 3, h=320, w=320)  # several 256 px tiles per photo
    token = CancelDuringFile("p01.png")
    result = run_batch(options(tmp_path, tiny_model, tile=256, report=tmp_path / "r.json"), progress=token)
    assert result.cancelled and not result.ok
    assert [i.status for i in result.items] == ["done", "skipped", "skipped"]
    assert [i.reason for i in result.items[1:]] == ["cancelled", "cancelled"]
    assert token.after == 0  # stopped at the next tile boundary: no tile ran after the cancel
    out = tmp_path / "out"
    assert sorted(p.name for p in out.rglob("*")) == ["p00-denoised.png"]  # no temp or partial file
    with Image.open(out / "p00-denoised.png") as im:
        im.load()
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["cancelled"] is True
    # a re-run resumes: the finished photo is skipped, the others are done
    result = run_batch(options(tmp_path, tiny_model))
    assert result.counts == {"done": 2, "skipped": 1, "failed": 0}


def test_decode_overlaps_denoise(tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With prefetch the next photo's decode starts while the current one is being denoised: each denoise
    waits for that decode to begin (without prefetch it never would, and the wait gives up)."""
    import denoiser.core.batch.runner as batch
    import denoiser.core.pipeline as pipeline
    from denoiser.core.inference import controls as tone

    photo_folder(tmp_path / "in", 3)
    decoding = {name: threading.Event() for name in ("p00.png", "p01.png", "p02.png")}
    real_load, real_denoise = pipeline.load_photo, tone.denoise_photo
    overlapped: list[bool] = []

    def load_spy(path: Path, *a, **kw):
        decoding[Path(path).name].set()
        return real_load(path, *a, **kw)

    def denoise_spy(denoiser, photo, *a, **kw):
        k = len(overlapped)
        if k + 1 < len(decoding):
            overlapped.append(decoding[f"p{k + 1:02d}.png"].wait(timeout=30))
        else:
            overlapped.append(True)  # the last photo has no next one
        return real_denoise(denoiser, photo, *a, **kw)

    monkeypatch.setattr(pipeline, "load_photo", load_spy)
    monkeypatch.setattr(tone, "denoise_photo", denoise_spy)
    result = batch.run_batch(options(tmp_path, tiny_model))
    assert result.counts["done"] == 3 and overlapped == [True, True, True]


def test_per_file_errors_are_collected(tmp_path: Path, tiny_model: str) -> None:
    from denoiser.core.batch.runner import run_batch

    folder = photo_folder(tmp_path / "in", 2)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    result = run_batch(options(tmp_path, tiny_model))
    assert result.counts == {"done": 2, "skipped": 0, "failed": 2}
    reasons = {str(i.rel): i.reason for i in result.failed}
    assert set(reasons) == {"empty.jpg", "text.png"} and all(reasons.values())
    assert visible_files(tmp_path / "out") == ["p00-denoised.png", "p01-denoised.png"]


def test_no_model_load_when_nothing_to_do(tmp_path: Path) -> None:
    from denoiser.core.batch.runner import run_batch

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("x")
    result = run_batch(options(tmp_path, "no-such-model"))
    assert result.ok and result.counts == {"done": 0, "skipped": 1, "failed": 0}


def test_unwritable_report_does_not_lose_the_outcome(tmp_path: Path, tiny_model: str) -> None:
    from denoiser.core.batch.runner import run_batch

    photo_folder(tmp_path / "in", 1)
    (tmp_path / "blocker").write_text("a file where the report folder should be")
    result = run_batch(options(tmp_path, tiny_model, report=tmp_path / "blocker" / "r.json"))
    assert result.counts["done"] == 1 and not result.ok
    assert "cannot write the report" in result.report_error
