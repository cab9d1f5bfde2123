"""Help ▸ About: version, the active model's card, device information (as rich text for QMessageBox)."""
from __future__ import annotations

import html
from typing import Any

from denoiser import __version__


def _rows(d: dict[str, Any]) -> str:
    return "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_short(v))}</td></tr>" for k, v in d.items())


def _short(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 120 else text[:117] + "…"


def about_html(card: Any | None, device_text: str) -> str:
    """card: core.model.file.ModelCard of the selected model, or None."""
    parts = [f"<h3>Photo Denoiser {html.escape(__version__)}</h3>",
             "<p>Removes noise from photographs with a U-Net denoising autoencoder. MIT licence.</p>"]
    if card is None:
        parts.append("<p><b>Model:</b> none selected</p>")
    else:
        parts.append(f"<p><b>Model:</b> {html.escape(card.name)} (version {html.escape(card.version)})"
                     f"{'<br>' + html.escape(card.description) if card.description else ''}"
                     f"{'<br>created ' + html.escape(card.created) if card.created else ''}</p>")
        cfg = card.config
        parts.append(f"<p>Architecture: {html.escape(cfg.arch)}, widths {list(cfg.widths)}</p>")
        if card.metrics:
            parts.append(f"<p><b>Metrics</b></p><table>{_rows(card.metrics)}</table>")
        if card.training:
            parts.append(f"<p><b>Training</b></p><table>{_rows(card.training)}</table>")
    parts.append(f"<p><b>Device</b><br>{device_text}</p>")
    return "".join(parts)
