"""Compiled drawing kernels of road networks (:mod:`lanesim.render.netdraw`), cached on disk.

Pixel conventions: a layer or frame pixel ``(row i, column j)`` covers the square whose centre
is at ``(j + 0.5, i + 0.5)`` pixel units; rows run down. A *layer* is a raster of the whole
network, north up: world ``(x, y)`` lies at column ``(x - x0) / mpp`` and row
``(y0 - y) / mpp`` (:class:`Layer`). A *frame* looks at a world point ``(cx, cy)`` with
direction ``theta`` (rad) pointing right on screen (right-hand, y up, so ``theta + pi / 2``
points up): a screen offset of ``(sx, sy)`` px from the frame's anchor is the world point
``c + (sx cos theta + sy sin theta, sx sin theta - sy cos theta) / ppm``.

Nothing here allocates: scratch space and outputs are passed in (lanesim.sim.jit.kernel).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lanesim.sim.jit import kernel, kernel_nogil


class Layer(NamedTuple):
    """A north-up raster of a network: ``img`` ``(H, W)`` or ``(H, W, 3)`` uint8, its top-left
    corner at world ``(x0, y0)`` (m), ``mpp`` metres per pixel."""

    img: np.ndarray
    x0: float
    y0: float
    mpp: float


class Polygons(NamedTuple):
    """Convex world polygons to rasterize, in painting order: polygon ``p`` has the vertices
    ``xy[start[p]:start[p + 1]]`` (m, either orientation) and paints label ``label[p]``."""

    xy: np.ndarray  # (vertices, 2) float64
    start: np.ndarray  # (polygons + 1,) int64
    label: np.ndarray  # (polygons,) uint8


@kernel
def rasterize(polys, x0, y0, mpp, row0, out):
    """Paint every polygon of ``polys`` into ``out`` ``(h, w)`` uint8 labels: rows
    ``row0 .. row0 + h - 1`` of the raster whose top-left corner is world ``(x0, y0)`` at
    ``mpp`` m per pixel; a pixel takes a polygon's label when its centre lies inside."""
    h, w = out.shape
    for p in range(polys.label.shape[0]):
        a, b = polys.start[p], polys.start[p + 1]
        n = b - a
        lo_y, hi_y = np.inf, -np.inf
        for k in range(a, b):
            yy = (y0 - polys.xy[k, 1]) / mpp - row0
            lo_y, hi_y = min(lo_y, yy), max(hi_y, yy)
        i0 = max(int(math.ceil(lo_y - 0.5)), 0)
        i1 = min(int(math.floor(hi_y - 0.5)) + 1, h)
        value = polys.label[p]
        for i in range(i0, i1):
            yc = i + 0.5
            lo, hi = np.inf, -np.inf
            for k in range(n):
                ax = (polys.xy[a + k, 0] - x0) / mpp
                ay = (y0 - polys.xy[a + k, 1]) / mpp - row0
                kb = a + (k + 1) % n
                bx = (polys.xy[kb, 0] - x0) / mpp
                by = (y0 - polys.xy[kb, 1]) / mpp - row0
                if (ay <= yc <= by) or (by <= yc <= ay):
                    if ay == by:
                        xa, xb = min(ax, bx), max(ax, bx)
                    else:
                        xa = xb = ax + (yc - ay) * (bx - ax) / (by - ay)
                    lo, hi = min(lo, xa, xb), max(hi, xa, xb)
            if lo > hi:
                continue
            j0 = max(int(math.ceil(lo - 0.5)), 0)
            j1 = min(int(math.floor(hi - 0.5)) + 1, w)
            for j in range(j0, j1):
                out[i, j] = value


