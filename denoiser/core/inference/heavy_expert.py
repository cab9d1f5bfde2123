"""The heavy-noise expert inside the engine (core.model.experts): loaded on the first tile whose level reaches
its ramp, in the engine's precision (its own INT8 build under INT8) and on the engine's device, then blended with
the model's result pixel by pixel."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from denoiser.core.inference.quantized import Int8Error, Int8Network, int8_path
from denoiser.core.model.experts import HEAVY_RAMP, LevelRamp, expert_file
from denoiser.core.model.file import ModelCard, ModelFileError, load_model, read_card
from denoiser.core.model.network import ModelConfig, UNetDenoiser

log = logging.getLogger(__name__)

Net = Int8Network | UNetDenoiser  # called as the engine calls its model: (x, level as the model takes it) -> result


class HeavyExpert:
    """The expert of one model file. get() gives it as a network for a device and precision (its INT8 build, or
    the weights placed by the engine, which runs it as it runs its model), or None (with the reason in `problem`)
    when it cannot run there; the engine then runs its model alone, as without an expert."""

    def __init__(self, path: Path, config: ModelConfig, ramp: LevelRamp = HEAVY_RAMP) -> None:
        self.path, self.config, self.ramp = Path(path), config, ramp
        self.problem: str | None = None
        self._cpu_model: UNetDenoiser | None = None
        self._made: dict[tuple[str, bool], Net | None] = {}
        self._lock = threading.Lock()  # the preview and a save may reach the ramp at once

    @classmethod
    def of(cls, model_path: Path | None, card: ModelCard) -> HeavyExpert | None:
        """The expert the model at `model_path` runs with (core.model.experts.expert_file), if there is one."""
        if model_path is None or card.config.kind != "rgb":
            return None
        path = expert_file(model_path, card.training)
        return cls(path, card.config) if path is not None else None

    @property
    def loaded(self) -> bool:
        """Whether a tile has reached the ramp (and the expert was loaded for it) in this engine."""
        with self._lock:
            return any(net is not None for net in self._made.values())

    def get(self, device: torch.device, int8: bool, place: Callable[[UNetDenoiser], UNetDenoiser]) -> Net | None:
        key = (str(device), int8)
        with self._lock:
            if key not in self._made:
                self._made[key] = self._make(int8, place)
            return self._made[key]

    def _make(self, int8: bool, place: Callable[[UNetDenoiser], UNetDenoiser]) -> Net | None:
        try:
            if int8:
                return Int8Network(int8_path(self.path), self.path)
            if self._cpu_model is None:
                if read_card(self.path).config != self.config:  # before a weight is read
                    raise ModelFileError(f"{self.path}: its architecture differs from the model's")
                self._cpu_model = load_model(self.path)[0].eval()
            return place(self._cpu_model)
        except (Int8Error, ModelFileError, OSError) as exc:
            self.problem = f"the heavy-noise expert is off ({exc})"
            log.warning(self.problem)
            return None
