"""The sensor's noise model: per-photosite variance = a * signal + b for each CFA channel (shot noise
grows with the light, read noise does not), in the normalised 0..1 mosaic units of core.io.raw.

Where it comes from: a DNG's NoiseProfile tag when the camera (or its converter) wrote one, otherwise an
estimate from the mosaic itself (Foi et al. 2008, "Practical Poissonian-Gaussian noise modeling and fitting
for single-image raw-data"): each CFA channel's plane is cut into blocks, a Laplacian residual (white noise
of unit gain) gives each block's noise variance and its mean the signal; the flattest blocks of each
brightness band give the variance curve, and a line fitted through it gives (a, b). Texture only raises a
block's variance, so bands far above the fitted line are dropped and the line refitted. On small, textured
photos (Kodak24, McMaster at 768 x 512) texture and film grain still raise the estimate: see the README's
*RAW files*; a DNG's NoiseProfile, when present, is used instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SITES = ((0, 0), (0, 1), (1, 0), (1, 1))  # pattern order: top-left, top-right, bottom-left, bottom-right
_LAPLACE = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32) / np.float32(np.sqrt(20.0))
BLOCK = 8  # block side on a channel plane (64 residuals per block)
# The share of each band's blocks taken as flat, and how far above the line a band counts as textured: chosen
# on CBSD432 (training photos) unprocessed to raws at the four levels of benchmarks/raw_noise_model.py,
# among 0.02 / 0.05 / 0.1 / 0.2 (0.02 was a little better there but rests on one or two blocks per band of a
# small photo), and against a first pick of flat blocks by a texture ratio, which did worse there.
QUANTILE = 0.05
# Where QUANTILE lies among the block variances of pure white noise of unit variance: 0.668 (measured on
# 4 x 2000 x 2000 samples, seed 0; below the chi-square's 0.726 because neighbouring residuals correlate).
PURE_NOISE_QUANTILE = 0.668
_ENVELOPE = 1.3
_BANDS = 12  # brightness bands the variance curve is sampled in
_MIN_BLOCKS = 4  # per band
_CLIP = 0.9  # blocks brighter than this (near white) can be clipped: left out


@dataclass(frozen=True)
class SensorNoise:
    """Per-CFA-site (pattern order) Poisson-Gaussian parameters: variance = a * signal + b."""

    a: tuple[float, float, float, float]
    b: tuple[float, float, float, float]
    source: str = "estimated"  # "estimated" | "NoiseProfile" | "given"

    @classmethod
    def from_noise_profile(cls, profile: tuple[tuple[float, float], ...], pattern: str) -> SensorNoise:
        """From a DNG NoiseProfile ((S, O) per colour plane R, G, B; one pair for all): same units as ours."""
        pairs = list(profile) * 3 if len(profile) == 1 else list(profile)
        if len(pairs) != 3:
            raise ValueError(f"NoiseProfile needs 1 or 3 (S, O) pairs, got {len(pairs)}")
        by_colour = dict(zip("RGB", pairs, strict=True))
        a = tuple(float(by_colour[c][0]) for c in pattern)
        b = tuple(float(by_colour[c][1]) for c in pattern)
        return cls(a, b, "NoiseProfile")  # type: ignore[arg-type]

    @classmethod
    def estimate(cls, cfa: np.ndarray, pattern: str,
                 read: tuple[float, float, float, float] | None = None) -> SensorNoise:
        """(a, b) per CFA channel from the mosaic's flat regions; with `read` (b per site, measured on the
        masked black margin: core.io.raw.RawImage.black_noise) only a is fitted. Raises ValueError for a
        mosaic too small."""
        blocks = ((cfa.shape[0] // 2 - 2) // BLOCK) * ((cfa.shape[1] // 2 - 2) // BLOCK)
        if blocks < 2 * _MIN_BLOCKS:
            raise ValueError(f"mosaic of {cfa.shape[1]} x {cfa.shape[0]} is too small to measure its noise")
        fits = [_fit_plane(np.ascontiguousarray(cfa[dy::2, dx::2], np.float32), None if read is None else read[k])
                for k, (dy, dx) in enumerate(_SITES)]
        source = "estimated" if read is None else "estimated, read noise from the masked black area"
        return cls(tuple(f[0] for f in fits), tuple(f[1] for f in fits), source)  # type: ignore[arg-type]

    def scaled(self, k: float) -> SensorNoise:
        """The noise `k` times stronger in std (the strength slider as a scale on the measured noise)."""
        if not (np.isfinite(k) and k >= 0):
            raise ValueError(f"strength scale must be a number >= 0, got {k}")
        k2 = float(k) ** 2
        return SensorNoise(tuple(x * k2 for x in self.a), tuple(x * k2 for x in self.b),  # type: ignore[arg-type]
                           self.source)

    def std_map(self, cfa: np.ndarray, pattern: str = "") -> np.ndarray:
        """(H, W) float32 per-photosite noise std, from each site's local signal (3x3 mean of its own plane)."""
        import cv2

        out = np.empty(cfa.shape, np.float32)
        for k, (dy, dx) in enumerate(_SITES):
            plane = np.ascontiguousarray(cfa[dy::2, dx::2], np.float32)
            signal = np.maximum(cv2.blur(plane, (3, 3), borderType=cv2.BORDER_REFLECT), 0.0)
            var = np.float32(self.a[k]) * signal + np.float32(self.b[k])
            out[dy::2, dx::2] = np.sqrt(np.maximum(var, np.float32(1e-12)))
        return out

    def variance(self, signal: np.ndarray | float, site: int) -> np.ndarray:
        """Noise variance of CFA site `site` (pattern order) at `signal`."""
        return np.maximum(self.a[site] * np.maximum(signal, 0.0) + self.b[site], 0.0)

    def per_colour(self, pattern: str) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """(a, b) per colour R, G, B (the two greens averaged): a DNG NoiseProfile's three pairs."""
        def pair(colour: str) -> tuple[float, float]:
            sites = [k for k, c in enumerate(pattern) if c == colour]
            return (float(np.mean([self.a[k] for k in sites])), float(np.mean([self.b[k] for k in sites])))
        return pair("R"), pair("G"), pair("B")