@kernel
def labels_to_rgb(labels, ss, lut, out, row0):
    """Average ``ss × ss`` blocks of ``labels`` ``(ss h, ss w)`` coloured by ``lut``
    ``(labels, 3)`` uint8 into rows ``row0 ..`` of ``out`` ``(H, W, 3)``."""
    h = labels.shape[0] // ss
    w = min(labels.shape[1] // ss, out.shape[1])
    n = ss * ss
    for i in range(min(h, out.shape[0] - row0)):
        for j in range(w):
            r = g = b = 0
            for di in range(ss):
                for dj in range(ss):
                    c = labels[i * ss + di, j * ss + dj]
                    r += lut[c, 0]
                    g += lut[c, 1]
                    b += lut[c, 2]
            out[row0 + i, j, 0] = (r + n // 2) // n
            out[row0 + i, j, 1] = (g + n // 2) // n
            out[row0 + i, j, 2] = (b + n // 2) // n


@kernel
def sample_rgb(layer, cx, cy, theta, ppm, ax, ay, fill, out):
    """Fill ``out`` ``(H, W, 3)`` with the RGB ``layer`` seen from world ``(cx, cy)`` placed at
    pixel ``(ax, ay)`` of the frame, ``theta`` pointing right, ``ppm`` px per m; bilinear,
    ``fill`` ``(3,)`` beyond the layer."""
    H, W = out.shape[0], out.shape[1]
    img = layer.img
    lh, lw = img.shape[0], img.shape[1]
    c, s = math.cos(theta), math.sin(theta)
    k = 1.0 / (ppm * layer.mpp)  # layer pixels per frame pixel
    # Layer coordinates (u, v) are affine in the frame's (j, i): step along each row.
    du, dv = c * k, -s * k
    for i in range(H):
        sy = i + 0.5 - ay
        sx = 0.5 - ax
        x = cx + (sx * c + sy * s) / ppm
        y = cy + (sx * s - sy * c) / ppm
        u = (x - layer.x0) / layer.mpp - 0.5
        v = (layer.y0 - y) / layer.mpp - 0.5
        for j in range(W):
            if -0.5 <= u < lw - 0.5 and -0.5 <= v < lh - 0.5:
                j0, i0 = int(math.floor(u)), int(math.floor(v))
                # Weights in 1/256: integer blending, exact for a flat colour.
                fu = int((u - j0) * 256.0)
                fv = int((v - i0) * 256.0)
                ja, jb = max(j0, 0), min(j0 + 1, lw - 1)
                ia, ib = max(i0, 0), min(i0 + 1, lh - 1)
                for ch in range(3):
                    top = np.int32(img[ia, ja, ch]) * (256 - fu) + np.int32(img[ia, jb, ch]) * fu
                    bot = np.int32(img[ib, ja, ch]) * (256 - fu) + np.int32(img[ib, jb, ch]) * fu
                    out[i, j, ch] = (top * (256 - fv) + bot * fv + 32768) >> 16
            else:
                out[i, j, 0] = fill[0]
                out[i, j, 1] = fill[1]
                out[i, j, 2] = fill[2]
            u += du
            v += dv


@kernel
def crop_rgb(layer, col0, row0, fill, out):
    """Copy layer pixels ``[row0, row0 + H) × [col0, col0 + W)`` into ``out`` ``(H, W, 3)``
    (north up, no resampling), ``fill`` beyond the layer."""
    H, W = out.shape[0], out.shape[1]
    img = layer.img
    lh, lw = img.shape[0], img.shape[1]
    for i in range(H):
        r = row0 + i
        for j in range(W):
            q = col0 + j
            if 0 <= r < lh and 0 <= q < lw:
                out[i, j, 0] = img[r, q, 0]
                out[i, j, 1] = img[r, q, 1]
                out[i, j, 2] = img[r, q, 2]
            else:
                out[i, j, 0] = fill[0]
                out[i, j, 1] = fill[1]
                out[i, j, 2] = fill[2]


SUB = 3  # sub-samples per pixel and axis for anti-aliased vehicle edges


@kernel
def draw_vehicles_rgb(x, y, heading, length, width, kind, crashed, cx, cy, theta, ppm, ax, ay,
                      colours, outline, out):
    """Draw the active entities (``kind >= 0``) of one world, ``(N,)`` rows, into ``out``
    ``(H, W, 3)`` (the frame of :func:`sample_rgb`'s arguments), entities 1..N-1 first and
    the ego (entity 0) last: a body with a dark outline ``outline`` m wide and a windscreen,
    anti-aliased (SUB² samples a pixel). ``colours`` ``(colours, 3, 3)`` uint8: body, outline
    and windscreen per colour index, which is the kind, or ``colours - 1`` when crashed."""
    H, W = out.shape[0], out.shape[1]
    n = x.shape[0]
    c, s = math.cos(theta), math.sin(theta)
    crash_colour = colours.shape[0] - 1
    inv = 1.0 / (SUB * ppm)
    for k in range(n):
        e = k + 1 if k < n - 1 else 0
        if kind[e] < 0:
            continue
        col = crash_colour if crashed[e] else min(kind[e], crash_colour - 1)
        dx, dy = x[e] - cx, y[e] - cy
        px = ax + ppm * (dx * c + dy * s)
        py = ay + ppm * (dx * s - dy * c)
        hl, hw = 0.5 * length[e], 0.5 * width[e]
        reach = ppm * math.hypot(hl, hw) + 1.0
        if px + reach < 0 or px - reach > W or py + reach < 0 or py - reach > H:
            continue
        rel = heading[e] - theta  # the body's direction on screen, counter-clockwise
        cr, sr = math.cos(rel), math.sin(rel)
        ol = min(outline, 0.45 * hw)
        j0, j1 = max(int(px - reach), 0), min(int(px + reach) + 1, W)
        i0, i1 = max(int(py - reach), 0), min(int(py + reach) + 1, H)
        for i in range(i0, i1):
            for j in range(j0, j1):
                acc0 = acc1 = acc2 = 0
                hits = 0
                for si in range(SUB):
                    oy = (i - py) / ppm + (si + 0.5) * inv  # m down the screen
                    for sj in range(SUB):
                        ox = (j - px) / ppm + (sj + 0.5) * inv
                        # Screen down is -left: the body's (along, left) from (right, down).
                        along = ox * cr - oy * sr
                        left = -ox * sr - oy * cr
                        aa, al = abs(along), abs(left)
                        if aa > hl or al > hw:
                            continue
                        part = 0
                        if aa > hl - ol or al > hw - ol:
                            part = 1
                        elif 0.18 * hl <= along <= 0.62 * hl and al <= 0.78 * hw:
                            part = 2
                        acc0 += colours[col, part, 0]
                        acc1 += colours[col, part, 1]
                        acc2 += colours[col, part, 2]
                        hits += 1
                if hits == 0:
                    continue
                m = SUB * SUB
                rest = m - hits
                out[i, j, 0] = (out[i, j, 0] * rest + acc0 + m // 2) // m
                out[i, j, 1] = (out[i, j, 1] * rest + acc1 + m // 2) // m
                out[i, j, 2] = (out[i, j, 2] * rest + acc2 + m // 2) // m


@kernel
def draw_bands(pts, start, lanes, cx, cy, theta, ppm, ax, ay, half_px, colour, alpha, mask,
               out):
    """Blend ``colour`` ``(3,)`` at ``alpha`` (0 to 1) over every pixel of ``out`` ``(H, W,
    3)`` within ``half_px`` px of the centre polyline of a lane in ``lanes``: lane ``l``'s
    points are ``pts[start[l]:start[l + 1]]`` (m). ``mask`` ``(H, W)`` uint8 is scratch: each
    pixel is blended once where pieces overlap."""
    H, W = out.shape[0], out.shape[1]
    c, s = math.cos(theta), math.sin(theta)
    mask[:, :] = 0
    r2 = half_px * half_px
    for q in range(lanes.shape[0]):
        lane = lanes[q]
        for k in range(start[lane], start[lane + 1] - 1):
            dx, dy = pts[k, 0] - cx, pts[k, 1] - cy
            x0 = ax + ppm * (dx * c + dy * s)
            y0 = ay + ppm * (dx * s - dy * c)
            dx, dy = pts[k + 1, 0] - cx, pts[k + 1, 1] - cy
            x1 = ax + ppm * (dx * c + dy * s)
            y1 = ay + ppm * (dx * s - dy * c)
            j0 = max(int(math.floor(min(x0, x1) - half_px)), 0)
            j1 = min(int(math.ceil(max(x0, x1) + half_px)) + 1, W)
            i0 = max(int(math.floor(min(y0, y1) - half_px)), 0)
            i1 = min(int(math.ceil(max(y0, y1) + half_px)) + 1, H)
            vx, vy = x1 - x0, y1 - y0
            vv = vx * vx + vy * vy
            for i in range(i0, i1):
                for j in range(j0, j1):
                    wx, wy = j + 0.5 - x0, i + 0.5 - y0
                    t = 0.0 if vv == 0.0 else min(max((wx * vx + wy * vy) / vv, 0.0), 1.0)
                    ex, ey = wx - t * vx, wy - t * vy
                    if ex * ex + ey * ey <= r2:
                        mask[i, j] = 1
    a = int(round(alpha * 256.0))
    for i in range(H):
        for j in range(W):
            if mask[i, j]:
                for ch in range(3):
                    out[i, j, ch] = (out[i, j, ch] * (256 - a) + colour[ch] * a + 128) >> 8


@kernel_nogil
def grey_frames(layer, x, y, heading, length, width, kind, mpp, behind, greys, route,
                route_n, route_half, frames):
    """Ego-centred grey frames of B worlds into ``frames`` ``(B, H, W)`` uint8.

    ``layer``: the network's grey :class:`Layer`; entity rows ``(B, N)``, entity 0 the ego,
    ``kind`` < 0 inactive. Pixel ``(i, j)`` is the point ``(j + 0.5 - behind) mpp`` m ahead of
    the ego along its heading and ``(i + 0.5 - H / 2) mpp`` m to its right (rows down = right:
    the ego's heading points right, as today's pixel frames point the road's direction).
    ``route`` ``(B, P, 2)`` (m): world ``b``'s first ``route_n[b]`` points are a polyline
    drawn as a band, every pixel whose centre lies within ``route_half`` m of it, over the road
    grey only (markings and the grass stay). Vehicles are drawn over both as the rectangles
    covering pixel centres (at least one pixel across), traffic first, the ego last;
    ``greys`` = (off-layer, traffic, obstacle, ego, stalled kind, road, route): kinds at or
    above the stalled kind draw as obstacles.
    """
    B, H, W = frames.shape
    N = x.shape[1]
    img = layer.img
    lh, lw = img.shape
    offroad, traffic, obstacle = greys[0], greys[1], greys[2]
    ego, stalled = greys[3], greys[4]
    road, band = greys[5], greys[6]
    r_px = route_half / mpp
    for b in range(B):
        f = frames[b]
        ex, ey, eh = x[b, 0], y[b, 0], heading[b, 0]
        c, s = math.cos(eh), math.sin(eh)
        for i in range(H):
            right = (i + 0.5 - 0.5 * H) * mpp
            for j in range(W):
                along = (j + 0.5 - behind) * mpp
                wx = ex + along * c + right * s
                wy = ey + along * s - right * c
                col = int(math.floor((wx - layer.x0) / layer.mpp))
                row = int(math.floor((layer.y0 - wy) / layer.mpp))
                if 0 <= row < lh and 0 <= col < lw:
                    f[i, j] = img[row, col]
                else:
                    f[i, j] = offroad
        for p in range(route_n[b] - 1):
            # The segment's ends in pixel units (column, row), as the vehicles' centres below.
            dx, dy = route[b, p, 0] - ex, route[b, p, 1] - ey
            c0, r0 = (dx * c + dy * s) / mpp + behind, (dx * s - dy * c) / mpp + 0.5 * H
            dx, dy = route[b, p + 1, 0] - ex, route[b, p + 1, 1] - ey
            c1, r1 = (dx * c + dy * s) / mpp + behind, (dx * s - dy * c) / mpp + 0.5 * H
            j0 = max(int(math.floor(min(c0, c1) - r_px)), 0)
            j1 = min(int(math.ceil(max(c0, c1) + r_px)) + 1, W)
            i0 = max(int(math.floor(min(r0, r1) - r_px)), 0)
            i1 = min(int(math.ceil(max(r0, r1) + r_px)) + 1, H)
            vc, vr = c1 - c0, r1 - r0
            vv = vc * vc + vr * vr
            for i in range(i0, i1):
                for j in range(j0, j1):
                    if f[i, j] != road:
                        continue
                    wc, wr = j + 0.5 - c0, i + 0.5 - r0
                    t = 0.0 if vv == 0.0 else min(max((wc * vc + wr * vr) / vv, 0.0), 1.0)
                    ec, er = wc - t * vc, wr - t * vr
                    if ec * ec + er * er <= r_px * r_px:
                        f[i, j] = band
        for k in range(N):
            e = k + 1 if k < N - 1 else 0
            if kind[b, e] < 0:
                continue
            grey = ego if e == 0 else (obstacle if kind[b, e] >= stalled else traffic)
            dx, dy = x[b, e] - ex, y[b, e] - ey
            col_c = (dx * c + dy * s) / mpp + behind
            row_c = (dx * s - dy * c) / mpp + 0.5 * H
            hl = 0.5 * max(length[b, e], mpp)
            hw = 0.5 * max(width[b, e], mpp)
            reach = math.hypot(hl, hw) / mpp + 1.0
            if col_c + reach < 0 or col_c - reach > W or row_c + reach < 0 or row_c - reach > H:
                continue
            rel = heading[b, e] - eh
            cr, sr = math.cos(rel), math.sin(rel)
            for i in range(max(int(row_c - reach), 0), min(int(row_c + reach) + 1, H)):
                pd = (i + 0.5 - row_c) * mpp
                for j in range(max(int(col_c - reach), 0), min(int(col_c + reach) + 1, W)):
                    ps = (j + 0.5 - col_c) * mpp
                    # Forward is (cos, -sin) in (along, right): a positive heading points left.
                    if abs(ps * cr - pd * sr) <= hl and abs(ps * sr + pd * cr) <= hw:
                        f[i, j] = grey
