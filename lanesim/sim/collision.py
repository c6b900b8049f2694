"""Collisions: oriented-rectangle overlap by the separating-axis theorem, and the pairs of
entities that touch in a world."""

from __future__ import annotations

import math

import numpy as np
from numba import vectorize

from lanesim.sim.jit import kernel, kernel_inline
from lanesim.sim.state import (
    CAR,
    CRASHES_WITHOUT_EGO,
    EGO,
    HEADING,
    KIND,
    LENGTH,
    REACH,
    STALLED,
    WIDTH,
    D,
    S,
    X,
    Y,
)


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


@kernel
def collide(F, I, crashed, order, seam, b):
    """Mark every pair of entities whose rectangles overlap as crashed, counting in
    ``CRASHES_WITHOUT_EGO`` each traffic car newly crashed by anything but the ego.

    Entities are visited in ``s`` order (``order``, kept sorted by
    :func:`lanesim.sim.lane_index.sort_by_s`); each is tested against
    the ones after it until the gap along the road rules out contact, so every pair that can
    touch is tested, and only those. On a closed road (``seam``, its length in m; 0 on an open
    road) the ones after the last continue from the first, ``seam`` further on, so pairs that
    straddle the seam are tested too. Refreshes ``REACH``, each entity's half diagonal.
    """
    N = F.shape[2]
    reach_max = 0.0
    for e in range(N):
        length, width = F[LENGTH, b, e], F[WIDTH, b, e]
        reach = 0.5 * math.sqrt(length * length + width * width)
        F[REACH, b, e] = reach
        reach_max = max(reach_max, reach)
    for a in range(N - 1 if seam == 0.0 else N):
        i = order[b, a]
        reach_i = F[REACH, b, i]
        # i's own values, read once for its whole sweep.
        s_i, d_i, static_i = F[S, b, i], F[D, b, i], I[KIND, b, i] >= STALLED
        # Road-frame distance understates world distance on the outside of a bend; 1.3 covers
        # curvature × lateral offset up to 0.3.
        window = 1.3 * (reach_i + reach_max) + 1.0
        c = a + 1
        while c < N:
            if _test_pair(F, I, crashed, b, i, order[b, c], 0.0, window, s_i, d_i, reach_i,
                          static_i):
                break
            c += 1
        if seam > 0.0 and c == N:
            # Round the seam, up to the entity itself (seam further on: not a pair).
            for c in range(a):
                if _test_pair(F, I, crashed, b, i, order[b, c], seam, window, s_i, d_i,
                              reach_i, static_i):
                    break


@kernel_inline
def _test_pair(F, I, crashed, b, i, j, ahead, window, s_i, d_i, reach_i, static_i):
    """Test ``j``, ``ahead`` (m) further along than its ``s``, against ``i`` before it in the
    sweep (``i``'s ``s``, ``d``, reach and whether it is static given): mark both crashed if
    they overlap. True when ``j`` lies beyond ``window`` (m) of ``i``'s ``s``, which ends
    ``i``'s sweep."""
    if F[S, b, j] + ahead - s_i > window:
        return True
    if abs(F[D, b, j] - d_i) > reach_i + F[REACH, b, j]:
        return False
    if static_i and I[KIND, b, j] >= STALLED:
        return False
    if rectangles_overlap(
        F[X, b, i],
        F[Y, b, i],
        F[HEADING, b, i],
        F[LENGTH, b, i],
        F[WIDTH, b, i],
        F[X, b, j],
        F[Y, b, j],
        F[HEADING, b, j],
        F[LENGTH, b, j],
        F[WIDTH, b, j],
    ):
        for car, other in ((i, j), (j, i)):
            if I[KIND, b, car] == CAR and I[KIND, b, other] != EGO and not crashed[b, car]:
                I[CRASHES_WITHOUT_EGO, b, car] += 1
        crashed[b, i] = True
        crashed[b, j] = True
    return False
