"""The desktop window (PySide6). Only windows, widgets and thread plumbing; the work is in denoiser.core."""
