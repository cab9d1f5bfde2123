"""Status bar: image size and bit depth, Auto strength, model in use, device, time of the last run."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar


class StatusLine:
    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.size = QLabel("No photo")
        self.noise = QLabel("")
        self.model = QLabel("model: —")
        self.device = QLabel("device: auto")
        self.last_run = QLabel("")
        for label in (self.size, self.noise, self.model, self.device, self.last_run):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)

    def set_photo(self, width: int, height: int, bit_depth: int, channels: int, sigma: float | None) -> None:
        kind = "grey" if channels == 1 else "RGB"
        self.size.setText(f"{width} × {height} ({width * height / 1e6:.1f} MP), {bit_depth}-bit {kind}")
        self.noise.setText("noise level —" if sigma is None else f"noise level {sigma:.1f}")

    def set_model(self, name: str) -> None:
        self.model.setText(f"model: {name}")

    def set_device(self, text: str) -> None:
        self.device.setText(f"device: {text}")

    def set_last_run(self, seconds: float, sigma: float, precision: str = "fp32") -> None:
        """precision: what the network ran in; INT8 (Quality Fast) is named."""
        int8 = ", INT8" if precision == "int8" else ""
        self.last_run.setText(f"last run: {seconds:.1f} s at noise level {sigma:.1f}{int8}")

    def message(self, text: str, msecs: int = 8000) -> None:
        self.bar.showMessage(text, msecs)


def profile_note(model: str | None, exif: bytes | None) -> str:
    """"; using camera profile X (camera, ISO)" when the model is Auto and the photo matches a profile."""
    from denoiser.core.model.profiles import AUTO_MODEL, choose_model

    if model != AUTO_MODEL:
        return ""
    choice = choose_model(model, exif)
    return f"; using {choice.reason}" if choice.profile else "; no camera profile matches: the default model"
