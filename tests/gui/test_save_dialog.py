"""Save As dialog: formats offered, suggested names that never hit the original or an existing file."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from denoiser.gui.dialogs.save_dialog import SaveDialog, default_format, format_choices, suggested_path


def test_sixteen_bit_tiff_is_offered_only_for_sixteen_bit_sources() -> None:
    assert dict(format_choices(16))["tiff"].startswith("TIFF (16-bit")
    assert dict(format_choices(8))["tiff"].startswith("TIFF (8-bit")
    assert default_format("RAW", 16) == "dng" and default_format("TIFF", 8) == "tiff"  # a raw: its denoised raw
    # core keeps a BMP as BMP (formats.kept_format); the dialog offers and picks that, as the batch does
    assert default_format("BMP", 8) == "keep" and format_choices(8, "BMP")[0] == ("keep", "BMP (same as the original)")
    assert [f for f, _ in format_choices(8, "JPEG")] == ["jpeg", "png", "tiff", "webp", "heif", "avif"]
    assert default_format("HEIF", 8) == "heif" and default_format("AVIF", 8) == "avif"  # a phone's photo stays one
    assert default_format("JPEG", 8) == "jpeg" and default_format("WEBP", 8) == "webp"


def test_suggested_name_is_next_to_the_original_and_never_existing(tmp_path: Path) -> None:
    src = tmp_path / "IMG_1.jpg"
    src.write_bytes(b"x")
    assert suggested_path(src, "", "jpeg") == tmp_path / "IMG_1-denoised.jpg"
    (tmp_path / "IMG_1-denoised.jpg").write_bytes(b"y")
    (tmp_path / "IMG_1-denoised-2.jpg").write_bytes(b"y")
    assert suggested_path(src, "", "jpeg") == tmp_path / "IMG_1-denoised-3.jpg"
    assert suggested_path(src, "", "tiff") == tmp_path / "IMG_1-denoised.tif"
    assert suggested_path(None, str(tmp_path), "png") == tmp_path / "photo-denoised.png"
    assert suggested_path(tmp_path / "scan.bmp", "", "keep", "BMP") == tmp_path / "scan-denoised.bmp"


def test_dialog_switches_extension_and_quality_with_the_format(qtbot, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(b"x")
    dlg = SaveDialog(None, src, "PNG", 16)
    qtbot.addWidget(dlg)
    assert dlg.fmt() == "png" and dlg.path() == tmp_path / "a-denoised.png" and not dlg.quality.isEnabled()
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("jpeg"))
    assert dlg.path() == tmp_path / "a-denoised.jpg" and dlg.quality.isEnabled()
    dlg.path_edit.setText(str(tmp_path / "mine.jpg"))
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("webp"))
    assert dlg.path() == tmp_path / "mine.webp"  # the user's own name is kept, only the extension follows


def test_dialog_refuses_the_original(qtbot, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(b"x")
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: warned.append(text))
    dlg = SaveDialog(None, src, "JPEG", 8)
    qtbot.addWidget(dlg)
    dlg.path_edit.setText(str(src))
    dlg.accept()
    assert warned and "never overwritten" in warned[0] and dlg.result() == 0
