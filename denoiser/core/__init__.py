"""Headless core: everything the CLI and the GUI do, without Qt."""
