"""The one place errors reach the user: a message box, a log line, and the window carries on."""
from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("denoiser.gui")


def describe(exc: BaseException) -> str:
    """One readable line; unexpected errors also say what kind they are. ValueError and OSError (PhotoError,
    ModelFileError, FileNotFoundError, PermissionError...) already name the file and the reason."""
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, (ValueError, OSError)):
        return text
    if "out of memory" in text.lower():
        return f"Out of memory: {text}. Try the CPU device or close other programs."
    return f"{exc.__class__.__name__}: {text}"


def show_error(parent: QWidget | None, title: str, error: BaseException | str) -> str:
    """Show `error` in a modal message box; returns the text shown (tests and the smoke test read it)."""
    text = error if isinstance(error, str) else describe(error)
    if isinstance(error, BaseException):
        log.error("%s: %s", title, text, exc_info=(type(error), error, error.__traceback__))
    else:
        log.error("%s: %s", title, text)
    QMessageBox.critical(parent, title, text)
    return text
