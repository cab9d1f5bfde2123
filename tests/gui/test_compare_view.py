"""Compare view: one shared view state (zoom/pan sync), wheel zoom about the cursor, split and toggle modes."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from denoiser.gui.compare_view import CompareView, Mode
from denoiser.gui.display import Patch, make_display

RED, BLUE, GREEN = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)


def solid(rgb: tuple[float, float, float], h: int = 400, w: int = 600) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.float32), (h, w, 3)).copy()


@pytest.fixture
def view(qtbot):
    v = CompareView()
    qtbot.addWidget(v)
    v.resize(800, 400)
    v.show()
    qtbot.waitExposed(v)
    v.set_original(make_display(solid(RED)))
    return v


def colour_at(widget, x: int, y: int) -> tuple[int, int, int]:
    img = widget.grab().toImage()
    dpr = img.devicePixelRatio()
    c = QColor(img.pixel(int(x * dpr), int(y * dpr)))
    return c.red(), c.green(), c.blue()


def wheel(widget, pos: QPointF, steps: int = 1) -> None:
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def mouse(widget, kind, pos: QPointF, buttons=Qt.MouseButton.LeftButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def drag(widget, start: QPointF, end: QPointF) -> None:
    mouse(widget, QMouseEvent.Type.MouseButtonPress, start)
    mouse(widget, QMouseEvent.Type.MouseMove, (start + end) / 2)
    mouse(widget, QMouseEvent.Type.MouseMove, end)
    mouse(widget, QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def test_starts_fitted_and_both_views_show_the_same_region(view: CompareView) -> None:
    assert view.state.fit
    left, right = view.before_canvas.visible_image_rect(), view.after_canvas.visible_image_rect()
    assert left == right
    assert left.contains(QRect(0, 0, 600, 400).toRectF())  # the whole photo is visible


def test_wheel_zoom_in_one_view_zooms_both_about_the_cursor(view: CompareView) -> None:
    before = view.before_canvas
    cursor = QPointF(100, 150)
    under_cursor = before.widget_to_image(cursor)
    zoom0 = view.state.zoom
    wheel(before, cursor, 2)
    assert view.state.zoom == pytest.approx(zoom0 * 1.25 ** 2)
    assert not view.state.fit
    moved = before.widget_to_image(cursor)  # the same image point stays under the cursor
    assert moved.x() == pytest.approx(under_cursor.x(), abs=1e-6)
    assert moved.y() == pytest.approx(under_cursor.y(), abs=1e-6)
    assert view.after_canvas.visible_image_rect() == before.visible_image_rect()


def test_drag_in_the_right_view_pans_both(view: CompareView) -> None:
    view.state.set_zoom(2.0)
    c0 = QPointF(view.state.center)
    drag(view.after_canvas, QPointF(200, 200), QPointF(260, 170))
    dpr = view.after_canvas.devicePixelRatioF()
    assert view.state.center.x() == pytest.approx(c0.x() - 60 * dpr / 2.0)
    assert view.state.center.y() == pytest.approx(c0.y() + 30 * dpr / 2.0)
    assert view.before_canvas.visible_image_rect() == view.after_canvas.visible_image_rect()


def test_zoom_commands_and_fit(view: CompareView) -> None:
    view.state.set_zoom(1.0)
    assert view.state.zoom == 1.0 and not view.state.fit
    view.state.zoom_by(2.0)
    assert view.state.zoom == 2.0
    view.state.fit_to_window()
    assert view.state.fit and view.state.zoom < 1.0  # 600x400 in a ~400x400 view


def test_side_by_side_shows_original_left_and_result_right(view: CompareView) -> None:
    view.set_result(make_display(solid(BLUE)), make_display(solid(GREEN)))
    QApplication.processEvents()
    assert colour_at(view.before_canvas, 200, 200) == (255, 0, 0)
    assert colour_at(view.after_canvas, 200, 200) == (0, 0, 255)


def test_split_mode_shows_both_sides_of_a_draggable_divider(view: CompareView) -> None:
    view.set_result(make_display(solid(BLUE)), None)
    view.set_mode(Mode.SPLIT)
    QApplication.processEvents()
    canvas = view.after_canvas
    assert not view.before_canvas.isVisible()
    w = canvas.width()
    assert colour_at(canvas, int(w * 0.25), 200) == (255, 0, 0)  # before, left of the divider
    assert colour_at(canvas, int(w * 0.75), 200) == (0, 0, 255)  # after, right of it
    drag(canvas, QPointF(w * 0.5, 200), QPointF(w * 0.8, 200))
    assert canvas.split == pytest.approx(0.8, abs=0.01)
    assert view.split_fraction == pytest.approx(0.8, abs=0.01)
    assert colour_at(canvas, int(w * 0.7), 200) == (255, 0, 0)  # the original now reaches further


def test_backslash_toggles_before_and_after(view: CompareView, qtbot) -> None:
    view.set_result(make_display(solid(BLUE)), None)
    view.toggle_before_after()
    assert view.mode == Mode.TOGGLE and view.showing_before
    QApplication.processEvents()
    assert colour_at(view.after_canvas, 100, 100) == (255, 0, 0)
    view.toggle_before_after()
    QApplication.processEvents()
    assert not view.showing_before
    assert colour_at(view.after_canvas, 100, 100) == (0, 0, 255)


def test_difference_view_and_preview_patch(view: CompareView) -> None:
    view.set_mode(Mode.DIFFERENCE)
    assert view.after_canvas.left is None  # nothing removed yet: a hint instead
    patch = Patch(make_display(solid(BLUE, 100, 100)), QRect(250, 150, 100, 100))
    diff = Patch(make_display(solid(GREEN, 100, 100)), QRect(250, 150, 100, 100))
    view.set_preview(patch, diff)
    assert view.after_canvas.left.patch is diff
    view.set_mode(Mode.SIDE_BY_SIDE)
    assert view.after_canvas.left.patch is patch
    QApplication.processEvents()
    centre = view.after_canvas.image_to_widget(QPointF(300, 200))
    assert colour_at(view.after_canvas, int(centre.x()), int(centre.y())) == (0, 0, 255)


def test_icc_profile_is_converted_for_display() -> None:
    from PySide6.QtGui import QColorSpace

    adobe = QColorSpace(QColorSpace.NamedColorSpace.AdobeRgb).iccProfile()
    assert len(adobe) > 0
    colour = (0.2, 0.6, 0.3)
    plain = make_display(solid(colour, 8, 8))
    managed = make_display(solid(colour, 8, 8), bytes(adobe))
    srgb = QColorSpace(QColorSpace.NamedColorSpace.SRgb).iccProfile()
    same = make_display(solid(colour, 8, 8), bytes(srgb))
    expected = tuple(int(c * 255 + 0.5) for c in colour)
    assert QColor(plain.levels[0].pixel(4, 4)).getRgb()[:3] == expected
    assert QColor(same.levels[0].pixel(4, 4)).getRgb()[:3] == expected  # sRGB in, sRGB out: untouched
    r, g, b = QColor(managed.levels[0].pixel(4, 4)).getRgb()[:3]
    assert r < expected[0] - 20  # Adobe RGB is wider: the same numbers mean a more saturated green


def test_difference_is_amplified_more_for_light_noise(view: CompareView) -> None:
    from denoiser.gui.display import difference, difference_gain

    assert difference_gain(5.0) == 8.0 and difference_gain(25.0) == 1.6 and difference_gain(80.0) == 1.0
    orig = solid((0.5, 0.5, 0.5), 4, 4)
    cleaned = orig - 0.01
    assert difference(orig, cleaned, 4.0)[0, 0, 0] == pytest.approx(0.54)  # mid-grey + 4 x removed
    view.set_result(make_display(solid(BLUE)), make_display(solid(GREEN)), gain=1.6)
    view.set_mode(Mode.DIFFERENCE)
    assert view.after_canvas.left.caption.startswith("Removed noise (×1.6")
