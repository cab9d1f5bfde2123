"""Managing the user's models: rename, delete, export, import, reset to the shipped default.

Operates on registry.user_models_dir() only; shipped models (resources/models) are read-only and the
shipped default can never be renamed or deleted. Every write is atomic, and an imported file is fully
validated (card + weights) before anything is copied.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from denoiser.core.files import atomic_write_bytes, inside, remove_tree_inside
from denoiser.core.model.file import ModelFileError, card_path, load_model, save_model
from denoiser.core.model.network import count_parameters
from denoiser.core.model.registry import (
    DEFAULT_MODEL_NAME,
    ModelEntry,
    damaged_models,
    find_model,
    list_models,
    user_models_dir,
)
from denoiser.core.resources import user_data_path

MAX_NAME_LENGTH = 64
_NAME_RE = re.compile(r"[^\W_][\w .+()-]*")  # \w: letters and digits of any script, and _
# Names Windows reserves for devices: a model file so named could not be created or copied there.
_RESERVED = frozenset({"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)})


class ModelStoreError(ValueError):
    """A model operation was refused (bad name, shipped model, clash, bad file)."""


class TargetExistsError(ModelStoreError):
    """An export would replace an existing file and replacing was not allowed."""


def check_name(name: str) -> str:
    """The name, trimmed and NFC-normalised, if it is a safe model name: one plain file stem (no path,
    no "..", not hidden) that becomes both `<name>.safetensors` and the run folder `runs/<name>`.

    Every user-given name passes here before it reaches the file system (fine-tune, resume, discard,
    rename, import)."""
    name = unicodedata.normalize("NFC", name if isinstance(name, str) else "").strip()
    if not name:
        raise ModelStoreError("the model name is empty; give a name such as 'my camera'")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ModelStoreError(f"the model name {name!r} must not contain path separators; give a plain name")
    if len(name) > MAX_NAME_LENGTH:
        raise ModelStoreError(f"the model name is longer than {MAX_NAME_LENGTH} characters; shorten it")
    if not _NAME_RE.fullmatch(name) or name.endswith("."):
        raise ModelStoreError(f"the model name {name!r} may use letters (any script), digits, space and "
                              "_ . + ( ) - and must start with a letter or digit")
    if name.split(".")[0].strip().lower() in _RESERVED:
        raise ModelStoreError(f"the model name {name!r} is reserved for a device on Windows; choose another")
    return name


def validate_name(name: str, allow_existing: bool = False) -> str:
    """A safe model name (check_name), not a shipped model's and not already taken."""
    from denoiser.core.model.foreign import foreign_cards

    name = check_name(name)
    for entry in list_models():
        if entry.name.lower() == name.lower() and (entry.builtin or not allow_existing):
            kind = "a shipped model" if entry.builtin else "a model"
            raise ModelStoreError(f"{kind} named {entry.name!r} already exists; choose another name")
    taken = next((n for n in foreign_cards() if n.lower() == name.lower()), None)
    if taken is not None:  # one name, one model: --model NAME must never be ambiguous
        raise ModelStoreError(f"a community model named {taken!r} already exists; choose another name (or "
                              f"`denoiser models delete {taken}` first)")
    return name


def _run_of(name: str) -> Path | None:
    """The fine-tuning run folder of the model `name`; None when the name is not a valid model name (no run
    was ever made for it, and a name such as "x " must not stand for the run of "x")."""
    try:
        return runs_dir() / name if check_name(name) == name else None
    except ModelStoreError:
        return None


def describe(entry: ModelEntry) -> dict[str, object]:
    """One row for `denoiser models` and the manager dialog: name, architecture, size, origin."""
    cfg = entry.card.config
    training = entry.card.training
    try:
        import torch

        from denoiser.core.model.network import build_model
        with torch.device("meta"):  # shapes only: a card claiming a huge model costs nothing to describe
            params = count_parameters(build_model(cfg))
    except (ValueError, RuntimeError):
        params = 0
    origin = "shipped" if entry.builtin else str(training.get("origin") or entry.origin)
    if not entry.builtin and training.get("base_model"):
        origin = f"fine-tuned ({training.get('mode', '?')}) from {training['base_model']}"
    return {
        "name": entry.name, "builtin": entry.builtin, "path": str(entry.path),
        "architecture": f"{cfg.arch} widths {'/'.join(map(str, cfg.widths))} {cfg.in_channels}ch",
        "parameters": params, "origin": origin, "created": entry.card.created,
        "metrics": dict(entry.card.metrics), "training": dict(training),
        "description": entry.card.description, "heavy_expert": _expert_of(entry),
    }


def _expert_of(entry: ModelEntry) -> str | None:
    """The heavy-noise expert file the model runs with (its own, or its base's for a fine-tuned model)."""
    from denoiser.core.model.experts import expert_file

    if entry.card.config.kind != "rgb":
        return None
    path = expert_file(entry.path, entry.card.training)
    return None if path is None else str(path)


