"""The viewer's per-frame vehicle geometry, compiled with numba (cached on disk).

Why compiled: picking the visible entities, keying their sprites and placing them is ~25 small
numpy operations per frame, each a few microseconds of call overhead; one compiled pass over
the entities costs less than one of them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

ANGLE_STEPS = 720  # sprite rotations per turn (0.5°: at most 0.13 px off at a car's end)
SIZE_BASE = 4096  # sprite sizes (half pixels) are packed in base SIZE_BASE into the key
CRASHED_COLOUR = 4  # colour index of crashed entities; 0..3 are the entity kinds


def split_key(key: int) -> tuple[int, int, int, int]:
    """``(colour, length2, width2, angle)`` of a sprite key packed by :func:`place_vehicles`:
    colour index, length and width in half pixels, angle in steps of 1/ANGLE_STEPS turn."""
    rest, angle = divmod(key, ANGLE_STEPS)
    rest, width2 = divmod(rest, SIZE_BASE)
    colour, length2 = divmod(rest, SIZE_BASE)
    return colour, length2, width2, angle


@njit(cache=True)
def sprite_half_size(length2: int, width2: int, angle: int) -> tuple[float, float]:
    """Half width and height (px) of a sprite's image: the rotated car plus a 2 px margin.
    The sprite's centre is at this point of its image."""
    hl, hw = 0.25 * length2, 0.25 * width2
    phi = angle * 2.0 * math.pi / ANGLE_STEPS
    c, s = abs(math.cos(phi)), abs(math.sin(phi))
    return hl * c + hw * s + 2.0, hl * s + hw * c + 2.0


@njit(cache=True)
def place_vehicles(x, y, heading, length, width, kind, crashed, cx, cy, radius, a, b, c, d, e, f,
                   theta, ppm, keys, left, top):
    """Sprite keys and top-left pixels of every entity within ``radius`` (m) of ``(cx, cy)``.

    Inputs are one world's ``(N,)`` rows; ``a..f`` the view's affine map (see ``View``) and
    ``theta`` its rotation. Writes ``keys``, ``left``, ``top`` (``(N,)`` int64) and returns how
    many were written, the ego (entity 0) last so it is drawn on top.
    """
    n = x.shape[0]
    count = 0
    for k in range(n):
        i = k + 1 if k < n - 1 else 0  # entities 1..N-1, then the ego
        dx, dy = x[i] - cx, y[i] - cy
        if dx * dx + dy * dy >= radius * radius:
            continue
        colour = CRASHED_COLOUR if crashed[i] else kind[i]
        length2 = int(math.floor(length[i] * 2.0 * ppm + 0.5))
        width2 = int(math.floor(width[i] * 2.0 * ppm + 0.5))
        steps = (heading[i] - theta) * ANGLE_STEPS / (2.0 * math.pi)
        angle = int(math.floor(steps + 0.5)) % ANGLE_STEPS
        keys[count] = ((colour * SIZE_BASE + length2) * SIZE_BASE + width2) * ANGLE_STEPS + angle
        hx, hy = sprite_half_size(length2, width2, angle)
        left[count] = int(math.floor(a * x[i] + b * y[i] + e - hx + 0.5))
        top[count] = int(math.floor(c * x[i] + d * y[i] + f - hy + 0.5))
        count += 1
    return count


@njit(cache=True)
def screen_points(xy, i0, i1, step, a, b, c, d, e, f, out):
    """Screen pixels of world points ``xy[i0:i1:step]`` (``(n, 2)`` m) into ``out``; returns
    how many were written."""
    m = 0
    for i in range(i0, i1, step):
        out[m, 0] = a * xy[i, 0] + b * xy[i, 1] + e
        out[m, 1] = c * xy[i, 0] + d * xy[i, 1] + f
        m += 1
    return m


@njit(cache=True)
def match_leader(s, length, d_ego, curvature, gap):
    """The entity ahead of entity 0 whose bumper gap along the road is closest to ``gap``
    (m): ``(N,)`` rows ``s`` and ``length`` of one world. Returns its index."""
    best, best_err = -1, np.inf
    for j in range(1, s.shape[0]):
        mine = (s[j] - s[0]) * (1.0 + curvature * d_ego) - 0.5 * (length[j] + length[0])
        err = abs(mine - gap)
        if err < best_err:
            best, best_err = j, err
    return best
