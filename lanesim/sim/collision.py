"""Oriented-rectangle overlap by the separating-axis theorem, vectorized over pairs."""

from __future__ import annotations

import numpy as np


def boxes_overlap(
    x1: np.ndarray,
    y1: np.ndarray,
    h1: np.ndarray,
    l1: np.ndarray,
    w1: np.ndarray,
    x2: np.ndarray,
    y2: np.ndarray,
    h2: np.ndarray,
    l2: np.ndarray,
    w2: np.ndarray,
) -> np.ndarray:
    """Whether rectangles 1 and 2 overlap or touch; all arguments broadcast together.

    A rectangle is its centre ``(x, y)`` (m), heading ``h`` (rad), length ``l`` along the heading
    and width ``w`` across it (m). Two rectangles are apart exactly when one of their four edge
    normals separates their projections; touching edges count as overlap.
    """
    c1, s1, c2, s2 = np.cos(h1), np.sin(h1), np.cos(h2), np.sin(h2)
    dx, dy = x2 - x1, y2 - y1
    # The four candidate axes: each box's forward and left directions.
    axes = ((c1, s1), (-s1, c1), (c2, s2), (-s2, c2))
    separated = np.zeros(np.broadcast(x1, x2, h1, h2).shape, dtype=bool)
    for ax, ay in axes:
        r1 = 0.5 * l1 * np.abs(c1 * ax + s1 * ay) + 0.5 * w1 * np.abs(-s1 * ax + c1 * ay)
        r2 = 0.5 * l2 * np.abs(c2 * ax + s2 * ay) + 0.5 * w2 * np.abs(-s2 * ax + c2 * ay)
        separated |= np.abs(dx * ax + dy * ay) > r1 + r2 + 1e-9
    return ~separated
