"""Installed models: the shipped ones in resources/models and the user's own (fine-tuned) ones."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from denoiser.core.model.experts import is_expert_file
from denoiser.core.model.file import ModelCard, ModelFileError, read_card
from denoiser.core.resources import ESTIMATOR_FILE_NAME, resources_dir, user_data_path

DEFAULT_MODEL_NAME = "default"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    card: ModelCard
    builtin: bool

    @property
    def origin(self) -> str:
        return "shipped" if self.builtin else f"user ({self.card.training.get('mode', 'trained')})"


def shipped_models_dir() -> Path:
    return resources_dir() / "models"


def user_models_dir() -> Path:
    return user_data_path() / "models"


@dataclass(frozen=True)
class DamagedModel:
    """A model file whose card cannot be read: listed with the reason, so it can be seen and deleted, never
    silently left out."""
    name: str
    path: Path
    problem: str
    builtin: bool


def _scan(folder: Path, builtin: bool) -> tuple[list[ModelEntry], list[DamagedModel]]:
    if not folder.is_dir():
        return [], []
    entries, damaged = [], []
    for path in sorted(folder.glob("*.safetensors")):
        if path.stem.startswith("."):  # temp files, and "..safetensors" whose name "." would be a folder
            continue
        if builtin and path.name == ESTIMATOR_FILE_NAME:  # Auto's noise estimator: not a denoising model
            continue
        if is_expert_file(path):  # a model's heavy-noise expert: part of that model
            continue
        try:
            card = read_card(path)
        except (ModelFileError, OSError) as exc:
            damaged.append(DamagedModel(path.stem, path, str(exc), builtin))
            continue
        entries.append(ModelEntry(path.stem, path, card, builtin))
    return entries, damaged


def damaged_models() -> list[DamagedModel]:
    """The model files of the shipped and user folders that cannot be read (`denoiser models` shows them)."""
    return _scan(shipped_models_dir(), True)[1] + _scan(user_models_dir(), False)[1]


def list_models(kind: str | None = "rgb") -> list[ModelEntry]:
    """Shipped models first (the default first of all), then the user's, by name; of one kind ('rgb': photo
    models, 'raw': models of Bayer mosaics; None: all)."""
    shipped = [e for e in _scan(shipped_models_dir(), True)[0] if kind is None or e.card.config.kind == kind]
    shipped.sort(key=lambda e: (e.name != DEFAULT_MODEL_NAME, e.name))
    names = {e.name for e in shipped}
    user = [e for e in _scan(user_models_dir(), False)[0] if kind is None or e.card.config.kind == kind]
    return shipped + [e for e in user if e.name not in names]


def find_model(name: str | None = None, kind: str | None = "rgb") -> ModelEntry:
    """A model of `kind` (see list_models) by name, or a path to a .safetensors file; None means the shipped
    default."""
    name = name or DEFAULT_MODEL_NAME
    as_path = Path(name)
    if as_path.suffix == ".safetensors" and as_path.is_file():
        card = read_card(as_path)
        if kind is not None and card.config.kind != kind:
            raise ModelFileError(f"{name}: a {card.config.kind} model, not a {kind} one; choose a {kind} model "
                                 "(see `denoiser models`)")
        return ModelEntry(as_path.stem, as_path, card, False)
    if as_path.suffix == ".safetensors" or len(as_path.parts) > 1:
        raise ModelFileError(f"{name}: model file not found; give the path of a .safetensors file, or the name "
                             "of an installed model (see `denoiser models`)")
    for entry in list_models(kind):
        if entry.name == name:
            return entry
    for bad in damaged_models():
        if bad.name == name:
            fix = "reinstall the app" if bad.builtin else f"delete it: denoiser models delete {name}"
            raise ModelFileError(f"the model {name!r} is damaged ({bad.problem}); {fix}")
    available = ", ".join(e.name for e in list_models(kind)) or "none installed"
    raise ModelFileError(f"no model named {name!r} (available: {available})")
