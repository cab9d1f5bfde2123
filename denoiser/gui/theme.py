"""The window's colours: a neutral dark grey by default (bright chrome around a photo skews the judgement of
its tones, which is why photo editors use one), a light theme as an option, or the system's choice where the
system states one (else dark). Fusion style, so the palette is honoured the same on every platform."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = {"dark": "Dark", "light": "Light", "system": "Follow the system"}
DEFAULT_THEME = "dark"

_DARK = {  # neutral greys (equal R, G, B): no colour cast next to the photo
    QPalette.ColorRole.Window: 50, QPalette.ColorRole.Base: 38, QPalette.ColorRole.AlternateBase: 46,
    QPalette.ColorRole.Button: 58, QPalette.ColorRole.ToolTipBase: 30,
    QPalette.ColorRole.WindowText: 222, QPalette.ColorRole.Text: 222, QPalette.ColorRole.ButtonText: 222,
    QPalette.ColorRole.ToolTipText: 222, QPalette.ColorRole.BrightText: 255, QPalette.ColorRole.PlaceholderText: 140,
    QPalette.ColorRole.Light: 80, QPalette.ColorRole.Midlight: 66, QPalette.ColorRole.Mid: 44,
    QPalette.ColorRole.Dark: 30, QPalette.ColorRole.Shadow: 15,
}
_DISABLED_TEXT = 120


def dark_palette() -> QPalette:
    pal = QPalette()
    for role, grey in _DARK.items():
        pal.setColor(role, QColor(grey, grey, grey))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT, _DISABLED_TEXT, _DISABLED_TEXT))
    pal.setColor(QPalette.ColorRole.Highlight, QColor(70, 110, 160))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    pal.setColor(QPalette.ColorRole.Link, QColor(130, 170, 230))
    return pal


def system_is_dark() -> bool | None:
    """The system's colour scheme: True dark, False light, None when it does not say."""
    scheme = QGuiApplication.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return None


def resolved(theme: str) -> str:
    """'dark' or 'light' for a setting ('system': the system's choice, dark where it says nothing)."""
    if theme == "system":
        dark = system_is_dark()
        return "dark" if dark is None or dark else "light"
    return theme if theme in ("dark", "light") else DEFAULT_THEME


def apply_theme(theme: str) -> str:
    """Sets the application's style and palette; returns the theme applied ('dark' or 'light')."""
    app = QApplication.instance()
    chosen = resolved(theme)
    fusion = QStyleFactory.create("Fusion")
    app.setStyle(fusion)
    app.setPalette(dark_palette() if chosen == "dark" else fusion.standardPalette())
    return chosen