def _user_entry(name: str, action: str) -> ModelEntry:
    for entry in list_models():
        if entry.name == name:
            if entry.builtin:
                raise ModelStoreError(f"the shipped model {name!r} cannot be {action}")
            return entry
    raise ModelStoreError(f"no user model named {name!r}")


def rename(old: str, new: str) -> ModelEntry:
    """Rewrite the model under the new name (embedded card included), then remove the old files."""
    entry = _user_entry(old, "renamed")
    case_only = new.strip().lower() == old.lower() and new.strip() != old  # the clash check would refuse our own name
    new = check_name(new) if case_only else validate_name(new)
    src_run, dst_run = _run_of(old), runs_dir() / new  # every check before the first change
    if src_run is not None and src_run.is_dir() and not src_run.is_symlink():
        inside(src_run, runs_dir())
        if dst_run.exists() and src_run != dst_run:
            raise ModelStoreError(f"a fine-tuning run folder {dst_run} already exists; delete it or choose "
                                  "another name")
    model, card = load_model(entry.path)
    card.name = new
    target = user_models_dir() / f"{new}.safetensors"
    tmp = user_models_dir() / f".rename-{new}.safetensors"
    save_model(tmp, model, card)
    tmp.replace(target)
    card_path(tmp).replace(card_path(target))
    if entry.path != target:
        entry.path.unlink(missing_ok=True)
        if card_path(entry.path) != card_path(target):
            card_path(entry.path).unlink(missing_ok=True)
    if src_run is not None and src_run.is_dir() and not src_run.is_symlink() and not dst_run.exists():
        src_run.rename(dst_run)
    return find_model(new)


def delete(name: str) -> None:
    """Remove a user model, its card and its fine-tuning run folder; shipped models are refused. A user model
    file that cannot be read (registry.damaged_models) is deleted the same way."""
    bad = next((d for d in damaged_models() if d.name == name and not d.builtin), None)
    path = bad.path if bad is not None else _user_entry(name, "deleted").path
    run = _run_of(path.stem)
    if run is not None and run.is_symlink():  # refused before anything is deleted
        raise ModelStoreError(f"{run}: is a link; refusing to delete through it")
    path.unlink()
    card_path(path).unlink(missing_ok=True)
    if run is not None:
        remove_tree_inside(run, runs_dir())


def export(name: str, dest: Path, overwrite: bool = False) -> Path:
    """Copy the self-contained .safetensors (its card is embedded) to dest (a file or a folder)."""
    if not name or not name.strip():
        raise ModelStoreError("give the name of the model to export (see `denoiser models`)")
    entry = find_model(name)
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / f"{entry.name}.safetensors"
    if dest.suffix != ".safetensors":
        raise ModelStoreError(f"{dest}: the exported file must end in .safetensors")
    if not dest.parent.is_dir():
        raise ModelStoreError(f"{dest.parent}: folder does not exist")
    if dest.exists() and not overwrite:
        raise TargetExistsError(f"{dest} already exists; choose another file name or allow replacing it")
    if dest.resolve() == entry.path.resolve():
        raise ModelStoreError(f"{dest} is the model file itself")
    atomic_write_bytes(dest, entry.path.read_bytes())
    return dest


def import_model(src: Path, name: str | None = None) -> ModelEntry:
    """Validate a model file fully (card, architecture, finite weights), then copy it in."""
    src = Path(src).expanduser()
    if not src.is_file():
        raise ModelStoreError(f"{src}: file not found")
    if src.suffix != ".safetensors":
        raise ModelStoreError(f"{src}: not a model file (expected .safetensors)")
    try:
        model, card = load_model(src)
    except ModelFileError as exc:
        raise ModelStoreError(f"cannot import {src.name}: {exc}") from exc
    name = validate_name(name or src.stem)
    card.name = name
    user_models_dir().mkdir(parents=True, exist_ok=True)
    card.training = {**card.training, "imported_from": str(src)}
    save_model(user_models_dir() / f"{name}.safetensors", model, card)
    return find_model(name)


def reset_to_default() -> ModelEntry:
    """The shipped default, checked to load; callers select it. User models are left untouched."""
    try:
        entry = find_model(DEFAULT_MODEL_NAME)
        if not entry.builtin:
            raise ModelFileError(f"{entry.path} is not the shipped default")
        load_model(entry.path)
    except ModelFileError as exc:
        raise ModelStoreError(f"the shipped default model is missing or damaged: {exc}") from exc
    return entry


def runs_dir() -> Path:
    """Where fine-tuning runs keep their checkpoints (one folder per model name)."""
    return user_data_path() / "runs"
