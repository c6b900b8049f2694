"""Oriented-rectangle overlap by the separating-axis theorem."""

from __future__ import annotations

import math

import numpy as np
from numba import vectorize

from lanesim.sim.jit import kernel


@kernel
def rectangles_overlap(x1, y1, h1, l1, w1, x2, y2, h2, l2, w2):
    """Whether rectangles 1 and 2 overlap or touch.

    A rectangle is its centre ``(x, y)`` (m), heading ``h`` (rad), length ``l`` along the heading
    and width ``w`` across it (m). Two rectangles are apart exactly when one of their four edge
    normals separates their projections; touching edges count as overlap.
    """
    c1, s1, c2, s2 = math.cos(h1), math.sin(h1), math.cos(h2), math.sin(h2)
    dx, dy = x2 - x1, y2 - y1
    for a in range(4):
        # The four candidate axes: each box's forward and left directions.
        if a == 0:
            ax, ay = c1, s1
        elif a == 1:
            ax, ay = -s1, c1
        elif a == 2:
            ax, ay = c2, s2
        else:
            ax, ay = -s2, c2
        r1 = 0.5 * l1 * abs(c1 * ax + s1 * ay) + 0.5 * w1 * abs(-s1 * ax + c1 * ay)
        r2 = 0.5 * l2 * abs(c2 * ax + s2 * ay) + 0.5 * w2 * abs(-s2 * ax + c2 * ay)
        if abs(dx * ax + dy * ay) > r1 + r2 + 1e-9:
            return False
    return True


@vectorize(["b1(f8, f8, f8, f8, f8, f8, f8, f8, f8, f8)"], cache=True)
def _overlap_ufunc(x1, y1, h1, l1, w1, x2, y2, h2, l2, w2):
    return rectangles_overlap(x1, y1, h1, l1, w1, x2, y2, h2, l2, w2)


def boxes_overlap(x1, y1, h1, l1, w1, x2, y2, h2, l2, w2) -> np.ndarray:
    """:func:`rectangles_overlap` over arrays; all arguments broadcast together."""
    args = [np.asarray(a, dtype=np.float64) for a in (x1, y1, h1, l1, w1, x2, y2, h2, l2, w2)]
    return _overlap_ufunc(*args)
