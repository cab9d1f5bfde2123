"""Auto's noise map of a big photo from a sparse grid of full-resolution blocks.

The estimator (learned.py) reads the photo at full resolution, as it was trained; on a big photo it reads only a
regular grid of blocks that together cover FRACTION of the pixels, and the map between them is filled in by
joint bilateral upsampling (a bilateral grid, Chen et al. 2007; Kopf et al. 2007): each block records the map
value per brightness bin (bins on the photo's own brightness quantiles), and every pixel takes the blocks' values
at its own brightness, blended over space. Camera noise is a function of brightness times a gain that changes
slowly across a photo, which is what this interpolation keeps: a bin a block barely saw is read from the photo's
brightness curve at that block's level, and a brightness the whole grid missed gets a block of its own. The photo
is never downscaled before the estimator sees it. Photos up to MIN_SPARSE_MP are read whole. Settings chosen on
the real-noise tuning halves (benchmarks/auto_sparse.py --half tune).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

BLOCK = 384  # px: one estimator block (a multiple of 4, so blocks sit on the estimator's stride-4 grid)
FRACTION = 1 / 6  # the share of a big photo's pixels the estimator reads
RIM = 24  # px: a block's rim inside the photo is dropped (the estimator sees zero padding there: 3-14 % off)
MIN_SPARSE_MP = 2.0  # photos up to this many megapixels are read whole
BINS = 16  # brightness bins of the bilateral grid (on the photo's brightness quantiles)
PRIOR = 0.1  # weight of the brightness curve (at the block's level) in each block's bins, share of a bin's mean count
COVER_SHARE = 0.02  # a brightness bin holding this share of the photo ...
COVER_RATIO = 0.25  # ... is seen by at least this ratio of its share in the blocks, or gets a block of its own
MAX_COVER = 6  # extra blocks at most
STRIP = 256  # map rows sliced at a time (bounded memory on big photos)


@dataclass(frozen=True)
class Span:
    """One block's extent on one axis, in image px, and the part of its map that is kept (map px)."""
    start: int
    stop: int
    keep_start: int
    keep_stop: int

    @property
    def centre(self) -> float:
        """The kept part's centre, in map px."""
        return (self.keep_start + self.keep_stop - 1) / 2


