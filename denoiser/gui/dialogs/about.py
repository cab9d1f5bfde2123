"""Help ▸ About: the version, what the model in use is for (in the same plain words as Manage models), the
device; the model card's technical fields behind the box's "Show Details…" disclosure, one per line."""
from __future__ import annotations

import html
from typing import Any

from denoiser import __version__


def about_html(entry: Any | None, device_text: str) -> str:
    """entry: the selected core.model.registry.ModelEntry (or a community one), or None."""
    from denoiser.gui.dialogs.model_manager import summary_html

    parts = [f"<h3>Photo Denoiser {html.escape(__version__)}</h3>",
             "<p>Removes noise from photographs with a U-Net denoising autoencoder. MIT licence.</p>"]
    if entry is None:
        parts.append("<p><b>Model:</b> none selected</p>")
    elif getattr(entry, "builtin", None) is not None and getattr(entry.card, "training", None) is not None:
        parts.append(f"<p>{summary_html(entry)}</p>")
        if entry.card.description:
            parts.append(f"<p>{html.escape(entry.card.description)}</p>")
    else:
        parts.append(f"<p><b>Model:</b> {html.escape(str(getattr(entry, 'name', entry)))}</p>")
    parts.append(f"<p><b>Device</b><br>{device_text}</p>")
    return "".join(parts)


def details_text(entry: Any | None) -> str:
    """The card's technical fields as 'key: value' lines (what Show Details… discloses)."""
    card = getattr(entry, "card", None)
    if card is None:
        return ""
    cfg = card.config
    lines = [f"model: {card.name} (version {card.version})", f"file: {entry.path}",
             f"architecture: {cfg.arch}, widths {'/'.join(map(str, cfg.widths))}"]
    for title, fields in (("metric", card.metrics), ("training", card.training)):
        for key, value in fields.items():
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"{title} {key}: {text if len(text) <= 200 else text[:197] + '…'}")
    return "\n".join(lines)
