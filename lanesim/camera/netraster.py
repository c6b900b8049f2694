"""The camera renderer on road networks: what a :class:`~lanesim.camera.model.Camera` on the
ego sees of a :class:`~lanesim.sim.network.Network`, compiled.

The one-road renderer (:mod:`lanesim.camera.raster`) puts each pixel's ground point in road
coordinates. A network has no one road frame, so here the ground is a texture instead:

* **The ground texture** is made once per renderer from the network's static layer
  (:func:`lanesim.raster.network.static_polygons`: every lane's surface, the markings, solid,
  dashed and the yield lines): rasterized at half of :data:`TEXEL` m, averaged 2 × 2 to
  :data:`TEXEL` m per texel in the palette's colours (so a 15 cm line is already partly
  covered texels, not a stair), then halved again and again into a mip pyramid.
* **A ground pixel** takes the colour of its footprint on the ground (the camera tables'
  ``footprint``, as the one-road renderer weighs paint by it): up to :data:`MAX_ANISOTROPY`
  bilinear samples spread along its long side, at the pyramid level whose texels are as wide
  as the samples are apart (at least the short side), each blended with the next level
  (trilinear); all of it fixed in the vehicle frame and made once (:func:`footprint_filters`).
  Far lines fade into the road instead of flickering, and a line seen at a glancing angle
  stays as sharp across as the pixel allows. Off the texture is off-road ground; the road
  fades into the ground over the last :data:`~lanesim.camera.raster.FADE_DISTANCE` as on one
  road, and colour images get the same haze.
* **Sky, far ground and vehicles** are the one-road renderer's (its background, its ray-cast
  boxes with the depth buffer and sun shading), reading the network state's ``(B, N)`` fields;
  empty slots (kind < 0) are not drawn, nor is the ego.

Grey levels and colours are the one-road renderer's palette: road 95, off-road 50, dashed
185, solid and yield lines 230, cars 185 (darker faces down to 120), crashed cars 25.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from numba import njit

from lanesim.camera.model import Camera
from lanesim.camera.raster import (
    DASHED_ROW,
    GROUND_ROW,
    HAZE,
    ROAD_ROW,
    SKY_HORIZON_ROW,
    SOLID_ROW,
    CameraTables,
    _background,
    _boxes,
    _put,
    camera_tables,
    palette,
)
from lanesim.raster.kernels import rasterize
from lanesim.raster.network import LINE_WIDTH, static_polygons
from lanesim.sim.jit import kernel, kernel_inline
from lanesim.sim.network import Network
from lanesim.sim.state import HEADING, KIND, LENGTH, WIDTH, X, Y
from lanesim.sim.world import CAR

__all__ = ["GroundTexture", "NetworkCameraRaster", "ground_texture"]

TEXEL = 0.1  # m per texel of the texture's finest level
MAX_TEXELS = 1 << 24  # texels of the finest level at most; a larger network gets coarser ones
MAX_ANISOTROPY = 8  # samples along a footprint's long side at most
BAND_ROWS = 64  # rows of the half-texel label raster made at a time (bounds its memory)
FAR = 1.0e6  # m: where empty slots are put for the box caster (beyond DRAW_DISTANCE)
THREADS = min(os.cpu_count() or 1, 8)  # drawing threads for a large batch (as NetWorld steps)


class GroundTexture(NamedTuple):
    """The network's ground as a mip pyramid of world-aligned (north-up) colour texels.

    Level ``l`` is ``rows[l] × cols[l]`` texels of ``texel · 2^l`` m, stored row-major from
    ``data[offset[l]]``; texel ``(i, j)`` of level ``l`` covers the square whose top-left corner
    is world ``(x0 + j t, y0 - i t)`` with ``t = texel · 2^l``."""

    data: np.ndarray  # (T, C) uint8: every level's texels, one after another
    offset: np.ndarray  # (levels,) int: where each level starts in data
    rows: np.ndarray  # (levels,) int
    cols: np.ndarray  # (levels,) int
    x0: float  # m, the texture's west edge
    y0: float  # m, its north edge
    texel: float  # m per texel of level 0


def ground_texture(network: Network, colours: np.ndarray, yield_ends: Sequence[int] = (),
                   texel: float = TEXEL) -> GroundTexture:
    """The ground texture of ``network`` in the palette ``colours`` (``(rows, C)``, rows as
    :func:`lanesim.camera.raster.palette`): off-road, road, dashed and solid markings (yield
    lines across the end of the lanes ``yield_ends`` are solid). ``texel`` (m, 0.02 to 5) is
    raised for a network whose finest level would pass :data:`MAX_TEXELS`."""
    if not (isinstance(texel, int | float) and not isinstance(texel, bool)
            and math.isfinite(texel) and 0.02 <= texel <= 5.0):
        raise ValueError(f"texel must be a number of metres from 0.02 to 5, got {texel!r}")
    polys = static_polygons(network, tuple(int(v) for v in yield_ends), LINE_WIDTH)
    margin = 20.0
    lo, hi = polys.xy.min(0) - margin, polys.xy.max(0) + margin
    span_x, span_y = hi - lo
    texel = max(float(texel), math.sqrt(span_x * span_y / MAX_TEXELS))
    cols, rows = math.ceil(span_x / texel), math.ceil(span_y / texel)
    x0, y0 = float(lo[0]), float(hi[1])
    # Labels (static_polygons' order: off-road, road, dashed, solid, yield) to colours.
    lut = colours[[GROUND_ROW, ROAD_ROW, DASHED_ROW, SOLID_ROW, SOLID_ROW]].astype(np.float32)
    C = colours.shape[1]
    level = np.empty((rows, cols, C), dtype=np.uint8)
    labels = np.zeros((2 * BAND_ROWS, 2 * cols), dtype=np.uint8)
    for r0 in range(0, rows, BAND_ROWS):
        n = min(BAND_ROWS, rows - r0)
        band = labels[: 2 * n]
        band[:] = 0
        rasterize(polys, x0, y0, 0.5 * texel, 2 * r0, band)
        col = lut[band]  # (2n, 2 cols, C)
        level[r0 : r0 + n] = np.floor(0.25 * (col[0::2, 0::2] + col[0::2, 1::2]
                                              + col[1::2, 0::2] + col[1::2, 1::2]) + 0.5)
    levels = [level]
    while min(level.shape[:2]) > 1:
        h, w = level.shape[0] // 2, level.shape[1] // 2
        total = level[0 : 2 * h : 2, 0 : 2 * w : 2].astype(np.uint16)
        for di, dj in ((0, 1), (1, 0), (1, 1)):
            total += level[di : 2 * h : 2, dj : 2 * w : 2]
        level = ((total + 2) // 4).astype(np.uint8)
        levels.append(level)
    sizes = [lv.shape[0] * lv.shape[1] for lv in levels]
    return GroundTexture(
        data=np.concatenate([lv.reshape(-1, C) for lv in levels]),
        offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
        rows=np.array([lv.shape[0] for lv in levels], dtype=np.int64),
        cols=np.array([lv.shape[1] for lv in levels], dtype=np.int64),
        x0=x0, y0=y0, texel=texel,
    )


class FootprintFilters(NamedTuple):
    """How each ground pixel samples the texture; fixed in the vehicle frame, made once."""

    samples: np.ndarray  # (G,) int: bilinear samples along the footprint's long side
    step: np.ndarray  # (G, 2) m: from one sample to the next, vehicle frame
    level: np.ndarray  # (G,) int: the finer of the two pyramid levels sampled
    blend: np.ndarray  # (G,) the coarser level's share (trilinear)


def footprint_filters(tables: CameraTables, texture: GroundTexture) -> FootprintFilters:
    """Per ground pixel of ``tables``: ``n`` samples spread evenly along its footprint's long
    side (as many as it is times its short side, rounded, 1 to :data:`MAX_ANISOTROPY`), each
    at the pyramid level whose texels are as wide as the samples are apart."""
    a, b = tables.footprint[:, :2], tables.footprint[:, 2:]
    la, lb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    long_side = np.where((la >= lb)[:, None], a, b)
    long, short = np.maximum(la, lb), np.maximum(np.minimum(la, lb), 1e-9)
    # A footprint that is not finite (none is, for any accepted camera) gets one sample at
    # the coarsest level rather than NaN indices.
    bad = ~(np.isfinite(long) & np.isfinite(short) & np.isfinite(long_side).all(axis=1))
    long, short = np.where(bad, 1.0, long), np.where(bad, 1.0, short)
    long_side = np.where(bad[:, None], 0.0, long_side)
    n = np.clip(np.rint(long / short), 1, MAX_ANISOTROPY).astype(np.int64)
    spacing = np.maximum(long / n, short)
    top = len(texture.rows) - 1
    lod = np.where(bad, top, np.clip(np.log2(spacing / texture.texel), 0.0, top))
    level = np.minimum(np.floor(lod).astype(np.int64), top)
    return FootprintFilters(samples=n, step=long_side / n[:, None], level=level,
                            blend=lod - level)


class NetworkCameraRaster:
    """Renders what ``camera`` (mounted on the ego, entity 0) sees on ``network``.

    Args:
        camera: the camera; its ``image_size`` ``(W, H)`` is the image's.
        network: the road network of the worlds it draws.
        colour: RGB images ``(H, W, 3)`` instead of grey ``(H, W)``, uint8 either way.
        yield_ends: lanes with a yield line across their end (``NetRun.yield_ends``).
        texel: m per texel of the ground texture's finest level (:func:`ground_texture`).
        texture: a ground texture of this network in this palette to share (e.g. another
            renderer's ``texture``), instead of making one (``yield_ends`` and ``texel`` are
            then unused).

    The worlds are given per call as their ``(B, N)`` fields (a
    :class:`~lanesim.sim.networld.NetWorld`'s ``x, y, heading, length, width, kind,
    crashed``): :meth:`draw` and :meth:`of_world`. A batch of at least 8 worlds per thread is
    drawn on :data:`THREADS` threads (the kernel releases the GIL; :meth:`close` stops them).
    """

    def __init__(self, camera: Camera, network: Network, colour: bool = False,
                 yield_ends: Sequence[int] = (), texel: float = TEXEL,
                 texture: GroundTexture | None = None) -> None:
        if not isinstance(camera, Camera):
            raise TypeError(f"camera must be a lanesim.camera.Camera, got {type(camera).__name__}")
        if not isinstance(network, Network):
            raise TypeError(f"network must be a lanesim.sim.network.Network, got "
                            f"{type(network).__name__}")
        self.camera, self.network, self.colour = camera, network, bool(colour)
        w, h = camera.image_size
        self.shape = (h, w, 3) if self.colour else (h, w)
        self._palette = palette(self.colour)
        self.tables = camera_tables(camera, self._palette, HAZE if self.colour else 0.0)
        if texture is None:
            texture = ground_texture(network, self._palette, yield_ends, texel)
        elif not isinstance(texture, GroundTexture) or texture.data.shape[1] != (
                3 if self.colour else 1):
            raise ValueError("texture must be a GroundTexture of the same colour mode (another "
                             "NetworkCameraRaster's texture)")
        self.texture = texture
        self.filters = footprint_filters(self.tables, texture)
        self._F = self._I = self._crashed = None
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the drawing threads (a later large batch starts them again)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def of_world(self, world, worlds: np.ndarray | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
        """Draw the worlds of a network world selected by ``worlds`` (bool ``(B,)``, default
        all) into ``out`` (``(B, H, W)`` or ``(B, H, W, 3)`` uint8, made if None; other worlds'
        images are untouched); returns ``out``."""
        return self.draw(world.x, world.y, world.heading, world.length, world.width,
                         world.kind, world.crashed, worlds, out)

    def draw(self, x, y, heading, length, width, kind, crashed,
             worlds: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Draw B worlds from their ``(B, N)`` entity fields (m, rad; ``kind`` -1 an empty
        slot, entity 0 the ego holding the camera; ``crashed`` bool) into ``out`` (see
        :meth:`of_world`); returns ``out``. ``out`` may be a strided view."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] < 1:
            raise ValueError(f"x must be a (B, N) array with N >= 1, got shape {x.shape}")
        B, N = x.shape
        fields = dict(y=y, heading=heading, length=length, width=width, kind=kind,
                      crashed=crashed)
        for name, a in fields.items():
            if np.shape(a) != (B, N):
                raise ValueError(f"{name} must have x's shape {(B, N)}, got {np.shape(a)}")
        if worlds is None:
            worlds = np.ones(B, dtype=bool)
        worlds = np.asarray(worlds)
        if worlds.dtype != np.bool_ or worlds.shape != (B,):
            raise ValueError(f"worlds must be a bool mask of shape ({B},), got {worlds.dtype} "
                             f"{worlds.shape}")
        expect = (B, *self.shape)
        if out is None:
            out = np.zeros(expect, dtype=np.uint8)
        elif not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != expect:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            kind_name = "RGB" if self.colour else "grey"
            raise ValueError(f"out must be a uint8 array {expect} for {kind_name} images, "
                             f"got {got}")
        if not out.flags.writeable:
            raise ValueError("out must be writeable")
        F, I, crash = self._fields(B, N)
        # The box caster reads the one-road state layout; empty slots go far off, as cars.
        empty = np.asarray(kind) < 0
        F[X] = np.where(empty, x[:, :1] + FAR, x)
        F[Y] = np.where(empty, np.asarray(y)[:, :1] + FAR, y)
        F[HEADING], F[LENGTH], F[WIDTH] = heading, length, width
        I[KIND] = np.where(empty, CAR, kind)
        crash[:] = crashed
        args = (tuple(self.tables), tuple(self.texture), tuple(self.filters), F, I, crash,
                self._palette, out if self.colour else out[..., None], worlds)
        if THREADS < 2 or B < 8 * THREADS:
            draw_net_worlds(*args, 0, B)
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS - 1, thread_name_prefix="netcamera")
        bounds = np.linspace(0, B, THREADS + 1).astype(int)
        jobs = [self._pool.submit(draw_net_worlds, *args, lo, hi)
                for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
        draw_net_worlds(*args, 0, int(bounds[1]))
        for job in jobs:
            job.result()
        return out

    def image(self, world, b: int = 0) -> np.ndarray:
        """A fresh ``(H, W)`` or ``(H, W, 3)`` uint8 image of world ``b`` of a network world
        (for the viewer and tests)."""
        if not isinstance(b, int | np.integer) or not 0 <= b < world.x.shape[0]:
            raise ValueError(f"b must be a world index from 0 to {world.x.shape[0] - 1}, "
                             f"got {b!r}")
        one = slice(int(b), int(b) + 1)
        return self.draw(world.x[one], world.y[one], world.heading[one], world.length[one],
                         world.width[one], world.kind[one], world.crashed[one])[0]

    def _fields(self, B: int, N: int):
        """Scratch arrays in the one-road layout, ``F`` ``(WIDTH + 1, B, N)`` and ``I``, kept
        between calls of one shape."""
        if self._F is None or self._F.shape[1:] != (B, N):
            self._F = np.zeros((max(X, Y, HEADING, LENGTH, WIDTH) + 1, B, N))
            self._I = np.zeros((KIND + 1, B, N), dtype=np.int64)
            self._crashed = np.zeros((B, N), dtype=bool)
        return self._F, self._I, self._crashed


# ---------------------------------------------------------------------- compiled drawing
# As lanesim.camera.raster.draw_worlds: the entry allocates the depth buffer, the drawing runs
# without reference counting.
@njit(cache=True, nogil=True, no_cfunc_wrapper=True, error_model="numpy")
def draw_net_worlds(tables, texture, filters, F, I, crashed, colours, out, worlds, first,
                    stop):
    """Draw worlds ``first .. stop - 1`` selected by ``worlds`` into ``out[b]`` ``(H, W, C)``
    uint8 (C channels of ``colours``); :class:`CameraTables` and :class:`GroundTexture` as
    plain tuples. Releases the GIL."""
    depth = np.empty(CameraTables(*tables).rays.shape[:2], dtype=np.float32)
    acc = np.zeros(colours.shape[1])
    _draw_net_range(tables, texture, filters, F, I, crashed, colours, out, worlds, first, stop,
                    depth, acc)


@kernel
def _draw_net_range(tables, texture, filters, F, I, crashed, colours, out, worlds, first,
                    stop, depth, acc):
    """:func:`draw_net_worlds` with its scratch: ``depth`` ``(H, W)`` and ``acc`` ``(C,)``."""
    tables, texture = CameraTables(*tables), GroundTexture(*texture)
    filters = FootprintFilters(*filters)
    for b in range(first, stop):
        if not worlds[b]:
            continue
        img = out[b]
        _background(tables, img)
        _net_ground(tables, texture, filters, F, colours, img, b, acc)
        _boxes(tables, F, I, crashed, colours, depth, img, b)


@kernel_inline
def _net_ground(tables, texture, filters, F, colours, img, b, acc):
    """Paint every ground pixel from the texture, filtered over its footprint
    (:func:`footprint_filters`; ``acc``: a colour's scratch, ``(C,)``)."""
    ex, ey, eh = F[X, b, 0], F[Y, b, 0], F[HEADING, b, 0]
    ce, se = math.cos(eh), math.sin(eh)
    C = img.shape[2]
    top = texture.rows.shape[0] - 1
    for g in range(tables.ground_ij.shape[0]):
        hx, hy = tables.hit[g, 0], tables.hit[g, 1]
        px = ex + ce * hx - se * hy
        py = ey + se * hx + ce * hy
        lx, ly = filters.step[g, 0], filters.step[g, 1]
        wx, wy = ce * lx - se * ly, se * lx + ce * ly  # the samples' step, world frame
        n, l0, f1 = filters.samples[g], filters.level[g], filters.blend[g]
        l1 = min(l0 + 1, top)
        for c in range(C):
            acc[c] = 0.0
        t = -0.5 * (n - 1)
        for _ in range(n):
            sx, sy = px + t * wx, py + t * wy
            _sample(texture, l0, sx, sy, (1.0 - f1) / n, colours, acc, C)
            if f1 > 0.0:
                _sample(texture, l1, sx, sy, f1 / n, colours, acc, C)
            t += 1.0
        i, j = tables.ground_ij[g, 0], tables.ground_ij[g, 1]
        f, h = tables.fade[g], tables.ground_haze[g]
        for c in range(C):
            grass = colours[GROUND_ROW, c]
            v = grass + (acc[c] - grass) * f
            _put(img, i, j, c, v + (colours[SKY_HORIZON_ROW, c] - v) * h)


@kernel_inline
def _sample(texture, level, x, y, weight, colours, acc, C):
    """Add ``weight`` × the bilinear sample of pyramid ``level`` at world ``(x, y)`` (m) to
    ``acc``; texels off the texture are off-road ground."""
    t = texture.texel * (1 << level)
    fx = (x - texture.x0) / t - 0.5
    fy = (texture.y0 - y) / t - 0.5
    j0, i0 = int(math.floor(fx)), int(math.floor(fy))
    dx, dy = fx - j0, fy - i0
    rows, cols, base = texture.rows[level], texture.cols[level], texture.offset[level]
    data = texture.data
    for di in range(2):
        wi = dy if di else 1.0 - dy
        i = i0 + di
        for dj in range(2):
            w = weight * wi * (dx if dj else 1.0 - dx)
            j = j0 + dj
            if 0 <= i < rows and 0 <= j < cols:
                q = base + i * cols + j
                for c in range(C):
                    acc[c] += w * data[q, c]
            else:
                for c in range(C):
                    acc[c] += w * colours[GROUND_ROW, c]
