"""Model files: safetensors weights + a JSON card. Data only: no pickle is ever executed.

The card (architecture config, training data, metrics, version) is written twice: as a sidecar
`<name>.json` for people, and inside the safetensors metadata so one file is self-contained for
export/import. Loading validates the card, then builds the model through the one factory.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from denoiser.core.files import atomic_write_bytes
from denoiser.core.model.network import ModelConfig, UNetDenoiser, build_model

CARD_FORMAT = "denoiser-model"
CARD_VERSION = 1
MAX_HEADER_BYTES = 1 << 24  # a real header (names, shapes, card) is a few tens of KB
_DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4}


class ModelFileError(ValueError):
    """A model file or its card is missing, corrupt or does not match."""


@dataclass
class ModelCard:
    name: str
    config: ModelConfig
    version: str = "1"
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "format_version": CARD_VERSION,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "model": self.config.to_dict(),
            "training": self.training,
            "metrics": self.metrics,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "card") -> ModelCard:
        if not isinstance(d, dict):
            raise ModelFileError(f"{source}: the model card is not a JSON object")
        if d.get("format") != CARD_FORMAT:
            raise ModelFileError(f"{source}: not a denoiser model card (format={d.get('format')!r})")
        if d.get("format_version") != CARD_VERSION:
            raise ModelFileError(f"{source}: unsupported card version {d.get('format_version')!r}")
        try:
            config = ModelConfig.from_dict(d["model"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: invalid model config: {exc}") from exc
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ModelFileError(f"{source}: the card has no name")
        for key in ("training", "metrics"):
            if not isinstance(d.get(key, {}), dict):
                raise ModelFileError(f"{source}: '{key}' must be an object")
        return cls(name=name, config=config, version=str(d.get("version", "1")),
                   description=str(d.get("description", "")), training=dict(d.get("training", {})),
                   metrics=dict(d.get("metrics", {})), created=str(d.get("created", "")))


def card_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_model(weights: Path, model: UNetDenoiser, card: ModelCard, half: bool = True) -> None:
    """Atomically write `<name>.safetensors` (fp16 by default) and its `<name>.json` card."""
    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    card_json = json.dumps(card.to_dict(), indent=2, sort_keys=False)
    atomic_write_bytes(weights, save(tensors, metadata={"card": card_json}))
    atomic_write_bytes(card_path(weights), (card_json + "\n").encode())


def read_header(weights: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(tensor entries: dtype, shape, data_offsets; metadata) of a safetensors file, from its header alone:
    nothing is allocated for the weights, so a bad or hostile file costs a few bytes of reading."""
    weights = Path(weights)
    not_model = (f"{weights}: not a model file (the contents are not safetensors weights); choose a "
                 ".safetensors file made by this app, e.g. with `denoiser models export`")
    try:
        size = weights.stat().st_size
        with open(weights, "rb") as fh:
            prefix = fh.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise ModelFileError(not_model)
            header = json.loads(fh.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(not_model) from None
    except OSError as exc:
        raise ModelFileError(f"{weights}: cannot read the model file ({exc.strerror or exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(not_model)
    meta = header.pop("__metadata__", None) or {}
    data = size - 8 - length
    for name, entry in header.items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("shape"), list) and
              isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2 and
              all(isinstance(v, int) and v >= 0 for v in entry["shape"] + entry["data_offsets"]))
        if not ok or entry["data_offsets"][1] > data:
            raise ModelFileError(f"{weights}: the model file is damaged or truncated (tensor {name!r}); "
                                 "export or copy it again")
    if not isinstance(meta, dict):
        raise ModelFileError(not_model)
    return header, meta


def read_card(weights: Path) -> ModelCard:
    """The card of a model file: the sidecar JSON if present, else the embedded one."""
    weights = Path(weights)
    if not weights.is_file():
        raise ModelFileError(f"{weights}: model file not found")
    side = card_path(weights)
    if side.is_file():
        try:
            return ModelCard.from_dict(json.loads(side.read_text()), str(side))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{side}: cannot read the model card: {exc}") from exc
    meta = read_header(weights)[1]
    if "card" not in meta:
        raise ModelFileError(f"{weights}: no model card (no {side.name} and none embedded)")
    try:
        return ModelCard.from_dict(json.loads(meta["card"]), str(weights))
    except (TypeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{weights}: embedded card is not JSON: {exc}") from exc


def check_weights(weights: Path, config: ModelConfig) -> None:
    """The file's tensors (names, shapes, dtypes, sizes, from its header) against the architecture the card
    declares, built on the meta device: a tiny file whose card claims a huge model is refused before a
    single weight is allocated."""
    header, _ = read_header(weights)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        raise ModelFileError(f"{weights}: weights do not match the card's architecture "
                             f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for name, entry in header.items():
        shape = tuple(entry["shape"])
        if shape != expected[name]:
            raise ModelFileError(f"{weights}: tensor {name} has shape {shape}, expected {expected[name]}")
        width = _DTYPE_BYTES.get(str(entry.get("dtype")))
        if width is None:
            raise ModelFileError(f"{weights}: tensor {name} has unsupported type {entry.get('dtype')!r}")
        start, end = entry["data_offsets"]
        if end - start != width * math.prod(shape):
            raise ModelFileError(f"{weights}: tensor {name} holds {end - start} bytes, its shape needs "
                                 f"{width * math.prod(shape)}; the file is damaged")


def load_model(weights: Path) -> tuple[UNetDenoiser, ModelCard]:
    """Validate the card and the weights' shapes (check_weights), build the model from the card, load
    the weights strictly (fp32, eval mode)."""
    card = read_card(weights)
    check_weights(weights, card.config)
    try:
        tensors = load_file(str(weights))
    except (OSError, SafetensorError) as exc:
        raise ModelFileError(f"{weights}: not a valid safetensors file: {exc}") from exc
    for k, v in tensors.items():
        if not torch.isfinite(v).all():
            raise ModelFileError(f"{weights}: tensor {k} contains NaN or infinity")
    model = build_model(card.config)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval(), card
