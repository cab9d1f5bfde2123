"""Menus, toolbar and shortcuts of the main window, in one place (standard QKeySequences where Qt has one)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from denoiser.gui.compare_view import Mode
from denoiser.gui.theme import DEFAULT_THEME, THEMES
from denoiser.gui.zoom_box import ZoomBox

if TYPE_CHECKING:
    from denoiser.gui.controls import ControlsPanel
    from denoiser.gui.main_window import MainWindow
    from denoiser.gui.settings import AppSettings
    from denoiser.gui.window_state import WindowState

Keys = QKeySequence.StandardKey


def unique_sequences(seqs: Iterable[QKeySequence]) -> list[QKeySequence]:
    """The sequences without repeats: a standard key (Keys.ZoomOut) is often the literal one beside it (Ctrl+-)
    on this platform, and Qt then finds the shortcut ambiguous and does nothing."""
    out: list[QKeySequence] = []
    for seq in seqs:
        if not seq.isEmpty() and seq not in out:
            out.append(seq)
    return out


class Actions:
    """All QActions of the window, as attributes, so tests and menus use the very same objects."""

    def __init__(self, w: MainWindow) -> None:
        def act(text: str, slot: Callable, *keys: QKeySequence | Keys | str, tip: str = "") -> QAction:
            a = QAction(text, w)
            seqs = unique_sequences(k if isinstance(k, QKeySequence) else QKeySequence(k) for k in keys)
            if seqs:
                a.setShortcuts(seqs)
            if tip:
                a.setToolTip(tip)
            a.triggered.connect(lambda _checked=False: slot())
            w.addAction(a)  # shortcuts work while the menu bar is hidden too
            return a

        self.open = act("&Open…", w.open_dialog, Keys.Open)
        self.save_as = act("Save &As…", lambda: w.saver.dialog(), Keys.SaveAs, Keys.Save,
                           tip="Save the photo with the settings on screen (Ctrl+S); runs the whole photo first "
                               "when only a preview has been made")
        self.batch = act("&Batch…", lambda: w.dialogs.batch(None), tip="Denoise a whole folder")
        self.quit = act("&Quit", w.close, Keys.Quit, "Ctrl+Q")  # Keys.Quit is empty on some platforms
        self.denoise = act("&Denoise", w.denoise, "Ctrl+Return", "Ctrl+Enter")
        self.cancel = act("&Cancel", w.cancel, "Esc")
        self.fit = act("&Fit", w.compare.state.fit_to_window, "F")
        self.zoom100 = act("100 %", lambda: w.compare.state.set_zoom(1.0), "1")
        self.zoom200 = act("200 %", lambda: w.compare.state.set_zoom(2.0), "2")
        self.zoom_in = act("Zoom &In", lambda: w.compare.state.zoom_by(1.25), "Ctrl+=", Keys.ZoomIn)
        self.zoom_out = act("Zoom &Out", lambda: w.compare.state.zoom_by(0.8), "Ctrl+-", Keys.ZoomOut)
        self.toggle = act("Before / After", w.compare.toggle_before_after, "\\",
                          tip="Flip between the original and the denoised photo (\\)")
        self.finetune = act("&Fine-tune…", lambda: w.dialogs.finetune())
        self.manage = act("&Manage models…", lambda: w.dialogs.model_manager())
        self.about = act("&About", lambda: w.dialogs.about())
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
        self.themes = QActionGroup(w)
        self.theme_actions: dict[str, QAction] = {}
        for key, title in THEMES.items():
            a = QAction(title, w, checkable=True)
            a.triggered.connect(lambda _c=False, k=key: w.set_theme(k))
            self.themes.addAction(a)
            self.theme_actions[key] = a
        self.check_theme(w.settings.theme)

    def observe(self, state: WindowState, controls: ControlsPanel) -> None:
        """Save and Denoise follow the state: both are available as soon as a photo is open."""
        for signal in (state.photo_changed, state.result_changed, state.catalogue_changed):
            signal.connect(lambda: self.update_enabled(state, controls))
        self.update_enabled(state, controls)

    def update_enabled(self, state: WindowState, controls: ControlsPanel) -> None:
        has_photo = state.photo is not None
        self.denoise.setEnabled(has_photo)
        self.save_as.setEnabled(has_photo)
        if not controls.busy:  # idle: Denoise needs a photo
            controls.denoise_button.setEnabled(has_photo)

    def check_theme(self, theme: str) -> None:
        self.theme_actions.get(theme, self.theme_actions[DEFAULT_THEME]).setChecked(True)

    def rebuild_recent(self, settings: AppSettings, open_path: Callable[[str], None]) -> None:
        """File ▸ Open Recent from the settings' list, with Clear list."""
        menu = self.recent_menu
        menu.clear()
        for f in settings.recent_files():
            menu.addAction(Path(f).name, lambda f=f: open_path(f)).setToolTip(f)
        menu.addSeparator()
        menu.addAction("Clear list", lambda: (settings.clear_recent(), self.rebuild_recent(settings, open_path)))
        menu.setEnabled(bool(settings.recent_files()))

    def build_menus(self, w: MainWindow) -> None:
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
        view.addSeparator()
        theme = view.addMenu("&Theme")
        for a in self.theme_actions.values():
            theme.addAction(a)
        process = bar.addMenu("&Process")
        process.addAction(self.denoise)
        process.addAction(self.cancel)
        model = bar.addMenu("&Model")
        model.addAction(self.finetune)
        model.addAction(self.manage)
        bar.addMenu("&Help").addAction(self.about)

    def build_toolbar(self, w: MainWindow) -> QToolBar:
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
        self.zoom_box = ZoomBox(w.compare.state, tb)
        tb.addWidget(self.zoom_box)
        return tb
