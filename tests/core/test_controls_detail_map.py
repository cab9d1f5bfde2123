"""Removed-detail map (core.inference.detail_map): ~0 where only noise was removed, high where an edge was eaten."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from denoiser.core.inference.detail_map import detail_report, removed_detail_map


@pytest.fixture
def edge_photo(rng):
    clean = np.full((96, 96, 3), 0.3, np.float32)
    clean[:, 48:] = 0.7
    noisy = (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32)
    return noisy, clean


def test_near_zero_when_only_noise_was_removed(rng):
    clean = np.full((128, 128, 3), 0.5, np.float32)
    noisy = (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32)
    rep = detail_report(noisy, clean)
    assert rep.map.mean() < 0.01 and rep.score == 0.0


def test_near_zero_on_a_perfectly_denoised_edge(edge_photo):
    noisy, clean = edge_photo
    rep = detail_report(noisy, clean)
    assert rep.map[:, 44:52].mean() < 0.05 and rep.score < 0.5


def test_high_on_a_removed_edge(edge_photo):
    noisy, clean = edge_photo
    eaten = cv2.GaussianBlur(clean, (0, 0), 3)
    m = removed_detail_map(noisy, eaten)
    assert m[:, 44:52].mean() > 0.4
    assert m[:, :32].mean() < 0.02  # the flat side still reads as noise
    assert detail_report(noisy, eaten).score > 3.0


def test_rounding_residual_on_a_clean_photo_is_not_flagged():
    clean = np.full((64, 64, 3), 0.3, np.float32)
    clean[::8] = 0.31  # faint structure, well under one 8-bit step of residual after rounding
    out = np.round(clean * 255) / 255
    assert removed_detail_map(clean, out.astype(np.float32)).max() < 0.1


def test_shape_mismatch_is_refused(edge_photo):
    noisy, clean = edge_photo
    with pytest.raises(ValueError, match="differ in shape"):
        removed_detail_map(noisy, clean[:-1])


def test_overlay_marks_flagged_areas(edge_photo):
    noisy, clean = edge_photo
    rep = detail_report(noisy, cv2.GaussianBlur(clean, (0, 0), 3))
    img = rep.overlay(clean)
    assert img.dtype == np.uint8 and img.shape == clean.shape
    assert img[:, 47, 0].mean() > img[:, 10, 0].mean() + 60  # magenta at the edge, grey elsewhere
