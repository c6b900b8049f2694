"""The static road: painted once into cached tiles of world pixels and reused every frame
while the view is unrotated (a straight road), painted straight into the view where it is
rotated (a curve).

Everything is painted finer (TILE_SUPERSAMPLE, VIEW_SUPERSAMPLE times the resolution per axis)
and smoothly scaled down, so edges, tapers and curved lines come out anti-aliased at every
size, and bands that meet leave no seam (pygame's own anti-aliased lines leave gaps and dark
pixels where segments join). A rotated view is painted from the road's geometry, not by
rotating a raster, which turns thin lines into speckles (nearest pixel) or faint dots
(filtered).

Tiles are ``SIZE × SIZE`` squares of the unrotated world-pixel plane (``X = x·ppm``,
``Y = -y·ppm``). A tile is painted the first time a frame needs it and kept (least recently
used first out, so memory stays bounded on long roads); tiles no road reaches are never
stored, the caller fills them with grass. Each tile exists in two variants: the plain road,
and the road with the static part of the overlay (drivable-area tint, lane centres) painted
in, so toggling the overlay costs nothing per frame either.

The road's geometry is worked out once, for its whole length, as *features* (bands and dashes
in world pixels, each over a range of stations along the road); painting a tile or a view only
slices the features that cross it and hands them to pygame.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.camera.raster import lane_edges  # noqa: E402
from lanesim.render import style  # noqa: E402
from lanesim.sim.road import Road  # noqa: E402

SAMPLE_STEP = 2.0  # m between polyline points along the road; a 2 m chord on an 80 m arc errs 6 mm
# Painting resolution, per axis, before smooth downscaling: finer for tiles, painted once, than
# for rotated views, painted every frame. Powers of two: smoothscale keeps a flat colour exact
# only then (by 3, grass and asphalt come out 2 units darker).
TILE_SUPERSAMPLE = 4
VIEW_SUPERSAMPLE = 2
BAND_PIECE = 6  # stations per polygon when painting a band


def padded_surface(size: tuple[int, int], like: pygame.Surface | None,
                   pitch_mod: int) -> pygame.Surface:
    """A surface of ``size`` whose row pitch is ``pitch_mod`` modulo 16 bytes.

    Why: for 32-bit surfaces whose rows are all 16-byte aligned, SDL 2 copies and fills with
    non-temporal (cache-bypassing) SSE stores, 3-5× slower here than plain ``memcpy`` and
    leaving the frame out of cache for the drawing that follows. Tiles (pitch ≡ 4) never meet
    SDL's alignment test, so every copy of one takes the fast path. The surface is a view into
    a slightly wider parent, kept alive by pygame.
    """
    w, h = size
    bpp = like.get_bytesize() if like is not None else 4
    extra = 0
    while (bpp * (w + extra)) % 16 != pitch_mod % 16 and extra < 16:
        extra += 1
    if extra == 16:  # not reachable for this depth; any pitch will do
        extra = 0
    if like is None:
        parent = pygame.Surface((w + extra, h))
    else:
        parent = pygame.Surface((w + extra, h), 0, like)
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
        self.geometry = RoadGeometry(road, ppm)
        g = self.geometry
        # A tile needs painting if the road's middle line passes within this many pixels of it.
        self.reach = (0.5 * road.width + 4.0 + SAMPLE_STEP) * ppm
        self.middle = g.points(0.5 * road.width)  # (n, 2) world pixels
        self.painted = 0  # tiles painted so far (tests check the cache works)
        self._runs: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._tiles: OrderedDict[tuple[int, int, bool], pygame.Surface] = OrderedDict()
        self._grass = padded_surface((self.SIZE, self.SIZE), like, 4)
        self._grass.fill(style.GRASS)
        k = TILE_SUPERSAMPLE
        self._fine = pygame.Surface((k * self.SIZE, k * self.SIZE), 0, like)
        self._coarse = pygame.Surface((self.SIZE, self.SIZE), 0, like)
        self._view_fine: pygame.Surface | None = None
        self._view_coarse: pygame.Surface | None = None

    def draw(self, dest: pygame.Surface, view, s: float, overlay: bool) -> None:
        """The road under ``view`` (a :class:`~lanesim.render.view.View`) onto ``dest``, the
        world's part of the surface (``view.rect()``); ``s`` (m) is the station at the view's
        anchor. Unrotated, the cached tiles are copied; rotated, the stations within the
        view's reach are painted into it directly."""
        if view.theta == 0.0:
            self.blit(dest, view.left + int(-view.e), int(-view.f), overlay)
            return
        w, h = dest.get_size()
        k = VIEW_SUPERSAMPLE
        if self._view_fine is None or self._view_coarse.get_size() != (w, h):
            self._view_fine = pygame.Surface((k * w, k * h), 0, self.like)
            self._view_coarse = pygame.Surface((w, h), 0, self.like)
        g = self.geometry
        # Stations that can be in view: within the view's radius of its centre, measured
        # along the road (20 % more: arcs are longer than chords, outer lanes than the
        # reference line).
        cx, cy = view.centre()
        ax, ay = view.world(view.ax, view.ay)
        reach = 1.2 * (view.radius() + math.hypot(cx - ax, cy - ay)) + self.road.width
        runs = [(g.index(s - reach), g.index(s + reach) + 1)]
        if self.road.closed:  # the stations round the seam are in view too
            if s - reach < 0.0:
                runs.append((g.index(s - reach + self.road.length), len(g.s)))
            if s + reach > self.road.length:
                runs.append((0, g.index(s + reach - self.road.length) + 1))
        # World pixels (X, Y) = (x, -y)·ppm to the fine surface: k · (view point - (left, 0)).
        m = k / self.ppm * np.array([[view.a, -view.b], [view.c, -view.d]])
        t = k * np.array([view.e - view.left, view.f])
        self._view_fine.fill(style.GRASS)
        g.paint(self._view_fine, runs, overlay, m, t)
        pygame.transform.smoothscale(self._view_fine, (w, h), self._view_coarse)
        dest.blit(self._view_coarse, (0, 0))

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
        tile = padded_surface((self.SIZE, self.SIZE), self.like, 4)
        k = TILE_SUPERSAMPLE
        offset = np.array([i * self.SIZE, j * self.SIZE], dtype=np.float64)
        self._fine.fill(style.GRASS)
        self.geometry.paint(self._fine, runs, overlay, k * np.eye(2), -k * offset)
        pygame.transform.smoothscale(self._fine, (self.SIZE, self.SIZE), self._coarse)
        tile.blit(self._coarse, (0, 0))
        self.painted += 1
        self._tiles[key] = tile
        while len(self._tiles) > self.max_tiles:
            self._tiles.popitem(last=False)
        return tile

    def runs(self, i: int, j: int) -> list[tuple[int, int]]:
        """Station index ranges ``[i0, i1)`` of road that may cross tile ``(i, j)``."""
        key = (i, j)
        if key not in self._runs:
            T, r = self.SIZE, self.reach
            X, Y = self.middle[:, 0], self.middle[:, 1]
            near = (X > i * T - r) & (X < (i + 1) * T + r) & (Y > j * T - r) & (Y < (j + 1) * T + r)
            idx = np.flatnonzero(near)
            runs = []
            if len(idx):
                # The road may cross one tile several times (a hairpin): one run per crossing.
                breaks = np.flatnonzero(np.diff(idx) > 1)
                starts = np.concatenate([[idx[0]], idx[breaks + 1]])
                ends = np.concatenate([idx[breaks], [idx[-1]]])
                last = len(X) - 1
                runs = [(max(int(a) - 1, 0), min(int(b) + 2, last + 1))
                        for a, b in zip(starts, ends, strict=True)]
            self._runs[key] = runs
        return self._runs[key]