def _span(centre: float, length: int, size: int, rim: int) -> Span:
    """A block of `size` px centred near `centre` (image px) on the stride-4 grid, inside 0..length; its rim
    inside the photo is not kept (a rim at the photo's edge stays: the full map sees the same edge)."""
    start = min(max(0, round(centre - size / 2) // 4 * 4), (length - size) // 4 * 4)
    stop = min(length, start + size)
    first = start if start == 0 else start + rim
    last = stop if stop == length else stop - rim
    return Span(start, stop, first // 2, (last + 1) // 2)


def axis_spans(length: int, block: int = BLOCK, fraction: float = FRACTION, rim: int = RIM) -> list[Span]:
    """Blocks along one axis, ~block/sqrt(fraction) apart, the outer ones at the photo's edges (so the map is
    interpolated between blocks everywhere, never extrapolated)."""
    size = min(block, length)
    count = max(1, round(length * np.sqrt(fraction) / block))
    if count == 1:
        return [_span(length / 2, length, size, rim)]
    return [_span(size / 2 + i * (length - size) / (count - 1), length, size, rim) for i in range(count)]


def _nodes(centres: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation between node centres along one axis, held flat beyond the outer ones: each
    position's left and right node and its weight on the right one."""
    pos = np.clip(np.arange(length, dtype=np.float64), centres[0], centres[-1])
    left = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, max(0, len(centres) - 2))
    right = np.minimum(left + 1, len(centres) - 1)
    t = np.where(right > left, (pos - centres[left]) / np.maximum(centres[right] - centres[left], 1e-9), 0)
    return left, right, t.astype(np.float32)


def brightness_guide(image: np.ndarray, shape: tuple[int, int], bins: int) -> np.ndarray:
    """The photo's brightness at the map's resolution (the mean of its channels, 2x2 area averages, lightly
    blurred so its own noise does not pick the bin), as a bin position 0..bins-1 on the photo's own brightness
    quantiles (a dark photo's shadows get most of the bins, where its noise changes fastest)."""
    import cv2

    small = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    # the channels' mean as one matrix product per pixel (numpy's mean over a 3-long last axis is ~10x slower)
    grey = cv2.transform(small, np.full((1, 3), 1 / 3, np.float32)) if small.ndim == 3 else small
    del small
    grey = cv2.GaussianBlur(grey, (0, 0), 1.0)
    edges = np.quantile(grey[::4, ::4], np.linspace(0, 1, bins)).astype(np.float64)
    edges = np.maximum.accumulate(edges + np.arange(bins) * 1e-6)  # strictly rising, also on a flat photo
    return np.interp(grey, edges, np.arange(bins, dtype=np.float64)).astype(np.float32)


@dataclass(frozen=True)
class Bins:
    """Each map pixel's lower brightness bin (uint8: 1 byte a pixel) and its weight on the next one (linear in
    brightness), worked out once for the whole map and read by every block, the cover search and the slice."""
    low: np.ndarray
    t: np.ndarray
    count: int

    @classmethod
    def of(cls, guide: np.ndarray, bins: int) -> Bins:
        if not 2 <= bins <= 255:
            raise ValueError(f"bad bin count {bins}")
        low = np.minimum(guide, np.float32(bins - 2)).astype(np.uint8)  # guide >= 0: truncation is the floor
        t = guide - low
        return cls(low, t.astype(np.float32, copy=False), bins)

    def part(self, rows: slice, cols: slice) -> Bins:
        return Bins(self.low[rows, cols], self.t[rows, cols], self.count)

    def histogram(self, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per bin: the sum of `values` and the pixel count, each pixel shared between its two bins (a pixel's
        whole in its lower bin, less its share t there, plus the share t one bin up: two bincounts, not four)."""
        low, t = self.low.ravel(), self.t.ravel().astype(np.float64)
        counts = self._shared(np.bincount(low, None, self.count).astype(np.float64), np.bincount(low, t, self.count))
        if values is None:
            return counts, counts
        v = values.ravel().astype(np.float64)
        return self._shared(np.bincount(low, v, self.count), np.bincount(low, t * v, self.count)), counts

    @staticmethod
    def _shared(whole: np.ndarray, up: np.ndarray) -> np.ndarray:
        out = whole - up
        out[1:] += up[:-1]
        return out


def sparse_map(image: np.ndarray, run: Callable[[torch.Tensor], np.ndarray], block: int = BLOCK,
               fraction: float = FRACTION, bins: int = BINS, rim: int = RIM,
               prior: float = PRIOR) -> np.ndarray:
    """The noise map (ceil(H/2), ceil(W/2)) of an HxWx3 float32 image in [0,1] from the estimator `run` (a tile
    (1,3,h,w) -> its map) on a sparse grid of blocks, filled in over brightness and space."""
    if block % 4 or not 0 < fraction <= 1 or bins < 2 or rim % 2:
        raise ValueError(f"bad sparse-map settings: block {block}, fraction {fraction}, bins {bins}, rim {rim}")
    h, w = image.shape[:2]
    rows, cols = axis_spans(h, block, fraction, rim), axis_spans(w, block, fraction, rim)
    guide = brightness_guide(image, ((h + 1) // 2, (w + 1) // 2), bins)
    binned = Bins.of(guide, bins)
    sums = np.zeros((bins, len(rows), len(cols)), np.float64)
    counts = np.zeros_like(sums)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]  # a view: the blocks are the only copies
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            sums[:, i, j], counts[:, i, j] = _read_block(x, binned, r, c, run)
    # every block's bins lean on the photo's own brightness-to-noise curve times the block's own level against
    # that curve (noise = a function of brightness x a gain that changes slowly across the photo), so a
    # brightness that few of a block's pixels have is read from the curve at this block's level
    curve = _curve(sums.sum(axis=(1, 2)), counts.sum(axis=(1, 2)))
    level = _level(sums, counts, curve)
    tops, bottoms, ty = _nodes(np.array([r.centre for r in rows]), guide.shape[0])
    lefts, rights, tx = _nodes(np.array([c.centre for c in cols]), guide.shape[1])
    norm_sums, norm_counts = (sums / level[None]).sum(axis=(1, 2)), counts.sum(axis=(1, 2))
    for (cy, cx), s, n in _cover(x, guide, binned, counts.sum(axis=(1, 2)), run, min(block, h), min(block, w), rim):
        at = level[[tops[cy], tops[cy], bottoms[cy], bottoms[cy]], [lefts[cx], rights[cx], lefts[cx], rights[cx]]]
        gain = float(at @ [(1 - ty[cy]) * (1 - tx[cx]), (1 - ty[cy]) * tx[cx], ty[cy] * (1 - tx[cx]), ty[cy] * tx[cx]])
        norm_sums, norm_counts = norm_sums + s / gain, norm_counts + n
    curve = _curve(norm_sums, norm_counts)
    level = _level(sums, counts, curve)
    weight = prior * counts.sum() / counts.size
    sums += weight * curve[:, None, None] * level[None]
    counts += weight
    return _slice(sums.astype(np.float32), counts.astype(np.float32), binned, rows, cols)


def _read_block(x: torch.Tensor, at: Bins, r: Span, c: Span,
                run: Callable[[torch.Tensor], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One block through the estimator: its kept map's sums and pixel counts per brightness bin."""
    pred = run(x[:, :, r.start:r.stop, c.start:c.stop])
    kept = pred[r.keep_start - r.start // 2:r.keep_stop - r.start // 2,
                c.keep_start - c.start // 2:c.keep_stop - c.start // 2]
    return at.part(slice(r.keep_start, r.keep_stop), slice(c.keep_start, c.keep_stop)).histogram(kept)


def _curve(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean per brightness bin; a bin no block saw takes its seen neighbours' values (linearly)."""
    seen = counts > 1e-9
    bins = np.arange(len(sums))
    return np.interp(bins, bins[seen], sums[seen] / counts[seen]) if seen.any() else np.ones(len(sums))


def _level(sums: np.ndarray, counts: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Each grid block's level against the brightness curve, (rows, cols)."""
    return np.maximum(sums.sum(axis=0), 1e-9) / np.maximum(np.tensordot(curve, counts, axes=1), 1e-9)


def _cover(x: torch.Tensor, guide: np.ndarray, at: Bins, seen: np.ndarray, run: Callable[[torch.Tensor], np.ndarray],
           bh: int, bw: int, rim: int) -> list[tuple[tuple[int, int], np.ndarray, np.ndarray]]:
    """Extra blocks for brightnesses the grid's blocks barely saw (a bright sky between them), each where that
    brightness is densest: (their centre in map px, sums, counts per bin); they join the brightness curve only."""
    import cv2

    bins = len(seen)
    share = at.histogram()[1]
    share = share / share.sum()
    blocks: list[tuple[tuple[int, int], np.ndarray, np.ndarray]] = []
    counts = np.zeros(bins)
    for _ in range(MAX_COVER):
        have = (seen + counts) / max(float((seen + counts).sum()), 1e-9)
        short = np.where((share >= COVER_SHARE) & (have < COVER_RATIO * share))[0]
        if not len(short):
            break
        b = int(short[np.argmax(share[short] - have[short])])
        density = cv2.boxFilter((np.rint(guide) == b).astype(np.float32), -1, (max(1, bw // 2), max(1, bh // 2)))
        cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
        r, c = _span(2 * float(cy) + 1, x.shape[2], bh, rim), _span(2 * float(cx) + 1, x.shape[3], bw, rim)
        s, n = _read_block(x, at, r, c, run)
        blocks.append(((min(int(cy), guide.shape[0] - 1), min(int(cx), guide.shape[1] - 1)), s, n))
        counts = counts + n
    return blocks


def _slice(sums: np.ndarray, counts: np.ndarray, at: Bins, rows: list[Span], cols: list[Span]) -> np.ndarray:
    """Each map pixel: the grid's sums over counts at its brightness, bilinear between block centres."""
    shape = at.low.shape
    top, bottom, ty = _nodes(np.array([r.centre for r in rows]), shape[0])
    ry = np.zeros((shape[0], len(rows)), np.float32)
    np.add.at(ry, (np.arange(len(ry)), top), 1 - ty)
    np.add.at(ry, (np.arange(len(ry)), bottom), ty)
    left, right, tx = _nodes(np.array([c.centre for c in cols]), shape[1])
    out = np.empty(shape, np.float32)
    nodes = len(cols)
    step = (right - left).astype(np.intp)  # flat-index offset from a pixel's left node to its right one
    for y0 in range(0, shape[0], STRIP):
        low, t = at.low[y0:y0 + STRIP].astype(np.intp), at.t[y0:y0 + STRIP]
        part = ry[y0:y0 + STRIP]
        # (bins, strip rows, nodes across), tiny: sums and counts as one complex number, so every gather and blend
        # below moves both at once
        grid = ((part @ sums) + 1j * (part @ counts)).astype(np.complex64).ravel()
        rows_here = len(part)
        # flat index of (bin low, row, left node): one index array, taken from instead of 3-array fancy indexing
        flat = (low * rows_here + np.arange(rows_here, dtype=np.intp)[:, None]) * nodes + left.astype(np.intp)
        up = rows_here * nodes  # one bin further
        lower, upper = (grid.take(i) * (1 - tx) + grid.take(i + step) * tx for i in (flat, flat + up))
        out[y0:y0 + STRIP] = lower.real / lower.imag * (1 - t) + upper.real / upper.imag * t
    return out
