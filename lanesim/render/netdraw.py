"""Drawing road networks (:mod:`lanesim.sim.network`) and the vehicles on them.

Three products, all read-only on the simulator's arrays:

* :class:`NetworkPainter`: RGB frames ``(H, W, 3)`` uint8 of one world for the viewer and
  ``rgb_array``: the network's static layer (rasterized once, anti-aliased), the vehicles
  (entity 0 the ego in its own colour, crashed ones red as in the single-road viewer, inactive
  slots not drawn), optionally the ego's route, the lanes it may take and the lane centres;
  north up or rotated.
* :class:`NetworkFrames`: grey observation frames ``(B, H, W)`` uint8 around each world's ego,
  its heading pointing right and the grey levels of the single-road pixel observation
  (:data:`lanesim.envs.observations.ROAD` ...), batched in one compiled call.
* :func:`draw_network_scene`: a painter's frame onto a pygame surface (the viewer's hook).

The static layer: every road's surface (all its lanes, both directions), *junction* surfaces
(connected groups of two or more overlapping connector roads, filled as their convex hull so a
junction reads as one paved area), the lane markings :meth:`Network.markings` gives (solid,
dashed DASH_LENGTH of every DASH_PERIOD m along the road, or none; connectors inside a junction
unmarked) and yield lines across the end of the lanes named in ``yield_ends``. It is built as
a list of convex world polygons with a label each (:class:`~lanesim.render.netkernels.
Polygons`), rasterized by a compiled kernel, then coloured: RGB from :mod:`lanesim.render.style`
at the painter's scale (drawn :data:`SUPERSAMPLE` times finer and averaged), grey at a fine
scale for the observation frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lanesim.raster.kernels import (
    Layer,
    Polygons,
    crop_rgb,
    draw_bands,
    draw_vehicles_rgb,
    labels_to_rgb,
    rasterize,
    sample_rgb,
)
from lanesim.raster.network import (
    ARC_STEP,
    L_DASHED,
    L_OFFROAD,
    L_ROAD,
    L_SOLID,
    L_YIELD,
    STEP,
    _lane_ids,
    _layer_size,
    _number,
    static_polygons,
)
from lanesim.render import style
from lanesim.sim.network import Network

__all__ = ["MAX_FRAME_SIDE", "NetworkPainter", "draw_network_scene", "rgb_layer"]

SUPERSAMPLE = 2  # the RGB layer is rasterized this much finer per axis, then averaged
STRIP_ROWS = 256  # layer rows rasterized per pass: the fine label raster stays small
PPM_RANGE = (0.5, 40.0)  # pixels per metre of a painter
MAX_FRAME_SIDE = 4096  # px: each side of an RGB frame
ROUTE_COLOUR = style.BAR_CHOSEN  # the ego's route band: the chosen-action yellow
ROUTE_ALPHA, OPTIONS_ALPHA = 0.45, style.DRIVABLE_TINT[3] / 255.0


def rgb_layer(polys: Polygons, ppm: float) -> Layer:
    """The static layer in colour at ``ppm`` px/m, anti-aliased (SUPERSAMPLE)."""
    mpp = 1.0 / ppm
    x0, y0, w, h = _layer_size(polys, mpp, "NetworkPainter")
    lut = np.zeros((5, 3), dtype=np.uint8)
    lut[L_OFFROAD], lut[L_ROAD] = style.GRASS, style.ASPHALT
    lut[L_DASHED] = lut[L_SOLID] = lut[L_YIELD] = style.MARKING
    img = np.empty((h, w, 3), dtype=np.uint8)
    k = SUPERSAMPLE
    fine = np.empty((k * STRIP_ROWS, k * w), dtype=np.uint8)
    for r0 in range(0, h, STRIP_ROWS):
        fine[:] = L_OFFROAD
        rasterize(polys, x0, y0, mpp / k, k * r0, fine)
        labels_to_rgb(fine, k, lut, img, r0)
    return Layer(img, x0, y0, mpp)



def _lane_centres(net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Every lane's centre line as points ``(n, 2)`` (m) and where each lane's run starts
    ``(lanes + 1,)``."""
    pts, start = [], [0]
    for lane in range(len(net.lanes)):
        length = net.lane_length(lane)
        road = net.roads[net.lane_road(lane)]
        turn = float(np.abs(road.seg_curv).max()) * length
        n = max(1, math.ceil(length / STEP), math.ceil(turn / ARC_STEP))
        x, y, _ = net.lane_to_world(np.full(n + 1, lane), np.linspace(0.0, length, n + 1))
        pts.append(np.stack([x, y], -1))
        start.append(start[-1] + n + 1)
    return np.ascontiguousarray(np.concatenate(pts)), np.array(start, dtype=np.int64)



