"""The ONE view state (zoom, centre) that every image view listens to; views never talk to each other."""
from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QRectF, QSize, QSizeF, Signal

MIN_ZOOM, MAX_ZOOM = 1 / 64, 32.0
ZOOM_STEP = 1.25


class ViewState(QObject):
    """zoom = device pixels per image pixel (1.0 = 100 %, one image pixel on one screen pixel);
    centre = the image point shown in the middle of every view. `fit` keeps the whole image visible
    when views resize, until the user zooms or pans."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.zoom = 1.0
        self.center = QPointF(0, 0)
        self.fit = True
        self.image_size = QSize()
        self._viewport = QSizeF(1, 1)  # device pixels of the views, for fitting

    # --- inputs -------------------------------------------------------------------------------
    def set_image_size(self, size: QSize) -> None:
        """A new photo: keep the view if the size is the same (e.g. the denoised result), else fit."""
        if size == self.image_size:
            return
        self.image_size = QSize(size)
        self.fit_to_window()

    def set_viewport(self, device_size: QSizeF) -> None:
        self._viewport = QSizeF(max(1.0, device_size.width()), max(1.0, device_size.height()))
        if self.fit:
            self.fit_to_window()

    # --- commands -----------------------------------------------------------------------------
    def fit_to_window(self) -> None:
        self.fit = True
        w, h = self.image_size.width(), self.image_size.height()
        if w > 0 and h > 0:
            self.zoom = _clamp(min(self._viewport.width() / w, self._viewport.height() / h))
            self.center = QPointF(w / 2, h / 2)
        self.changed.emit()

    def set_zoom(self, zoom: float) -> None:
        """Zoom about the current centre (keyboard shortcuts, 100 %, 200 %)."""
        self.fit = False
        self.zoom = _clamp(zoom)
        self.changed.emit()

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def zoom_at(self, factor: float, image_point: QPointF) -> None:
        """Wheel zoom: the image point under the cursor stays under the cursor."""
        new_zoom = _clamp(self.zoom * factor)
        ratio = self.zoom / new_zoom
        self.center = image_point + (self.center - image_point) * ratio
        self.zoom = new_zoom
        self.fit = False
        self.changed.emit()

    def pan_by(self, device_dx: float, device_dy: float) -> None:
        """Drag: the image follows the mouse."""
        self.center = QPointF(self.center.x() - device_dx / self.zoom, self.center.y() - device_dy / self.zoom)
        self.fit = False
        self.changed.emit()

    def set_center(self, point: QPointF) -> None:
        self.center = QPointF(point)
        self.fit = False
        self.changed.emit()

    # --- geometry -----------------------------------------------------------------------------
    def visible_rect(self, device_size: QSizeF) -> QRectF:
        """The image rectangle a view of this many device pixels shows (may extend past the image)."""
        w, h = device_size.width() / self.zoom, device_size.height() / self.zoom
        return QRectF(self.center.x() - w / 2, self.center.y() - h / 2, w, h)


def _clamp(zoom: float) -> float:
    return max(MIN_ZOOM, min(MAX_ZOOM, zoom))