@dataclass
class Feature:
    """Something painted along the road over stations ``[i0, i1)``.

    ``kind`` is ``"band"`` (a polygon between the polylines ``a`` and ``b``, each ``(n, 2)``
    world pixels for the stations ``i0..i1-1``) or ``"quads"`` (``a`` is ``(m, 4, 2)`` small
    polygons; ``b`` their ``(m,)`` first station).
    ``overlay`` is None for the plain road, True for the overlay only, False for the plain
    variant only. Features paint in list order.
    """

    kind: str
    colour: tuple[int, int, int]
    i0: int
    i1: int
    a: np.ndarray
    b: np.ndarray | None = None
    overlay: bool | None = None

    def __post_init__(self) -> None:
        self.first = self.b.tolist() if self.kind == "quads" else []  # for bisect, per tile


def _blend(under: tuple[int, int, int], over: tuple[int, int, int, int]) -> tuple[int, int, int]:
    a = over[3] / 255.0
    return tuple(round(u * (1 - a) + o * a) for u, o in zip(under, over[:3], strict=False))


# The drivable-area tint, pre-blended: painting opaque colours needs no alpha blit per tile.
TINT_ON_ASPHALT = _blend(style.ASPHALT, style.DRIVABLE_TINT)
TINT_ON_GRASS = _blend(style.GRASS, style.DRIVABLE_TINT)


