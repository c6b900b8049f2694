"""The static road, painted once into cached tiles of world pixels and reused every frame.

Tiles are ``SIZE × SIZE`` squares of the unrotated world-pixel plane (``X = x·ppm``,
``Y = -y·ppm``). A tile is painted the first time a frame needs it and kept (least recently
used first out, so memory stays bounded on long roads); tiles no road reaches are never
stored, the caller fills them with grass. Each tile exists in two variants: the plain road,
and the road with the static part of the overlay (drivable-area tint, lane centres and
boundaries) painted on top, so toggling the overlay costs nothing per frame either.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402
from lanesim.sim.road import Road  # noqa: E402

SAMPLE_STEP = 2.0  # m between polyline points along the road; a 2 m chord on an 80 m arc errs 6 mm


def padded_surface(size: tuple[int, int], like: pygame.Surface | None,
                   pitch_mod: int) -> pygame.Surface:
    """A surface of ``size`` whose row pitch is ``pitch_mod`` modulo 16 bytes.

    Why: for 32-bit surfaces whose rows are all 16-byte aligned, SDL 2 copies and fills with
    non-temporal (cache-bypassing) SSE stores, 3-5× slower here than plain ``memcpy`` and
    leaving the frame out of cache for the drawing that follows. Tiles (pitch ≡ 4) blitted
    onto frames (pitch ≡ 8) can never meet SDL's alignment test, so every copy takes the fast
    path. The surface is a view into a slightly wider parent, kept alive by pygame.
    """
    w, h = size
    bpp = like.get_bytesize() if like is not None else 4
    extra = 0
    while (bpp * (w + extra)) % 16 != pitch_mod % 16 and extra < 16:
        extra += 1
    if extra == 16:  # not reachable for this depth; any pitch will do
        extra = 0
    parent = pygame.Surface((w + extra, h), 0, like) if like is not None else pygame.Surface((w + extra, h))
    return parent.subsurface((0, 0, w, h))


class RoadTiles:
    """Lazily painted road tiles for one road at one scale.

    Args:
        road: the road to paint.
        ppm: pixels per metre.
        like: tiles take this surface's pixel format, so blitting them is a plain copy.
        max_tiles: most tiles kept (each ``SIZE² × 4`` bytes, 256 KiB).
    """

    SIZE = 256

    def __init__(self, road: Road, ppm: float, like: pygame.Surface, max_tiles: int = 192) -> None:
        self.road, self.ppm, self.like, self.max_tiles = road, float(ppm), like, max_tiles
        n = max(int(math.ceil(road.length / SAMPLE_STEP)), 1) + 1
        self.sample_s = np.linspace(0.0, road.length, n)
        x, y, _ = road.to_world(self.sample_s, np.full(n, 0.5 * road.width))
        self.sample_X, self.sample_Y = x * ppm, -y * ppm
        # A tile needs painting if the road's middle line passes within this many pixels of it.
        self.reach = (0.5 * road.width + 4.0 + SAMPLE_STEP) * ppm
        self.half_line = 0.5 * style.line_px(ppm) / ppm  # m
        self.painted = 0  # tiles painted so far (tests check the cache works)
        self._runs: dict[tuple[int, int], list[tuple[float, float]]] = {}
        self._tiles: OrderedDict[tuple[int, int, bool], pygame.Surface] = OrderedDict()
        self._layer: pygame.Surface | None = None
        self._grass = padded_surface((self.SIZE, self.SIZE), like, 4)
        self._grass.fill(style.GRASS)
        # Every s where some lane's existence or drawn width changes course.
        cuts = []
        for sp in road.spans:
            cuts += [sp.start, sp.end, sp.start + sp.taper, sp.end - sp.taper]
        self.cuts = np.unique(np.clip(cuts, 0.0, road.length))

    # ------------------------------------------------------------------ cache
    def blit(self, dest: pygame.Surface, X0: int, Y0: int, overlay: bool) -> None:
        """Copy world pixels ``[X0, X0 + w) × [Y0, Y0 + h)`` onto all of ``dest`` (w × h)."""
        T = self.SIZE
        w, h = dest.get_size()
        for j in range(Y0 // T, (Y0 + h - 1) // T + 1):
            for i in range(X0 // T, (X0 + w - 1) // T + 1):
                # Grass is blitted, not filled: SDL fills 32-bit rows with slow streaming stores.
                dest.blit(self.tile(i, j, overlay) or self._grass, (i * T - X0, j * T - Y0))

    def tile(self, i: int, j: int, overlay: bool) -> pygame.Surface | None:
        """Tile ``(i, j)`` (world pixels ``[i·SIZE, (i+1)·SIZE)`` across, likewise down), or
        ``None`` where no road passes."""
        key = (i, j, overlay)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        runs = self.runs(i, j)
        if not runs:
            return None
        ox, oy = i * self.SIZE, j * self.SIZE
        tile = padded_surface((self.SIZE, self.SIZE), self.like, 4)
        if overlay:
            tile.blit(self.tile(i, j, False), (0, 0))
            self._paint_overlay(tile, runs, ox, oy)
        else:
            tile.fill(style.GRASS)
            for a, b in runs:
                self._paint_road(tile, a, b, ox, oy)
        self.painted += 1
        self._tiles[key] = tile
        while len(self._tiles) > self.max_tiles:
            self._tiles.popitem(last=False)
        return tile

    def runs(self, i: int, j: int) -> list[tuple[float, float]]:
        """Stretches ``(s0, s1)`` (m) of road that may cross tile ``(i, j)``."""
        key = (i, j)
        if key not in self._runs:
            T, r = self.SIZE, self.reach
            X, Y = self.sample_X, self.sample_Y
            near = (X > i * T - r) & (X < (i + 1) * T + r) & (Y > j * T - r) & (Y < (j + 1) * T + r)
            idx = np.flatnonzero(near)
            runs = []
            if len(idx):
                # The road may cross one tile several times (a hairpin): one run per crossing.
                breaks = np.flatnonzero(np.diff(idx) > 1)
                starts = np.concatenate([[idx[0]], idx[breaks + 1]])
                ends = np.concatenate([idx[breaks], [idx[-1]]])
                last = len(self.sample_s) - 1
                for a, b in zip(starts, ends, strict=True):
                    runs.append((self.sample_s[max(a - 1, 0)], self.sample_s[min(b + 1, last)]))
            self._runs[key] = runs
        return self._runs[key]

    # ------------------------------------------------------------------ geometry
    def _grid(self, s0: float, s1: float) -> np.ndarray:
        """Sorted stations in ``[s0, s1]``: the ends, every SAMPLE_STEP, and every cut inside."""
        inner = np.arange(math.ceil(s0 / SAMPLE_STEP), math.floor(s1 / SAMPLE_STEP) + 1) * SAMPLE_STEP
        cuts = self.cuts[(self.cuts > s0) & (self.cuts < s1)]
        return np.unique(np.concatenate([[s0, s1], inner, cuts]))

    def lane_edges(self, lane: int, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drawn left and right edges ``d`` (m) of ``lane`` at stations ``s``.

        Over a span's taper the lane narrows to nothing from its outer side (the left for lane
        0, else the right), the side its closure cones start from.
        """
        road = self.road
        sp = road.spans[lane]
        w = road.lane_width
        frac = np.ones_like(s)
        if sp.taper > 0:
            if sp.start > 0:
                frac = np.minimum(frac, np.clip((s - sp.start) / sp.taper, 0.0, 1.0))
            if road.lane_closes[lane]:
                frac = np.minimum(frac, np.clip((sp.end - s) / sp.taper, 0.0, 1.0))
        left = np.full_like(s, lane * w)
        right = left + w
        if lane == 0 and road.lanes > 1:
            left = right - frac * w
        else:
            right = left + frac * w
        return left, right

    def _px(self, s: np.ndarray, d: np.ndarray, ox: float, oy: float) -> np.ndarray:
        """Tile-local pixels ``(..., 2)`` of road points ``(s, d)``."""
        x, y, _ = self.road.to_world(s, d)
        return np.stack((x * self.ppm - ox, -y * self.ppm - oy), -1)

    def _strip(self, surf, s, d0, d1, colour, ox, oy) -> None:
        """Fill the band between lateral positions ``d0`` and ``d1`` (arrays over ``s``)."""
        if len(s) < 2:
            return
        pts = np.concatenate([self._px(s, d0, ox, oy), self._px(s[::-1], d1[::-1], ox, oy)])
        pygame.draw.polygon(surf, colour, pts.tolist())

    def _pieces(self, a: float, b: float):
        """``(p0, p1, exists)``: stretches of ``[a, b]`` over which no lane starts or ends, and
        which lanes exist there (bool ``(lanes,)``)."""
        road = self.road
        edges = np.unique(np.concatenate([[a, b], road.lane_start, road.lane_end]))
        edges = edges[(edges >= a) & (edges <= b)]
        lanes = np.arange(road.lanes)
        for p0, p1 in zip(edges[:-1], edges[1:], strict=True):
            if p1 - p0 > 1e-6:
                yield p0, p1, road.lane_exists(lanes, 0.5 * (p0 + p1))

    # ------------------------------------------------------------------ painting
    def _paint_road(self, surf: pygame.Surface, a: float, b: float, ox: float, oy: float) -> None:
        """Asphalt per lane span, solid edges, dashed lane lines and lane-end bars over [a, b]."""
        road, hw, w = self.road, self.half_line, self.road.lane_width
        for lane, sp in enumerate(road.spans):
            lo, hi = max(a, sp.start), min(b, sp.end)
            if hi > lo:
                s = self._grid(lo, hi)
                self._strip(surf, s, *self.lane_edges(lane, s), style.ASPHALT, ox, oy)
        for p0, p1, exists in self._pieces(a, b):
            s = self._grid(p0, p1)
            for lane in np.flatnonzero(exists):
                left, right = self.lane_edges(int(lane), s)
                if lane == 0 or not exists[lane - 1]:
                    self._strip(surf, s, left - hw, left + hw, style.MARKING, ox, oy)
                else:
                    self._dashes(surf, p0, p1, lane * w, ox, oy)
                if lane == road.lanes - 1 or not exists[lane + 1]:
                    self._strip(surf, s, right - hw, right + hw, style.MARKING, ox, oy)
        # A lane that starts or ends abruptly (no taper) gets a bar across it.
        for lane, sp in enumerate(road.spans):
            if sp.taper > 0:
                continue
            for s_end in (sp.start, sp.end):
                if 0.0 < s_end < road.length and a <= s_end <= b:
                    s = np.array([s_end - hw, s_end + hw])
                    self._strip(surf, s, np.full(2, lane * w), np.full(2, (lane + 1) * w),
                                style.MARKING, ox, oy)

    def _dashes(self, surf, p0: float, p1: float, d: float, ox: float, oy: float) -> None:
        """Dashes along lateral position ``d`` over ``[p0, p1]``, anchored to ``s``."""
        P, D, hw = style.DASH_PERIOD, style.DASH, self.half_line
        starts = np.arange(math.floor(p0 / P), math.floor(p1 / P) + 1) * P
        s0, s1 = np.maximum(starts, p0), np.minimum(starts + D, p1)
        keep = s1 > s0
        if not keep.any():
            return
        s0, s1 = s0[keep], s1[keep]
        s = np.stack([s0, s1, s1, s0], 1)
        dd = np.array([d - hw, d - hw, d + hw, d + hw])
        for quad in self._px(s, np.broadcast_to(dd, s.shape), ox, oy).tolist():
            pygame.draw.polygon(surf, style.MARKING, quad)

    def _paint_overlay(self, surf: pygame.Surface, runs, ox: float, oy: float) -> None:
        """Static overlay: drivable-area tint (whole lanes, tapers included, since the
        simulator counts them drivable), thin lane centre lines and lane boundaries."""
        road, w = self.road, self.road.lane_width
        if self._layer is None:
            self._layer = pygame.Surface((self.SIZE, self.SIZE), pygame.SRCALPHA)
        layer = self._layer
        layer.fill((0, 0, 0, 0))
        for a, b in runs:
            for lane, sp in enumerate(road.spans):
                lo, hi = max(a, sp.start), min(b, sp.end)
                if hi > lo:
                    s = self._grid(lo, hi)
                    ones = np.ones_like(s)
                    self._strip(layer, s, lane * w * ones, (lane + 1) * w * ones,
                                style.DRIVABLE_TINT, ox, oy)
        surf.blit(layer, (0, 0))
        for a, b in runs:
            for lane, sp in enumerate(road.spans):
                lo, hi = max(a, sp.start), min(b, sp.end)
                if hi > lo:
                    s = self._grid(lo, hi)
                    pts = self._px(s, np.full_like(s, (lane + 0.5) * w), ox, oy)
                    pygame.draw.aalines(surf, style.LANE_CENTRE, False, pts.tolist())
            for p0, p1, exists in self._pieces(a, b):
                s = self._grid(p0, p1)
                for lane in np.flatnonzero(exists[1:] & exists[:-1]) + 1:
                    pts = self._px(s, np.full_like(s, lane * w), ox, oy)
                    pygame.draw.aalines(surf, style.LANE_BOUNDARY, False, pts.tolist())
