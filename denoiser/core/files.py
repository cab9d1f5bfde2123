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


class OutputFileError(ValueError):
    """A file a command was asked to write cannot be written there without losing something."""


def resolved(path: Path) -> Path:
    """`path` with links followed; UnsafePathError (naming it) for a link loop instead of RuntimeError/OSError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        raise UnsafePathError(f"{path}: is a symbolic link loop (or cannot be followed: {exc}); "
                              "remove or fix the link") from None


def check_output_file(path: Path, overwrite: bool, inputs: tuple[Path, ...] = (), suffixes: tuple[str, ...] = (),
                      flag: str = "--overwrite") -> Path:
    """Refuse (OutputFileError) a file a command would write when writing it could lose something: a folder,
    an input of the same run (a file given, or a file inside a folder given), an existing file without
    `overwrite`, a name without one of `suffixes`. The rule `denoise` applies to photos, for every other
    file a command writes (eval --json, pack --out)."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputFileError(f"{path}: the name must end in {' or '.join(suffixes)}")
    try:
        target = resolved(path)
    except UnsafePathError as exc:
        raise OutputFileError(str(exc)) from None
    if path.is_dir():
        raise OutputFileError(f"{path}: is a folder; give a file name")
    if not target.parent.is_dir():
        raise OutputFileError(f"{path}: the folder {path.parent} does not exist")
    for source in inputs:
        src = resolved(source)
        if target == src or (src.is_dir() and src in target.parents and path.exists()):
            raise OutputFileError(f"{path}: is an input of this run ({source}); choose another output name")
    if path.exists() and not overwrite:
        raise OutputFileError(f"{path}: already exists; add {flag} to replace it")
    return path


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = True) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target. With overwrite=False
    a file that appeared meanwhile is never replaced (OutputFileError)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~process_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        raise OutputFileError(f"{path}: already exists; add --overwrite to replace it") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link_no_clobber(tmp: str, path: Path) -> None:
    """Rename without replacing: a hard link fails on an existing name (FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)
