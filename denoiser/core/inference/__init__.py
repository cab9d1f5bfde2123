"""Running a model on a photo: device and OOM fallback, tiling, self-ensemble, controls, detail map."""
