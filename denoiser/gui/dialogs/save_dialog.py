"""Save As: where and in which format. Only collects choices; saving itself is core.io.photo.save_photo."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from denoiser.core.io.formats import DENOISED_SUFFIX, FORMAT_EXTENSIONS, SAVE_SUFFIX, kept_format

DEFAULT_QUALITY = 92


def format_choices(bit_depth: int, source_format: str = "") -> list[tuple[str, str]]:
    """(core format, label); 16-bit TIFF only when the source has 16 bits to keep; "keep" first when what
    core keeps (formats.kept_format: BMP stays BMP) is none of the others."""
    tiff = "TIFF (16-bit, lossless)" if bit_depth == 16 else "TIFF (8-bit, lossless)"
    choices = [("jpeg", "JPEG (8-bit, choose quality)"), ("png", "PNG (lossless)"), ("tiff", tiff),
               ("webp", "WebP (choose quality)"), ("heif", "HEIC (8-bit, as phones save; choose quality)"),
               ("avif", "AVIF (8-bit, choose quality)")]
    kept = kept_format(source_format)
    if kept in FORMAT_EXTENSIONS and kept.lower() not in SAVE_SUFFIX:
        choices.insert(0, ("keep", f"{kept} (same as the original)"))
    if source_format == "RAW":  # its denoised raw, which editors open as a raw
        choices.insert(0, ("dng", "DNG (denoised raw: darktable, RawTherapee, Lightroom edit it as a raw)"))
    return choices


def default_format(source_format: str, bit_depth: int) -> str:
    """What core's "keep" writes (formats.kept_format), as the choice that offers it; a camera raw: DNG."""
    if source_format == "RAW":
        return "dng"
    kept = kept_format(source_format)
    if kept not in FORMAT_EXTENSIONS:
        return "tiff" if bit_depth == 16 else "png"
    return kept.lower() if kept.lower() in SAVE_SUFFIX else "keep"


def output_suffix(fmt: str, source_format: str = "") -> str:
    return FORMAT_EXTENSIONS[kept_format(source_format)][0] if fmt == "keep" else SAVE_SUFFIX[fmt]


def suggested_path(source: Path | None, folder: str, fmt: str, source_format: str = "") -> Path:
    """`<stem>-denoised.<ext>` in `folder` (the last output folder) when it exists, else next to the original
    (or in the home folder); never the original, never an existing file."""
    stem = source.stem if source else "photo"
    base = Path(folder) if folder and Path(folder).is_dir() else source.parent if source else Path.home()
    suffix = output_suffix(fmt, source_format)
    candidate, n = base / f"{stem}{DENOISED_SUFFIX}{suffix}", 2
    while candidate.exists() or (source is not None and candidate.resolve() == source.resolve()):
        candidate, n = base / f"{stem}{DENOISED_SUFFIX}-{n}{suffix}", n + 1
    return candidate


class SaveDialog(QDialog):
    def __init__(self, parent: QWidget | None, source: Path | None, source_format: str, bit_depth: int,
                 folder: str = "", plan: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Save denoised photo")
        self.source, self.folder, self.source_format = source, folder, source_format
        self.overwrite = False
        self._suggested = ""
        self.format_combo = QComboBox()
        for fmt, label in format_choices(bit_depth, source_format):
            self.format_combo.addItem(label, fmt)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(DEFAULT_QUALITY)
        self.path_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)  # Enter in the file name saves; it never reopens Browse
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Format", self.format_combo)
        form.addRow("Quality", self.quality)
        form.addRow("File", row)
        self.plan = QLabel(plan)
        self.plan.setWordWrap(True)
        form.addRow(self.plan)
        form.addRow(QLabel("EXIF, XMP and the colour profile are kept, and the XMP notes the model and strength. "
                           "The original is never overwritten."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Save).setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.format_combo.setCurrentIndex(self.format_combo.findData(default_format(source_format, bit_depth)))
        self._format_changed()
        self.resize(560, self.sizeHint().height())

    def fmt(self) -> str:
        return self.format_combo.currentData()

    def path(self) -> Path:
        return Path(self.path_edit.text()).expanduser()

    @Slot()
    def _format_changed(self) -> None:
        self.quality.setEnabled(self.fmt() in ("jpeg", "webp", "heif", "avif"))
        current = self.path_edit.text()
        if current and current != self._suggested:  # the user's own name: only the extension follows
            self.path_edit.setText(str(Path(current).with_suffix(output_suffix(self.fmt(), self.source_format))))
        else:
            self._suggested = str(suggested_path(self.source, self.folder, self.fmt(), self.source_format))
            self.path_edit.setText(self._suggested)

    @Slot()
    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save denoised photo", self.path_edit.text(),
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.path_edit.setText(path)

    def accept(self) -> None:
        """Refuse the original; ask before replacing any other existing file."""
        path = self.path()
        if not path.name:
            QMessageBox.warning(self, "Save", "Choose a file name.")
            return
        if self.source is not None and path.exists() and path.resolve() == self.source.resolve():
            QMessageBox.warning(self, "Save", "That is the original photo; it is never overwritten. "
                                              "Choose another name.")
            return
        self.overwrite = False
        if path.exists():
            answer = QMessageBox.question(self, "Save", f"{path.name} exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.overwrite = True
        super().accept()
