"""One image view: paints pictures through the shared ViewState, turns wheel/drag into view-state commands."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QWidget

from denoiser.gui.display import DisplayImage, Patch
from denoiser.gui.view_state import ZOOM_STEP, ViewState

BACKGROUND = QColor(40, 40, 40)
DIVIDER_GRAB_PX = 8


@dataclass
class Picture:
    """What one side of a view shows: a whole image, maybe with a preview patch on top, and a caption."""

    base: DisplayImage | None
    patch: Patch | None = None
    caption: str = ""


class ImageCanvas(QWidget):
    """Shows `left` (and, in split mode, `right` beyond the divider) through the shared ViewState."""

    divider_moved = Signal(float)

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.left: Picture | None = None
        self.right: Picture | None = None
        self.split: float | None = None  # divider position as a fraction of the width; None = no split
        self.placeholder = ""
        self._drag_last: QPointF | None = None
        self._dragging_divider = False
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        state.changed.connect(self.update)

    # --- content ------------------------------------------------------------------------------
    def show_pictures(self, left: Picture | None, right: Picture | None = None, split: float | None = None) -> None:
        self.left, self.right, self.split = left, right, split
        self.update()

    # --- coordinates --------------------------------------------------------------------------
    def _device_size(self) -> QSizeF:
        dpr = self.devicePixelRatioF()
        return QSizeF(self.width() * dpr, self.height() * dpr)

    def widget_to_image(self, pos: QPointF) -> QPointF:
        dpr, size = self.devicePixelRatioF(), self._device_size()
        z, c = self.state.zoom, self.state.center
        return QPointF(c.x() + (pos.x() * dpr - size.width() / 2) / z, c.y() + (pos.y() * dpr - size.height() / 2) / z)

    def image_to_widget(self, point: QPointF) -> QPointF:
        dpr, size = self.devicePixelRatioF(), self._device_size()
        z, c = self.state.zoom, self.state.center
        return QPointF(((point.x() - c.x()) * z + size.width() / 2) / dpr,
                       ((point.y() - c.y()) * z + size.height() / 2) / dpr)

    def visible_image_rect(self) -> QRectF:
        return self.state.visible_rect(self._device_size())

    # --- painting -----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self.left is None or (self.left.base is None and self.left.patch is None):
            if self.placeholder:
                p.setPen(QColor(200, 200, 200))
                p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.state.zoom < 1.0)
        if self.split is None or self.right is None:
            self._paint_picture(p, self.left, QRectF(self.rect()))
            self._caption(p, self.left.caption, left=True)
        else:
            x = self.split * self.width()
            self._paint_picture(p, self.left, QRectF(0, 0, x, self.height()))
            self._paint_picture(p, self.right, QRectF(x, 0, self.width() - x, self.height()))
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            self._caption(p, self.left.caption, left=True)
            self._caption(p, self.right.caption, left=False)
        p.end()

    def _paint_picture(self, p: QPainter, pic: Picture, clip: QRectF) -> None:
        p.save()
        p.setClipRect(clip)
        if pic.base is not None:
            full = QRectF(0, 0, pic.base.size.width(), pic.base.size.height())
            self._paint_image(p, pic.base, full)
        if pic.patch is not None:
            self._paint_image(p, pic.patch.image, QRectF(pic.patch.rect))
        p.restore()

    def _paint_image(self, p: QPainter, image: DisplayImage, where: QRectF) -> None:
        """Draw `image` covering image-coordinate rect `where`, only its visible part, from a fitting level."""
        seen = where.intersected(self.visible_image_rect())
        if seen.isEmpty():
            return
        k = image.level_for(self.state.zoom)
        level = image.levels[k]
        sx, sy = level.width() / where.width(), level.height() / where.height()
        source = QRectF((seen.x() - where.x()) * sx, (seen.y() - where.y()) * sy, seen.width() * sx, seen.height() * sy)
        tl, br = self.image_to_widget(seen.topLeft()), self.image_to_widget(seen.bottomRight())
        p.drawImage(QRectF(tl, br), level, source)

    def _caption(self, p: QPainter, text: str, left: bool) -> None:
        if not text:
            return
        metrics = p.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 6
        x = 8 if left else self.width() - w - 8
        box = QRectF(x, 8, w, h)
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor(235, 235, 235))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # --- input --------------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.isVisible():
            self.state.set_viewport(self._device_size())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.state.set_viewport(self._device_size())

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.state.zoom_at(ZOOM_STEP ** steps, self.widget_to_image(event.position()))
        event.accept()

    def _near_divider(self, x: float) -> bool:
        return self.split is not None and abs(x - self.split * self.width()) <= DIVIDER_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self._dragging_divider = self._near_divider(event.position().x())
        self._drag_last = event.position()
        if not self._dragging_divider:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag_last is None:
            split_hover = self._near_divider(pos.x())
            self.setCursor(Qt.CursorShape.SplitHCursor if split_hover else Qt.CursorShape.OpenHandCursor)
            return
        if self._dragging_divider:
            self.set_split(pos.x() / max(1, self.width()))
        else:
            dpr = self.devicePixelRatioF()
            self.state.pan_by((pos.x() - self._drag_last.x()) * dpr, (pos.y() - self._drag_last.y()) * dpr)
        self._drag_last = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag_last = None
        self._dragging_divider = False
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    @Slot(float)
    def set_split(self, fraction: float) -> None:
        if self.split is None:
            return
        self.split = max(0.0, min(1.0, fraction))
        self.divider_moved.emit(self.split)
        self.update()
