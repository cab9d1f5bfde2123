"""Training and fine-tuning: trainer, patch pools, data packs, noisy-mode calibration, estimator."""
