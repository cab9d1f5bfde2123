"""Original vs cleaned: side by side, split with a divider, before/after toggle, the removed noise, or the
removed-detail map (where the removed signal still has structure: core.inference.detail_map).

Both canvases listen to ONE ViewState, so zooming or panning either moves both.
"""
from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QRect, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QWidget

from denoiser.gui.canvas import ImageCanvas, Picture
from denoiser.gui.display import DisplayImage, Patch
from denoiser.gui.view_state import ViewState


class Mode(StrEnum):
    SIDE_BY_SIDE = "side"
    SPLIT = "split"
    TOGGLE = "toggle"
    DIFFERENCE = "difference"
    DETAIL_MAP = "detail_map"


class CompareView(QWidget):
    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState(self)
        self.before_canvas = ImageCanvas(self.state, self)
        self.after_canvas = ImageCanvas(self.state, self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.before_canvas)
        layout.addWidget(self.after_canvas)
        self.mode = Mode.SIDE_BY_SIDE
        self.showing_before = False  # toggle mode: which side is on screen
        self.split_fraction = 0.5
        self.after_canvas.divider_moved.connect(self._remember_split)
        self.original: DisplayImage | None = None
        self.result: DisplayImage | None = None
        self.difference: DisplayImage | None = None
        self.preview: Patch | None = None
        self.preview_difference: Patch | None = None
        self.gain = 1.0  # amplification of the removed-noise view, shown in its caption
        self.detail_map: DisplayImage | None = None  # removed-detail map of the full result
        self.preview_detail_map: Patch | None = None
        self.detail_score: float | None = None  # % of the photo flagged, in the map's caption
        self.preview_detail_score: float | None = None  # % of the preview region flagged
        self._refresh()

    # --- content ------------------------------------------------------------------------------
    def set_original(self, image: DisplayImage | None) -> None:
        """A new photo: forget the previous result and preview."""
        self.original, self.result, self.difference = image, None, None
        self.preview = self.preview_difference = None
        self.detail_map = self.preview_detail_map = self.detail_score = self.preview_detail_score = None
        if image is not None:
            self.state.set_image_size(image.size)
        self._refresh()

    def set_result(self, result: DisplayImage | None, difference: DisplayImage | None, gain: float = 1.0) -> None:
        self.result, self.difference, self.gain = result, difference, gain
        self.preview = self.preview_difference = None
        self._refresh()

    def set_detail_map(self, image: DisplayImage | None, score: float | None = None) -> None:
        """The full result's removed-detail map (drops the preview's)."""
        self.detail_map, self.detail_score = image, score
        self.preview_detail_map = self.preview_detail_score = None
        self._refresh()

    def set_preview_detail_map(self, patch: Patch | None, score: float | None = None) -> None:
        self.preview_detail_map, self.preview_detail_score = patch, score
        self._refresh()

    def set_preview(self, preview: Patch | None, difference: Patch | None = None, gain: float = 1.0) -> None:
        self.preview, self.preview_difference = preview, difference
        if difference is not None:
            self.gain = gain
        self._refresh()

    # --- modes --------------------------------------------------------------------------------
    @Slot(str)
    def set_mode(self, mode: str | Mode) -> None:
        self.mode = Mode(mode)
        self.showing_before = False
        self._refresh()
        self.mode_changed.emit(self.mode.value)

    @Slot()
    def toggle_before_after(self) -> None:
        """Backslash, as in Lightroom: flip between the original and the cleaned photo."""
        if self.mode != Mode.TOGGLE:
            self.mode = Mode.TOGGLE
            self.showing_before = True
            self.mode_changed.emit(self.mode.value)
        else:
            self.showing_before = not self.showing_before
        self._refresh()

    @Slot(float)
    def _remember_split(self, fraction: float) -> None:
        self.split_fraction = fraction

    # --- pictures -----------------------------------------------------------------------------
    def _before(self) -> Picture:
        return Picture(self.original, None, "Original")

    def _after(self) -> Picture:
        if self.preview is not None:
            caption = "Preview (visible region)"
        elif self.result is not None:
            caption = "Denoised"
        else:
            caption = "Original (not denoised yet)"
        return Picture(self.result or self.original, self.preview, caption)

    def _difference(self) -> Picture:
        return Picture(self.difference, self.preview_difference, f"Removed noise (×{self.gain:g}, grey = nothing)")

    def detail_caption(self) -> str:
        """The map's caption: the flagged (magenta) share of what it shows, the preview region or the photo."""
        if self.preview_detail_map is not None:
            score, where = self.preview_detail_score, "of the previewed region"
        else:
            score, where = self.detail_score, "of the photo"
        share = f": {score:.2f} % {where} in magenta" if score is not None else " in magenta"
        return f"Removed detail{share}"

    def _detail_map(self) -> Picture:
        return Picture(self.detail_map, self.preview_detail_map, self.detail_caption())

    def _refresh(self) -> None:
        side = self.mode == Mode.SIDE_BY_SIDE
        self.before_canvas.setVisible(side)
        after = self.after_canvas
        after.placeholder = "Open a photo (Ctrl+O) or drop one here"
        if self.original is None:
            self.before_canvas.show_pictures(None)
            after.show_pictures(None)
        elif side:
            self.before_canvas.show_pictures(self._before())
            after.show_pictures(self._after())
        elif self.mode == Mode.SPLIT:
            after.show_pictures(self._before(), self._after(), self.split_fraction)
        elif self.mode == Mode.TOGGLE:
            after.show_pictures(self._before() if self.showing_before else self._after())
        elif self.mode == Mode.DETAIL_MAP:
            dmap = self._detail_map()
            if dmap.base is None and dmap.patch is None:
                after.placeholder = "Denoise (or change the strength for a preview) to see the removed-detail map"
            after.show_pictures(dmap if dmap.base is not None or dmap.patch is not None else None)
        else:
            diff = self._difference()
            if diff.base is None and diff.patch is None:
                after.placeholder = "Denoise (or change the strength for a preview) to see the removed noise"
                after.show_pictures(None)
            else:
                after.show_pictures(diff)

    # --- queries ------------------------------------------------------------------------------
    def visible_image_rect(self) -> QRect:
        """The part of the photo the user is looking at (image pixels, clipped to the photo)."""
        if self.original is None:
            return QRect()
        r = self.after_canvas.visible_image_rect().toAlignedRect()
        return r.intersected(QRect(0, 0, self.original.size.width(), self.original.size.height()))
