"""Planning a folder job: discovery, patterns, naming, sharding, refusals. No pixels are decoded."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from denoiser.core.batch_plan import (FAILED, QUEUED, SKIPPED, BatchError, BatchOptions, check_template,
                                      parse_shard, plan_batch)

EXT = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dng", ".nef"})
RAW = frozenset({".dng", ".nef"})


def make_tree(root: Path) -> None:
    for rel in ["a.jpg", "B.JPG", "c.png", "notes.txt", "sub/d.jpg", "sub/deeper/e.tif", ".hidden.jpg",
                ".cache/f.jpg", "raw.NEF"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def plan(tmp_path: Path, **kw) -> list:
    opts = BatchOptions(input_dir=tmp_path / "in", output_dir=kw.pop("output_dir", tmp_path / "out"), **kw)
    return plan_batch(opts, EXT, RAW).items


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
    assert items["raw.NEF"].output == out / "raw-denoised.tif"  # RAW cannot be written back: 16-bit TIFF


def test_include_exclude_match_name_or_relative_path_case_insensitively(tree: Path) -> None:
    assert rels(plan(tree, recursive=True, include=("*.jpg",))) == ["B.JPG", "a.jpg", "sub/d.jpg"]
    assert rels(plan(tree, recursive=True, include=("*.jpg",), exclude=("sub/*",))) == ["B.JPG", "a.jpg"]


def test_template_fields_and_format(tree: Path) -> None:
    items = {str(i.rel): i for i in plan(tree, recursive=True, name_template="{parent}_{name}.{ext}", fmt="png")}
    assert items["sub/d.jpg"].output == tree / "out" / "sub" / "sub_d.jpg.png"
    assert items["a.jpg"].output == tree / "out" / "in_a.jpg.png"
    items = {str(i.rel): i for i in plan(tree, fmt="jpeg")}
    assert items["c.png"].output.name == "c-denoised.jpg"


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
    queued = [i for i in items if i.status != SKIPPED]
    assert queued and all(i.status == FAILED and "overwrite an input" in i.reason for i in queued)


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
                                {"shard": (3, 2)}])
def test_bad_options_refused(tree: Path, kw: dict) -> None:
    with pytest.raises(BatchError):
        plan(tree, **kw)


def test_missing_input_folder(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="not found"):
        plan(tmp_path)


def test_rel_paths_are_posix(tree: Path) -> None:
    assert all(isinstance(i.rel, PurePosixPath) for i in plan(tree, recursive=True))
