"""Every file the app keeps in the user data folder, with its size: models (yours, community, damaged) and
fine-tuning runs that never published a model (a stopped run's checkpoint can be hundreds of MB). `denoiser
models` and Model ▸ Manage models… both list them from here, and each can be deleted from either."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from denoiser.core.files import remove_tree_inside
from denoiser.core.model.registry import user_models_dir
from denoiser.core.model.store import ModelStoreError, check_name, runs_dir


@dataclass(frozen=True)
class UnfinishedRun:
    """A fine-tuning run folder with no published model of its name: Resume continues it, Delete frees it."""

    name: str
    path: Path
    bytes: int
    has_checkpoint: bool


def size_of(path: Path) -> int:
    """Bytes in a file, or in every file under a folder (links are not followed)."""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human_size(n: int) -> str:
    """'812 bytes', '23.8 MB' (powers of 1000, as file managers show)."""
    size = float(n)
    for unit in ("bytes", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def unfinished_runs() -> list[UnfinishedRun]:
    """Run folders whose model was never published (stopped, failed or still running), by name."""
    root, models = runs_dir(), user_models_dir()
    if not root.is_dir():
        return []
    runs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if not (models / f"{folder.name}.safetensors").exists():
            runs.append(UnfinishedRun(folder.name, folder, size_of(folder), (folder / "checkpoint.pt").exists()))
    return runs


def delete_run(name: str) -> Path:
    """Delete the unfinished run `name` (never a published model's run: `models delete` removes those with
    their model); returns the folder deleted."""
    run = next((r for r in unfinished_runs() if r.name == check_name(name)), None)
    if run is None:
        raise ModelStoreError(f"no unfinished fine-tuning run named {name!r} (see `denoiser models`)")
    remove_tree_inside(run.path, runs_dir())
    return run.path
