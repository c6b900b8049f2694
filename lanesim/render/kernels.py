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


@njit(cache=True)
def copy_inside(dst, src, x0, y0, px, py):
    """Copy the pixels of ``src`` (``(h, w, C)``, the block of ``dst`` whose top-left pixel is
    column ``x0``, row ``y0``) back into ``dst`` where the pixel's centre lies inside the
    convex polygon ``px, py`` (``(n,)`` each, pixel coordinates, either orientation; the centre
    of pixel (row i, column j) is (j, i))."""
    h, w, channels = src.shape
    n = px.shape[0]
    for i in range(h):
        yc = float(y0 + i)
        lo, hi = np.inf, -np.inf
        for k in range(n):
            ax, ay = px[k], py[k]
            bx, by = px[(k + 1) % n], py[(k + 1) % n]
            if (ay <= yc <= by) or (by <= yc <= ay):
                if ay == by:
                    xa, xb = min(ax, bx), max(ax, bx)
                else:
                    xa = xb = ax + (yc - ay) * (bx - ax) / (by - ay)
                lo, hi = min(lo, xa), max(hi, xb)
        if lo > hi:
            continue
        j0 = max(int(math.ceil(lo)) - x0, 0)
        j1 = min(int(math.floor(hi)) - x0 + 1, w)
        for j in range(j0, j1):
            for c in range(channels):
                dst[y0 + i, x0 + j, c] = src[i, j, c]


NEWLINE = 10  # separates the lines of draw_text's codes
BOX_NONE, BOX_FILL = 0, 1


@njit(cache=True)
def draw_text(rows, width, codes, colours, lut, atlas, glyphs, x, y, line_h, pad, box, fill,
              centre, bounds):
    """Lines of text, optionally on a box, straight into a 24-bit RGB surface's pixel bytes.

    ``rows``: the surface's ``(height, pitch)`` bytes, ``width`` the column (px) where drawing
    stops (the surface's width, or less to keep text inside a panel). ``codes``:
    the text as code points, lines separated by NEWLINE; ``colours`` ``(lines, 3)`` one per
    line. Glyphs come from an atlas (see :class:`lanesim.render.hud.Glyphs`): ``lut`` maps a
    code point to a glyph (-1: none yet), ``atlas`` ``(glyph height, total width)`` holds
    their coverage 0..255, ``glyphs`` ``(n, 6)`` their column in the atlas, bitmap width,
    bitmap offset from the pen, advance, and the first and last + 1 bitmap rows with ink.
    ``(x, y)`` is the box's top-left, or its centre if ``centre`` (then the box is moved
    inside ``bounds``, ``(left, top, right, bottom)`` px). ``box``: BOX_NONE or BOX_FILL
    (colour ``fill``, packed 0xRRGGBB); it spans the widest line and every line, plus ``pad``
    px around.

    Returns -1, or the first code point without a glyph (then nothing was drawn: add the
    glyph and call again).
    """
    height = rows.shape[0]
    gh = atlas.shape[0]
    n = codes.shape[0]
    # Measure: the widest line's extent from its pen start (advances and any overhang).
    widest, pen, lines = 0, 0, 1
    for i in range(n):
        cp = codes[i]
        if cp == NEWLINE:
            lines += 1
            pen = 0
            continue
        if cp >= lut.shape[0] or lut[cp] < 0:
            return cp
        g = lut[cp]
        right = max(pen + glyphs[g, 2] + glyphs[g, 1], pen + glyphs[g, 3])
        widest = max(widest, right)
        pen += glyphs[g, 3]
    bw = widest + 2 * pad
    bh = (lines - 1) * line_h + gh + 2 * pad
    if centre:
        bx = max(min(int(math.floor(x - 0.5 * bw + 0.5)), bounds[2] - bw), bounds[0])
        by = max(min(int(math.floor(y - 0.5 * bh + 0.5)), bounds[3] - bh), bounds[1])
    else:
        bx, by = int(math.floor(x)), int(math.floor(y))
    x0, y0 = max(bx, 0), max(by, 0)
    x1, y1 = min(bx + bw, width), min(by + bh, height)
    # Loops index 1-D row views from 0: LLVM vectorizes them (indexing the 2-D array with
    # computed columns measured 20 times slower).
    if box == BOX_FILL and x1 > x0:
        fr, fg, fb = np.uint8((fill >> 16) & 255), np.uint8((fill >> 8) & 255), np.uint8(fill & 255)
        for r in range(y0, y1):
            row = rows[r, 3 * x0 : 3 * x1]
            for b in range(0, row.shape[0], 3):
                row[b], row[b + 1], row[b + 2] = fr, fg, fb
    # Draw: coverage 255 sets the line's colour, partial coverage blends towards it.
    line, pen = 0, bx + pad
    top = by + pad
    for i in range(n):
        cp = codes[i]
        if cp == NEWLINE:
            line += 1
            pen = bx + pad
            top = by + pad + line * line_h
            continue
        g = lut[cp]
        gx, left = glyphs[g, 0], pen + glyphs[g, 2]
        pen += glyphs[g, 3]
        c0, c1 = max(left, 0), min(left + glyphs[g, 1], width)
        if c1 <= c0:
            continue
        cr, cg = np.int32(colours[line, 0]), np.int32(colours[line, 1])
        cb = np.int32(colours[line, 2])
        for r in range(max(top + glyphs[g, 4], 0), min(top + glyphs[g, 5], height)):
            cov = atlas[r - top, gx + c0 - left : gx + c1 - left]
            dst = rows[r, 3 * c0 : 3 * c1]
            for k in range(cov.shape[0]):
                a = np.int32(cov[k])
                if a == 0:
                    continue
                p = 3 * k
                if a == 255:
                    dst[p], dst[p + 1], dst[p + 2] = cr, cg, cb
                else:
                    m = 255 - a
                    dst[p] = (np.int32(dst[p]) * m + cr * a + 127) // 255
                    dst[p + 1] = (np.int32(dst[p + 1]) * m + cg * a + 127) // 255
                    dst[p + 2] = (np.int32(dst[p + 2]) * m + cb * a + 127) // 255
    return -1

