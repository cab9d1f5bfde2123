"""The side panel: model, strength (Auto or noise level), noise and detail (luminance, colour, detail),
quality (passes and precision: gui.quality), device, Denoise / progress / Cancel."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from denoiser.core.noise.level import SCALE_RANGE  # numpy only: no torch at start
from denoiser.core.progress import format_eta
from denoiser.gui.quality import CHOICES, FAST, STANDARD, Quality, default_quality

SLIDER_STEPS_PER_SIGMA = 2  # the slider moves in 0.5 noise-level units
MAX_SIGMA = 75.0
SCALE_STEPS = 100  # with Auto the slider is a scale on Auto's noise map, in steps of 0.01
PANEL_WIDTH = 270

if TYPE_CHECKING:
    from denoiser.core.inference.controls import Controls
    from denoiser.core.noise.level import NoiseLevel


QUALITY_TIP = ("Fast runs the model's 8-bit build; Standard runs it once; Better, High and Best average it "
               "over flipped and rotated copies of the photo: a little cleaner, each pass as long as the first")


def quality_combo(quality: Quality = STANDARD) -> QComboBox:
    """A Quality box (gui.quality.CHOICES) set to `quality`; the side panel and the batch window both use it."""
    combo = QComboBox()
    for value, title, tip in CHOICES:
        combo.addItem(title, value)
        combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    combo.setToolTip(QUALITY_TIP)
    select_quality(combo, quality)
    return combo


def select_quality(combo: QComboBox, quality: Quality) -> None:
    """Chooses `quality` in a quality_combo (Standard when it is not one of the choices or not offered)."""
    index = next((i for i in range(combo.count()) if combo.itemData(i) == quality), -1)
    if index < 0 or not combo.model().item(index).isEnabled():  # type: ignore[attr-defined]  # a QStandardItemModel
        index = next(i for i in range(combo.count()) if combo.itemData(i) == STANDARD)
    combo.setCurrentIndex(index)


def offer_int8(combo: QComboBox, why_not: str | None) -> bool:
    """Enables Fast in a quality_combo, or disables it with `why_not` as its tooltip (and on the box); a box
    showing Fast moves to Standard. Returns True when that happened (the caller says so)."""
    index = next(i for i in range(combo.count()) if combo.itemData(i) == FAST)
    combo.model().item(index).setEnabled(why_not is None)  # type: ignore[attr-defined]  # a QStandardItemModel
    combo.setItemData(index, why_not or CHOICES[0][2], Qt.ItemDataRole.ToolTipRole)
    combo.setToolTip(QUALITY_TIP + (f".\n{why_not}." if why_not else ""))
    if why_not is not None and combo.currentIndex() == index:
        select_quality(combo, STANDARD)
        return True
    return False


def device_title(device: str) -> str:
    if device == "auto":
        return "Auto"
    if device == "cpu":
        return "CPU"
    if device.startswith("cuda"):
        return f"CUDA GPU {device.partition(':')[2] or '0'}"
    return device.upper()


class ControlsPanel(QWidget):
    model_changed = Signal(str)
    device_changed = Signal(str)
    strength_changed = Signal()
    quality_changed = Signal()
    tone_changed = Signal()  # luminance / colour / detail sliders (core.inference.controls)
    denoise_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(self._model_box())
        layout.addWidget(self._strength_box())
        layout.addWidget(self._tone_box())
        layout.addWidget(self._quality_box())
        layout.addWidget(self._device_box())
        self.denoise_button = QPushButton("Denoise")
        self.denoise_button.setToolTip("Denoise the whole photo (Ctrl+Return)")
        self.denoise_button.clicked.connect(self.denoise_clicked)
        layout.addWidget(self.denoise_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel (Esc)")
        self.cancel_button.setToolTip("Stop the run; the photo on screen stays as it was (Esc)")
        self.cancel_button.clicked.connect(self.cancel_clicked)
        for w in (self.progress, self.status, self.cancel_button):
            layout.addWidget(w)
        layout.addStretch(1)
        self.setFixedWidth(PANEL_WIDTH)  # messages must not resize the image views while the user looks
        self._started = 0.0
        self.busy = self._cancelling = False
        self.set_busy(False, "")
        self.set_estimated_sigma(None)

    # --- construction -------------------------------------------------------------------------
    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        self.model_combo = QComboBox()
        self.model_combo.addItem("Loading models…")
        self.model_combo.setEnabled(False)
        self.model_combo.setToolTip("The trained network that removes the noise; Model ▸ Manage models… says what "
                                    "each one is for")
        self.model_combo.currentIndexChanged.connect(self._emit_model)
        QVBoxLayout(box).addWidget(self.model_combo)
        return box

    def _strength_box(self) -> QGroupBox:
        box = QGroupBox("Noise level")
        self.auto_check = QCheckBox("Auto")
        self.auto_check.setChecked(True)
        self.auto_check.setToolTip("Auto measures the photo's noise pixel by pixel (shadows and highlights differ) "
                                   "and removes it; the slider then drives it harder or softer")
        self.estimate_label = QLabel()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, int(MAX_SIGMA * SLIDER_STEPS_PER_SIGMA))
        self.slider.setValue(15 * SLIDER_STEPS_PER_SIGMA)
        self.slider.setToolTip("With Auto off: how much noise to remove, the same everywhere in the photo "
                               "(in 8-bit steps: 5 is faint, 25 strong, 50 very heavy)")
        self.scale_slider = QSlider(Qt.Orientation.Horizontal)
        self.scale_slider.setRange(int(SCALE_RANGE[0] * SCALE_STEPS), int(SCALE_RANGE[1] * SCALE_STEPS))
        self.scale_slider.setValue(SCALE_STEPS)
        self.scale_slider.setToolTip("How hard Auto works: 1.00 removes the noise as measured, 2.00 twice as "
                                     "much, 0.50 half (keeps more grain)")
        self.slider_label = QLabel()
        self.slider_label.setMinimumWidth(64)
        top = QHBoxLayout()
        top.addWidget(self.auto_check)
        top.addWidget(self.estimate_label, 1)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.scale_slider, 1)
        row.addWidget(self.slider_label)
        col = QVBoxLayout(box)
        col.addLayout(top)
        col.addLayout(row)
        self.auto_check.toggled.connect(self._auto_toggled)
        self.slider.valueChanged.connect(self._slider_moved)
        self.scale_slider.valueChanged.connect(self._slider_moved)
        self._auto_toggled(True)
        return box

    def _tone_box(self) -> QGroupBox:
        """Luminance and colour noise removed (100 % = all of the run's), detail returned (0 % = none)."""
        box = QGroupBox("Noise and detail")
        form = QFormLayout(box)
        self.tone_sliders: dict[str, QSlider] = {}
        for key, label, default, tip in (
                ("luma", "Luminance", 100, "How much of the brightness noise to remove (100 %: all of it)"),
                ("chroma", "Colour", 100, "How much of the colour noise to remove (100 %: all of it)"),
                ("detail", "Detail", 0, "Return this much of the removed signal, more on edges and texture")):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(default)
            slider.setToolTip(tip)
            value = QLabel(f"{default} %")
            value.setMinimumWidth(40)
            slider.valueChanged.connect(lambda v, lab=value: lab.setText(f"{v} %"))
            slider.valueChanged.connect(lambda _v: self.tone_changed.emit())
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(value)
            form.addRow(label, row)
            self.tone_sliders[key] = slider
        return box

    def tone_controls(self) -> Controls:
        """The sliders as core.inference.controls.Controls (100 % luminance/colour = the run's full removal)."""
        from denoiser.core.inference.controls import AUTO, Component, Controls

        def part(key: str) -> Component:
            v = self.tone_sliders[key].value()
            return AUTO if v >= 100 else Component("scale", v / 100)

        return Controls(luma=part("luma"), chroma=part("chroma"), detail=self.tone_sliders["detail"].value() / 100)

    def tone_kwargs(self) -> dict[str, Controls]:
        """{"controls": ...} for a run when a slider is off its default; {} for the plain run."""
        controls = self.tone_controls()
        return {} if controls.plain else {"controls": controls}

    def _quality_box(self) -> QGroupBox:
        box = QGroupBox("Quality")
        self.quality_combo = quality_combo()
        self.quality_is_default = False  # True while the box shows the default, not a choice (use_default_quality)
        self.quality_combo.currentIndexChanged.connect(lambda _i: self.quality_changed.emit())
        self.quality_combo.activated.connect(lambda _i: self._quality_picked())
        QVBoxLayout(box).addWidget(self.quality_combo)
        return box

    def _device_box(self) -> QGroupBox:
        box = QGroupBox("Device")
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.setToolTip("Where the work runs: a graphics card (GPU) is many times faster than the CPU")
        self.device_combo.currentIndexChanged.connect(self._emit_device)
        self.device_in_use = QLabel("in use: —")
        self.device_in_use.setWordWrap(True)
        form = QFormLayout(box)
        form.addRow(self.device_combo)
        form.addRow(self.device_in_use)
        return box

    # --- models and devices -------------------------------------------------------------------
    def set_models(self, entries: list, selected: str = "") -> None:
        """entries: core.model.registry.ModelEntry list. Keeps `selected` (or the first) chosen."""
        from denoiser.core.model.foreign import CommunityEntry  # torch is loaded by now (the catalogue job)
        from denoiser.core.model.profiles import AUTO_MODEL, profile_of

        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        if any(getattr(e, "card", None) is not None and profile_of(e) for e in entries):  # a camera profile exists
            self.model_combo.addItem("Auto: your camera's profile, else the default", AUTO_MODEL)
        for e in entries:
            kind = "shipped" if e.builtin else "community" if isinstance(e, CommunityEntry) else "yours"
            self.model_combo.addItem(f"{e.name}  ({kind})", e.name)
        if not entries:
            self.model_combo.addItem("No model installed", None)
        index = self.model_combo.findData(selected) if selected else -1
        self.model_combo.setCurrentIndex(max(0, index))
        self.model_combo.setEnabled(bool(entries))
        self.model_combo.blockSignals(False)
        self._emit_model()

    def set_devices(self, devices: list[str], selected: str = "auto") -> None:
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for d in devices:
            self.device_combo.addItem(device_title(d), d)
        index = self.device_combo.findData(selected)
        self.device_combo.setCurrentIndex(max(0, index))
        self.device_combo.blockSignals(False)
        if index < 0 and selected != "auto":
            self.device_in_use.setText(f"{selected} is not available here; using Auto")

    def model_name(self) -> str | None:
        return self.model_combo.currentData()

    def device(self) -> str:
        return self.device_combo.currentData() or "auto"

    def set_device_in_use(self, text: str) -> None:
        self.device_in_use.setText(f"in use: {text}")

    @Slot()
    def _emit_model(self) -> None:
        if self.model_name():
            self.model_changed.emit(self.model_name())

    @Slot()
    def _emit_device(self) -> None:
        self.device_changed.emit(self.device())

    # --- strength -----------------------------------------------------------------------------
    def sigma(self) -> float | None:
        """None = Auto (the core estimates the noise level)."""
        return None if self.auto_check.isChecked() else self.manual_sigma()

    def manual_sigma(self) -> float:
        return self.slider.value() / SLIDER_STEPS_PER_SIGMA

    def strength_scale(self) -> float:
        """With Auto: the scale on its noise map (1.0 = as measured)."""
        return self.scale_slider.value() / SCALE_STEPS

    def set_strength(self, auto: bool, sigma: float, scale: float = 1.0) -> None:
        self.slider.setValue(round(sigma * SLIDER_STEPS_PER_SIGMA))
        self.scale_slider.setValue(round(scale * SCALE_STEPS))
        self.auto_check.setChecked(auto)

    def set_estimated_sigma(self, sigma: NoiseLevel | None, pending: bool = False) -> None:
        if pending:
            self.estimate_label.setText("measuring the noise…")
        elif sigma is None:
            self.estimate_label.setText("noise: —")
        else:
            varying = sigma.map is not None
            self.estimate_label.setText(f"measured <small>{sigma:.1f}</small>")
            how = ("pixel by pixel (Auto removes more where the photo is noisier); this is its average" if varying
                   else "as one level for the whole photo")
            self.estimate_label.setToolTip(f"The photo's noise level, measured {how}: {sigma:.1f} in 8-bit steps")

    @Slot(bool)
    def _auto_toggled(self, auto: bool) -> None:
        self.slider.setVisible(not auto)
        self.scale_slider.setVisible(auto)
        self._slider_moved(0, emit=False)
        self.strength_changed.emit()

    @Slot(int)
    def _slider_moved(self, _value: int, emit: bool = True) -> None:
        if self.auto_check.isChecked():
            self.slider_label.setText(f"× {self.strength_scale():.2f}")
        else:
            self.slider_label.setText(f"{self.manual_sigma():.1f}")
        if emit:
            self.strength_changed.emit()

    # --- quality ------------------------------------------------------------------------------
    def quality(self) -> Quality:
        return self.quality_combo.currentData()

    def passes(self) -> int:
        return self.quality().passes

    def precision(self) -> str:
        return self.quality().precision

    def set_quality(self, quality: Quality) -> None:
        """Chooses `quality` (Standard when it is not one of the choices or not offered): the user's choice, kept
        as the model and device change."""
        was_default, before = self.quality_is_default, self.quality_combo.currentIndex()
        self.quality_is_default = False
        select_quality(self.quality_combo, quality)
        if was_default and self.quality_combo.currentIndex() == before:
            self.quality_changed.emit()  # the default shown is now a choice: remembered

    def use_default_quality(self) -> None:
        """No quality chosen yet: the box shows gui.quality.default_quality, Fast where it is offered, and
        follows it as the model and device change until the user picks one."""
        self.quality_is_default = True
        select_quality(self.quality_combo, FAST)

    def _quality_picked(self) -> None:
        if self.quality_is_default:  # the user's pick (also of the default shown): remembered from now on
            self.quality_is_default = False
            self.quality_changed.emit()

    def set_passes(self, passes: int) -> None:
        """Chooses `passes` in full precision (Standard when it is not one of the choices)."""
        self.set_quality(Quality(passes))

    def offer_int8(self, why_not: str | None) -> None:
        """Fast offered, or not and why (gui.quality.int8_unavailable); a panel on Fast moves to Standard and
        says so."""
        if self.quality_is_default:
            offer_int8(self.quality_combo, why_not)
            select_quality(self.quality_combo, default_quality(why_not))
        elif offer_int8(self.quality_combo, why_not):
            self.set_message(f"{why_not}. Quality is now Standard.")

    # --- work ---------------------------------------------------------------------------------
    def set_busy(self, busy: bool, text: str | None = None, indeterminate: bool = False) -> None:
        """text None keeps the current message (e.g. 'Done in 3 s' after a run)."""
        self._started = time.monotonic()
        self.busy, self._cancelling = busy, False
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel (Esc)")
        self.progress.setVisible(busy)
        self.progress.setRange(0, 0 if indeterminate else 1000)
        self.progress.setValue(0)
        self.cancel_button.setVisible(busy)
        self.denoise_button.setEnabled(not busy)
        if text is not None:
            self.status.setText(text)

    def set_cancelling(self) -> None:
        """Said at once when the user cancels; progress reports arriving until the run stops leave it."""
        self._cancelling = True
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.status.setText("Cancelling… (stops after the current tile)")

    def set_progress(self, fraction: float, message: str = "") -> None:
        if self._cancelling:
            return
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1000)
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        eta = format_eta(time.monotonic() - self._started, fraction)
        self.status.setText(f"{fraction * 100:.0f} % — {eta}" + (f"\n{message}" if message else ""))

    def set_message(self, text: str) -> None:
        self.status.setText(text)


def scrolling(panel: QWidget) -> QScrollArea:
    """`panel` (fixed width) in a vertical-only scroll area as wide as the panel plus its scroll bar."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = area.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
    area.setFixedWidth(panel.width() + bar)
    return area
