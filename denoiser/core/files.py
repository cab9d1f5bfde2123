"""File-system helpers shared by the modules that write or delete files (photos, model files, runs)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def process_umask() -> int:
    """The process umask without changing it (os.umask would, racing other threads that create files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class UnsafePathError(ValueError):
    """A path that would be deleted or written lies outside the folder it must stay in."""


def inside(path: Path, folder: Path) -> Path:
    """`path` resolved (links followed), if it lies strictly inside `folder` (resolved too).

    Every delete runs through this first, so a name such as "..", an absolute path or a link that points
    elsewhere can never turn a clean-up into the removal of an unrelated folder."""
    root = Path(folder).resolve()
    target = Path(path).resolve()
    if target == root or root not in target.parents:
        raise UnsafePathError(f"{path}: refusing to touch it, it is not inside {root}")
    return target


def remove_tree_inside(path: Path, folder: Path) -> bool:
    """Delete the folder `path` (never a link) once it is proven to lie inside `folder`; False if absent."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafePathError(f"{path}: is a link; refusing to delete through it")
    if not path.exists():
        return False
    shutil.rmtree(inside(path, folder))
    return True


def write_problem(folder: Path) -> str:
    """Why files cannot be written into `folder` (or the folder that would be created there), or "".

    Tried for real, with a temp file created and removed at once: permission bits say nothing about a
    read-only mount, and root passes every os.access check."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".denoiser-write-test.", suffix=".tmp", dir=existing)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return f"cannot write in {existing} ({exc.strerror or exc}); choose another output folder"
    return ""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~process_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