class RoadGeometry:
    """The whole road as :class:`Feature` lists, in world pixels, computed once.

    Stations: every SAMPLE_STEP metres plus every *cut* (a span start or end, or a taper
    end), so lanes start, end and bend exactly at stations.
    """

    def __init__(self, road: Road, ppm: float) -> None:
        self.road, self.ppm = road, ppm
        cuts = []
        for sp in road.spans:
            cuts += [sp.start, sp.end, sp.start + sp.taper, sp.end - sp.taper]
        grid = np.arange(0.0, road.length, SAMPLE_STEP)
        self.s = np.unique(np.clip(np.concatenate([grid, [road.length], cuts]), 0, road.length))
        self.s_list = self.s.tolist()
        x, y, h, _ = road.reference_pose(self.s)
        self.X, self.Y = x * ppm, -y * ppm
        # Right of heading h is (sin h, -cos h) in the world, (sin h, cos h) in pixels (y down).
        self.NX, self.NY = np.sin(h) * ppm, np.cos(h) * ppm
        self.half_line = 0.5 * style.line_px(ppm) / ppm  # m
        self.half_centre = 0.5 * style.centre_px(ppm) / ppm  # m
        self.features = self._features()

    def index(self, s: float) -> int:
        """Index of station ``s`` (span ends and cuts are stations; else the one at or after)."""
        return min(bisect_left(self.s_list, s - 1e-9), len(self.s_list) - 1)

    def points(self, d, i0: int = 0, i1: int | None = None) -> np.ndarray:
        """``(n, 2)`` world pixels at lateral ``d`` (m, scalar or per station) over i0..i1-1."""
        sl = slice(i0, i1)
        return np.stack((self.X[sl] + d * self.NX[sl], self.Y[sl] + d * self.NY[sl]), -1)

    def _pieces(self):
        """``(i0, i1, p0, p1, exists)``: stretches over which no lane starts or ends, and which
        lanes exist there (bool ``(lanes,)``)."""
        road = self.road
        edges = np.unique(np.clip(np.concatenate([[0.0, road.length], road.lane_start,
                                                  road.lane_end]), 0.0, road.length))
        lanes = np.arange(road.lanes)
        for p0, p1 in zip(edges[:-1], edges[1:], strict=True):
            if p1 - p0 > 1e-6:
                yield (self.index(p0), self.index(p1) + 1, float(p0), float(p1),
                       road.lane_exists(lanes, 0.5 * (p0 + p1)))

    def _features(self) -> list[Feature]:
        road, w, hw = self.road, self.road.lane_width, self.half_line
        tint, asphalt, paint, over = [], [], [], []
        for lane, sp in enumerate(road.spans):
            i0, i1 = self.index(sp.start), self.index(sp.end) + 1
            if i1 - i0 < 2:
                continue
            # The whole lane counts as drivable, its taper included.
            tint.append(Feature("band", TINT_ON_GRASS, i0, i1, self.points(lane * w, i0, i1),
                                self.points((lane + 1) * w, i0, i1), True))
            left, right = lane_edges(road, lane, self.s[i0:i1])
            pl, pr = self.points(left, i0, i1), self.points(right, i0, i1)
            asphalt.append(Feature("band", style.ASPHALT, i0, i1, pl, pr, False))
            asphalt.append(Feature("band", TINT_ON_ASPHALT, i0, i1, pl, pr, True))
            centre, hc = (lane + 0.5) * w, self.half_centre
            over.append(Feature("band", style.LANE_CENTRE, i0, i1, self.points(centre - hc, i0, i1),
                                self.points(centre + hc, i0, i1), overlay=True))
            for s_end in (sp.start, sp.end):  # a bar across a lane starting or ending abruptly
                if sp.taper == 0 and 0.0 < s_end < road.length:
                    i = self.index(s_end)
                    quad = self._quads(np.array([s_end - hw]), np.array([s_end + hw]),
                                       lane * w, (lane + 1) * w)
                    paint.append(Feature("quads", style.MARKING, i, i + 1, quad, np.array([i])))
        for i0, i1, p0, p1, exists in self._pieces():
            for lane in np.flatnonzero(exists):
                left, right = lane_edges(road, int(lane), self.s[i0:i1])
                # Solid at an edge and between the directions of a two-way road.
                opposite = lane > 0 and road.lane_direction[lane] != road.lane_direction[lane - 1]
                if lane == 0 or not exists[lane - 1] or opposite:
                    paint.append(Feature("band", style.MARKING, i0, i1,
                                         self.points(left - hw, i0, i1),
                                         self.points(left + hw, i0, i1)))
                else:
                    paint.append(self._dashes(p0, p1, lane * w))
                if lane == road.lanes - 1 or not exists[lane + 1]:
                    paint.append(Feature("band", style.MARKING, i0, i1,
                                         self.points(right - hw, i0, i1),
                                         self.points(right + hw, i0, i1)))
        return tint + asphalt + paint + over

    def _quads(self, s0: np.ndarray, s1: np.ndarray, d0: float, d1: float) -> np.ndarray:
        """``(m, 4, 2)`` world pixels of the road patches ``[s0, s1] × [d0, d1]``."""
        s = np.stack([s0, s1, s1, s0], 1)
        d = np.broadcast_to(np.array([d0, d0, d1, d1]), s.shape)
        x, y, _ = self.road.to_world(s, d)
        return np.stack((x * self.ppm, -y * self.ppm), -1)

    def _dashes(self, p0: float, p1: float, d: float) -> Feature:
        """Dashes along lateral position ``d`` over ``[p0, p1]``, anchored to ``s``."""
        P, D, hw = style.DASH_PERIOD, style.DASH, self.half_line
        starts = np.arange(math.floor(p0 / P), math.floor(p1 / P) + 1) * P
        s0, s1 = np.maximum(starts, p0), np.minimum(starts + D, p1)
        keep = s1 > s0
        s0, s1 = s0[keep], s1[keep]
        first = np.searchsorted(self.s, s0, side="right") - 1  # station at or before each dash
        return Feature("quads", style.MARKING, self.index(p0), self.index(p1) + 1,
                       self._quads(s0, s1, d - hw, d + hw), first)

    def paint(self, surf: pygame.Surface, runs: list[tuple[int, int]], overlay: bool,
              m: np.ndarray, t: np.ndarray) -> None:
        """Paint the stations ``runs`` (index ranges) onto ``surf``, world pixels ``p`` going
        to ``m @ p + t`` (``m`` ``(2, 2)``, ``t`` ``(2,)``: a tile's offset and scale, or a
        view's rotation)."""
        polygon, mt = pygame.draw.polygon, m.T
        for f in self.features:
            if f.overlay is not None and f.overlay != overlay:
                continue
            for r0, r1 in runs:
                i0, i1 = max(f.i0, r0), min(f.i1, r1)
                if f.kind == "quads":
                    k0, k1 = bisect_left(f.first, r0 - 1), bisect_right(f.first, r1)
                    for quad in (f.a[k0:k1] @ mt + t).tolist():
                        polygon(surf, f.colour, quad)
                    continue
                if i1 - i0 < 2:
                    continue
                a = (f.a[i0 - f.i0 : i1 - f.i0] @ mt + t).tolist()
                b = (f.b[i0 - f.i0 : i1 - f.i0] @ mt + t).tolist()
                # In pieces of BAND_PIECE stations: pygame fills a polygon scanning every edge
                # on every row it spans, so one long band across a rotated view costs ~10 ms.
                for c in range(0, len(a) - 1, BAND_PIECE):
                    polygon(surf, f.colour, a[c : c + BAND_PIECE + 1]
                            + b[c : c + BAND_PIECE + 1][::-1])