def _block_stats(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean signal, residual variance) of each BLOCK x BLOCK block of one channel plane."""
    import cv2

    resid = cv2.filter2D(plane, -1, _LAPLACE, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    body = plane[1:-1, 1:-1]
    h, w = (resid.shape[0] // BLOCK) * BLOCK, (resid.shape[1] // BLOCK) * BLOCK

    def blocks(x: np.ndarray) -> np.ndarray:
        return x[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK * BLOCK)

    return blocks(body).mean(axis=1), blocks(resid).astype(np.float64).var(axis=1)


def _fit_plane(plane: np.ndarray, read: float | None = None) -> tuple[float, float]:
    """Each brightness band's noise variance is read off its flattest blocks: the QUANTILE of the band's
    block variances (each relative to the current line at its own brightness, so the band's slope does not
    bias it), divided by where that quantile lies for pure noise (PURE_NOISE_QUANTILE). Bands still far above
    the line (textured throughout) are dropped as the line is refitted."""
    mean, var = _block_stats(plane)
    keep = (mean < _CLIP) & np.isfinite(mean) & np.isfinite(var)
    mean, var = mean[keep], var[keep]
    if mean.size < 2 * _MIN_BLOCKS:
        raise ValueError("too few unclipped regions to measure the noise")
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, _BANDS + 1)))
    band = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, max(len(edges) - 2, 0))
    if np.bincount(band).max() < _MIN_BLOCKS:
        band = np.zeros_like(band)
    lowest = PURE_NOISE_QUANTILE
    a, b = 0.0, 1.0  # a flat line: the first pass takes plain variances
    for _ in range(6):
        line = np.maximum(a * np.maximum(mean, 0) + b, 1e-20)
        x, r, n = _band_points(mean, var / line, band, lambda v: np.quantile(v, QUANTILE) / lowest)
        y = r * np.maximum(a * np.maximum(x, 0) + b, 1e-20)
        if x.size == 0:
            raise ValueError("no flat regions to measure the noise")
        near = r < _ENVELOPE * np.median(r) if x.size > 2 else np.ones(x.size, bool)
        a, b = _line(x[near], y[near], n[near], read)
    return float(a), float(b)


def _band_points(mean: np.ndarray, var: np.ndarray, band: np.ndarray, stat) -> tuple[np.ndarray, ...]:
    xs, ys, ns = [], [], []
    for k in np.unique(band):
        sel = band == k
        if sel.sum() >= _MIN_BLOCKS:
            xs.append(float(np.mean(mean[sel])))
            ys.append(float(stat(var[sel])))
            ns.append(int(sel.sum()))
    return np.array(xs), np.array(ys), np.array(ns, float)


def _line(x: np.ndarray, y: np.ndarray, n: np.ndarray, b_known: float | None = None) -> tuple[float, float]:
    """Weighted least squares of y = a x + b (weights: blocks / variance^2, the inverse variance of each
    band's estimate), with a >= 0; one band (or a flat photo) gives b alone."""
    if x.size == 0:
        raise ValueError("no flat regions to measure the noise")
    w = n / np.maximum(y, 1e-20) ** 2
    if b_known is not None:  # the intercept measured elsewhere: the slope alone, by the same weights
        a = float(np.sum(w * x * (y - b_known)) / max(float(np.sum(w * x * x)), 1e-30))
        return max(a, 0.0), float(b_known)
    if x.size >= 2 and np.ptp(x) > 1e-6:
        A = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(w)[:, None]
        (a, b), *_ = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)
        if a >= 0:
            return float(a), float(b)
    return 0.0, float(np.sum(w * y) / np.sum(w))
