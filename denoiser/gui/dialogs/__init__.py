"""One QDialog per module; a dialog collects parameters and returns them."""
