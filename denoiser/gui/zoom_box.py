"""The zoom level, shown and typeable: an editable box in the toolbar that follows the one ViewState
(wheel, keys, Fit) and sets it when the user types a percentage ("150", "150 %") or picks a preset."""
from __future__ import annotations

import re

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QComboBox, QWidget

from denoiser.gui.view_state import MAX_ZOOM, MIN_ZOOM, ViewState

PRESETS = (25, 50, 100, 200, 400)  # per cent
FIT = "Fit"


def parse_zoom(text: str) -> float | None:
    """'150', '150 %', '150%' -> 1.5; 'fit' -> 0.0 (fit to the window); None when it is not a zoom."""
    text = text.strip().lower()
    if text == FIT.lower():
        return 0.0
    found = re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*%?", text)
    if not found:
        return None
    value = float(found.group(1).replace(",", ".")) / 100
    return value if MIN_ZOOM <= value <= MAX_ZOOM else None


def zoom_text(zoom: float) -> str:
    return f"{zoom * 100:.0f} %" if zoom >= 0.1 else f"{zoom * 100:.1f} %"


class ZoomBox(QComboBox):
    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.addItem(FIT)
        for p in PRESETS:
            self.addItem(f"{p} %")
        self.setToolTip(f"Zoom: type a percentage ({MIN_ZOOM * 100:.1f} to {MAX_ZOOM * 100:.0f}) and press "
                        "Enter, or pick one; 100 % shows one photo pixel on one screen pixel")
        self.setMinimumContentsLength(7)
        self.lineEdit().returnPressed.connect(self._typed)
        self.activated.connect(lambda _i: self._typed())
        state.changed.connect(self._follow)
        self._follow()

    @Slot()
    def _follow(self) -> None:
        if not self.lineEdit().hasFocus() or self.state.fit:
            self.lineEdit().setText(zoom_text(self.state.zoom))

    @Slot()
    def _typed(self) -> None:
        zoom = parse_zoom(self.lineEdit().text())
        if zoom is None:  # not a zoom: show the current one again
            self.lineEdit().setText(zoom_text(self.state.zoom))
            return
        if zoom == 0.0:
            self.state.fit_to_window()
        else:
            self.state.set_zoom(zoom)
        self.lineEdit().setText(zoom_text(self.state.zoom))