# ---------------------------------------------------------------------- RGB frames
def _vehicle_colours() -> np.ndarray:
    """``(5, 3, 3)``: body, outline and windscreen colours of kinds 0..3 and crashed."""
    out = np.zeros((5, 3, 3), dtype=np.uint8)
    for i, c in enumerate((*style.VEHICLE_COLOURS, style.CRASHED)):
        out[i] = (c, style.darker(c, 0.35), style.darker(c))
    return out


class NetworkPainter:
    """RGB frames of one network's worlds.

    Args:
        network: the network.
        pixels_per_metre: the frames' scale, 0.5 to 40 (the single-road viewer uses 6 at
            600 px and 12 in its 1200 px window).
        yield_ends: lanes (ids or ``"road:lane"`` names) with a yield line across their end.

    The static layer is rasterized once here (memory: 3 bytes per pixel of the network's
    extent plus MARGIN m around it, at most MAX_LAYER_PIXELS pixels: a larger network at this
    scale is refused with the largest scale that fits).
    """

    def __init__(self, network: Network, pixels_per_metre: float = 6.0,
                 yield_ends: Sequence[int | str] = ()) -> None:
        self.network = network
        self.ppm = _number(pixels_per_metre, "pixels_per_metre", *PPM_RANGE)
        self.yield_ends = tuple(int(v) for v in _lane_ids(network, yield_ends, "yield_ends"))
        line = style.line_px(self.ppm) / self.ppm
        self.layer = rgb_layer(static_polygons(network, self.yield_ends, line), self.ppm)
        self.centres, self.centre_start = _lane_centres(network)
        self._colours = _vehicle_colours()
        self._fill = np.array(style.GRASS, dtype=np.uint8)
        self._mask = np.zeros((0, 0), dtype=np.uint8)
        self._lane_w = min(network.lane_width(i) for i in range(len(network.lanes)))

    def frame(self, x, y, heading, length, width, kind, crashed, centre: tuple[float, float],
              size: tuple[int, int] = (600, 400), theta: float | None = None,
              route: Sequence[int | str] = (), options: Sequence[int | str] = (),
              lane_centres: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """One world's frame ``(H, W, 3)`` uint8.

        Args:
            x, y, heading, length, width, kind, crashed: the world's ``(N,)`` entity rows (m,
                rad, kind -1 = an inactive slot, not drawn); entity 0 is the ego.
            centre: the world point ``(x, y)`` (m) at the frame's middle.
            size: ``(W, H)`` px, each 1 to MAX_FRAME_SIDE (4096).
            theta: the world direction (rad) pointing right; None: north up, unrotated (the
                static layer copied pixel for pixel).
            route: lanes (ids or names) drawn as a highlighted band (the ego's route).
            options: lanes tinted as ones the ego may take.
            lane_centres: draw every lane's centre line (the road overlay).
            out: an ``(H, W, 3)`` uint8 array to draw into (C-contiguous), else a new one.
        """
        w, h = (int(v) for v in size)
        if not (1 <= w <= MAX_FRAME_SIDE and 1 <= h <= MAX_FRAME_SIDE):
            raise ValueError(f"size must be (W, H) with each 1 to {MAX_FRAME_SIDE} px, got "
                             f"{size!r}")
        if out is None:
            out = np.empty((h, w, 3), dtype=np.uint8)
        elif out.shape != (h, w, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous ({h}, {w}, 3) uint8 array, got "
                             f"{out.shape} {out.dtype}")
        cx, cy = (_number(v, "centre", -1e7, 1e7) for v in centre)
        ax, ay = 0.5 * w, 0.5 * h
        layer = self.layer
        if theta is None:
            col0 = int(math.floor((cx - layer.x0) * self.ppm - ax + 0.5))
            row0 = int(math.floor((layer.y0 - cy) * self.ppm - ay + 0.5))
            crop_rgb(layer, col0, row0, self._fill, out)
            # Snap the frame to the layer's pixels so vehicles line up with the road exactly.
            ax = (cx - layer.x0) * self.ppm - col0
            ay = (layer.y0 - cy) * self.ppm - row0
            rot = 0.0
        else:
            rot = _number(theta, "theta", -1e3, 1e3)
            sample_rgb(layer, cx, cy, rot, self.ppm, ax, ay, self._fill, out)
        if len(options) or len(route) or lane_centres:
            if self._mask.shape != (h, w):
                self._mask = np.zeros((h, w), dtype=np.uint8)
            lw = self._lane_w
            bands = []
            if len(options):
                bands.append((options, "options", 0.45 * lw, style.DRIVABLE_TINT[:3],
                              OPTIONS_ALPHA))
            if len(route):
                bands.append((route, "route", 0.25 * lw, ROUTE_COLOUR, ROUTE_ALPHA))
            if lane_centres:
                bands.append((range(len(self.network.lanes)), "lane_centres",
                              0.5 * style.centre_px(self.ppm) / self.ppm, style.LANE_CENTRE, 1.0))
            for lanes, name, half, colour, alpha in bands:
                ids = _lane_ids(self.network, lanes, name)
                draw_bands(self.centres, self.centre_start, ids, cx, cy, rot, self.ppm, ax, ay,
                           half * self.ppm, np.array(colour, dtype=np.int64), alpha,
                           self._mask, out)
        rows = [np.ascontiguousarray(a) for a in (x, y, heading, length, width)]
        rows = [a.astype(np.float64, copy=False) for a in rows]
        n = rows[0].shape[0]
        kind = np.ascontiguousarray(kind, dtype=np.int64)
        crashed = np.ascontiguousarray(crashed, dtype=np.bool_)
        if any(a.shape != (n,) for a in (*rows, kind, crashed)):
            raise ValueError("x, y, heading, length, width, kind, crashed must be (N,) rows "
                             "of one world, all of one length")
        outline = max(0.1, 1.0 / self.ppm)
        draw_vehicles_rgb(*rows, kind, crashed, cx, cy, rot, self.ppm, ax, ay, self._colours,
                          outline, out)
        return out

    def world_frame(self, world, b: int = 0, size: tuple[int, int] = (600, 400),
                    rotate: bool = False, **kwargs) -> np.ndarray:
        """World ``b``'s frame centred on its ego: :meth:`frame` of the ``(B, N)`` views
        ``x, y, heading, length, width, kind, crashed`` of ``world`` (a network world,
        :mod:`lanesim.sim.networld`), north up, or with the ego's heading pointing right if
        ``rotate``; ``kwargs`` as :meth:`frame` (route, options, lane_centres, out)."""
        rows = [getattr(world, k)[b] for k in ("x", "y", "heading", "length", "width", "kind",
                                               "crashed")]
        theta = float(rows[2][0]) if rotate else None
        return self.frame(*rows, centre=(float(rows[0][0]), float(rows[1][0])), size=size,
                          theta=theta, **kwargs)


def draw_network_scene(surface, painter: NetworkPainter, x, y, heading, length, width, kind,
                       crashed, centre: tuple[float, float], theta: float | None = None,
                       route: Sequence[int | str] = (), options: Sequence[int | str] = (),
                       overlay: bool = False) -> np.ndarray:
    """Draw one network world onto a pygame ``surface`` (its whole area): the painter's frame
    (:meth:`NetworkPainter.frame`), with the road overlay (the route band, the lanes the ego
    may take and every lane's centre line) when ``overlay``. Returns the frame drawn."""
    import pygame

    w, h = surface.get_size()
    frame = painter.frame(x, y, heading, length, width, kind, crashed, centre, (w, h), theta,
                          route if overlay else (), options if overlay else (), overlay)
    pygame.surfarray.blit_array(surface, frame.swapaxes(0, 1))
    return frame


