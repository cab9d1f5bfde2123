"""Menus, toolbar and shortcuts of the main window, in one place (standard QKeySequences where Qt has one)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from denoiser.gui.compare_view import Mode

if TYPE_CHECKING:
    from denoiser.gui.main_window import MainWindow

Keys = QKeySequence.StandardKey


class Actions:
    """All QActions of the window, as attributes, so tests and menus use the very same objects."""

    def __init__(self, w: "MainWindow") -> None:
        def act(text: str, slot: Callable, *keys: QKeySequence | Keys | str, tip: str = "") -> QAction:
            a = QAction(text, w)
            seqs = [k if isinstance(k, QKeySequence) else QKeySequence(k) for k in keys]
            if seqs:
                a.setShortcuts(seqs)
            if tip:
                a.setToolTip(tip)
            a.triggered.connect(lambda _checked=False: slot())
            w.addAction(a)  # shortcuts work while the menu bar is hidden too
            return a

        self.open = act("&Open…", w.open_dialog, Keys.Open)
        self.save_as = act("Save &As…", w.save_as, "Ctrl+Shift+S")
        self.batch = act("&Batch…", lambda: w.open_batch(None), tip="Denoise a whole folder")
        self.quit = act("&Quit", w.close, Keys.Quit)
        self.denoise = act("&Denoise", w.denoise, "Ctrl+Return", "Ctrl+Enter")
        self.cancel = act("&Cancel", w.cancel, "Esc")
        self.fit = act("&Fit", w.compare.state.fit_to_window, "F")
        self.zoom100 = act("100 %", lambda: w.compare.state.set_zoom(1.0), "1")
        self.zoom200 = act("200 %", lambda: w.compare.state.set_zoom(2.0), "2")
        self.zoom_in = act("Zoom &In", lambda: w.compare.state.zoom_by(1.25), "Ctrl+=", Keys.ZoomIn)
        self.zoom_out = act("Zoom &Out", lambda: w.compare.state.zoom_by(0.8), "Ctrl+-", Keys.ZoomOut)
        self.toggle = act("Before / After", w.compare.toggle_before_after, "\\",
                          tip="Flip between the original and the denoised photo (\\)")
        self.finetune = act("&Fine-tune…", w.open_finetune)
        self.manage = act("&Manage models…", w.open_model_manager)
        self.about = act("&About", w.show_about)
        self.modes = QActionGroup(w)
        self.mode_actions: dict[str, QAction] = {}
        for mode, text, key in ((Mode.SIDE_BY_SIDE, "Side by side", "S"), (Mode.SPLIT, "Split", "D"),
                                (Mode.TOGGLE, "Before/after toggle", ""), (Mode.DIFFERENCE, "Removed noise", "N"),
                                (Mode.DETAIL_MAP, "Removed detail map", "M")):
            a = act(text, lambda m=mode: w.compare.set_mode(m), *([key] if key else []))
            a.setCheckable(True)
            if mode == Mode.TOGGLE:
                a.setToolTip("One view; press \\ to flip between the original and the denoised photo")
            self.modes.addAction(a)
            self.mode_actions[mode.value] = a
        self.recent_menu = QMenu("Open &Recent", w)
        w.compare.mode_changed.connect(lambda m: self.mode_actions[m].setChecked(True))

    def build_menus(self, w: "MainWindow") -> None:
        bar = w.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self.open)
        file.addMenu(self.recent_menu)
        file.addAction(self.save_as)
        file.addSeparator()
        file.addAction(self.batch)
        file.addSeparator()
        file.addAction(self.quit)
        view = bar.addMenu("&View")
        for a in self.mode_actions.values():
            view.addAction(a)
        view.addAction(self.toggle)
        view.addSeparator()
        for a in (self.fit, self.zoom100, self.zoom200, self.zoom_in, self.zoom_out):
            view.addAction(a)
        process = bar.addMenu("&Process")
        process.addAction(self.denoise)
        process.addAction(self.cancel)
        model = bar.addMenu("&Model")
        model.addAction(self.finetune)
        model.addAction(self.manage)
        bar.addMenu("&Help").addAction(self.about)

    def build_toolbar(self, w: "MainWindow") -> QToolBar:
        tb = QToolBar("View", w)
        tb.setObjectName("view-toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addAction(self.open)
        tb.addAction(self.save_as)
        tb.addSeparator()
        for a in self.mode_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.fit, self.zoom100, self.zoom200):
            tb.addAction(a)
        return tb
