"""Noise: synthesis for training (synthesis, camera) and estimation for inference (estimation, learned)."""
from denoiser.core.noise.estimation import CORRELATED_BELOW, CORRELATED_RATIO, NoiseEstimate, estimate_noise, estimate_sigma
from denoiser.core.noise.synthesis import (NoiseConfig, correlated, gaussian, linear_to_srgb, local_std_map, noise_std,
                        poisson_gaussian, srgb_to_linear, synthesize)

__all__ = ["CORRELATED_BELOW", "CORRELATED_RATIO", "NoiseConfig", "NoiseEstimate", "correlated", "estimate_noise",
           "estimate_sigma", "gaussian", "linear_to_srgb", "local_std_map", "noise_std", "poisson_gaussian",
           "srgb_to_linear", "synthesize"]
