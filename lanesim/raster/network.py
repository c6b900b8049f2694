"""Road networks (:mod:`lanesim.sim.network`) as rasters, beside the simulator: for the
observations (:mod:`lanesim.envs`) and the viewer (:mod:`lanesim.render`) alike, so neither
imports the other; like :mod:`lanesim.camera`, it imports neither of them, nor Gymnasium or
pygame.

The static layer: every road's surface (all its lanes, both directions; a junction's surface is
its connectors' strips together, exactly where the simulator finds a lane), the lane markings
:meth:`Network.markings` gives (solid, dashed DASH_LENGTH of every DASH_PERIOD m along the
road, or none; connectors inside a junction unmarked) and yield lines across the end of the
lanes named in ``yield_ends``. It is built as a list of convex world polygons with a label each
(:class:`~lanesim.raster.kernels.Polygons`), rasterized by a compiled kernel
(:mod:`lanesim.raster.kernels`), then coloured by its user: RGB by
:mod:`lanesim.render.netdraw`, grey levels by :class:`NetworkFrames` here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lanesim.raster.kernels import Layer, Polygons, grey_frames, rasterize
from lanesim.sim.network import Network
from lanesim.sim.road import DASH_LENGTH, DASH_PERIOD
from lanesim.sim.state import STALLED

__all__ = [
    "MAX_LAYER_PIXELS",
    "NetworkFrames",
    "grey_layer",
    "junctions",
    "static_polygons",
]

# Labels of the static layer's raster.
L_OFFROAD, L_ROAD, L_DASHED, L_SOLID, L_YIELD = 0, 1, 2, 3, 4
MAX_LAYER_PIXELS = 1 << 26  # a layer (RGB or grey) holds at most this many pixels (64 Mi)
MARGIN = 20.0  # m of grass around the network's extent in a layer
STEP = 1.0  # m between samples along a road; arcs also every ARC_STEP rad
ARC_STEP = math.radians(2.0)
YIELD_DEPTH, YIELD_DASH, YIELD_PERIOD = 0.3, 0.5, 0.8  # m: a yield line's blocks across a lane
LINE_WIDTH = 0.15  # m: painted lines on the road
JOIN = 0.01  # m: a point this close to a road's end is at a join, not on the road
MPP_RANGE = (0.05, 5.0)  # metres per pixel of an observation frame
FRAME_SIDE = (8, 1024)  # px: each side of an observation frame


# ---------------------------------------------------------------------- static geometry
def _stations(net: Network, road: str) -> np.ndarray:
    """Reference-line stations ``s`` (m) of ``road``: every segment's ends, at most STEP m
    apart and ARC_STEP rad of turn."""
    r = net.roads[road]
    parts = []
    for length, k, s0 in zip(r.seg_length, r.seg_curv, r.seg_s0, strict=True):
        n = max(1, math.ceil(length / STEP), math.ceil(abs(k) * length / ARC_STEP))
        parts.append(s0 + np.linspace(0.0, length, n + 1))
    return np.unique(np.concatenate(parts))


def _band(net: Network, road: str, s: np.ndarray, d0: float, d1: float) -> list[np.ndarray]:
    """Quads ``(4, 2)`` (m) covering ``[s[k], s[k+1]] × [d0, d1]`` of ``road``'s frame."""
    r = net.roads[road]
    xa, ya, _ = r.to_world(s, np.full_like(s, d0))
    xb, yb, _ = r.to_world(s, np.full_like(s, d1))
    quads = np.stack([np.stack([xa[:-1], ya[:-1]], -1), np.stack([xa[1:], ya[1:]], -1),
                      np.stack([xb[1:], yb[1:]], -1), np.stack([xb[:-1], yb[:-1]], -1)], 1)
    return list(quads)


def _boundary_marking(net: Network, road: str, k: int) -> str:
    """The marking (Network.markings) on boundary ``k`` of ``road``, at ``d = k · width``:
    between lane ``k - 1`` and lane ``k`` (negative indices: lanes against the reference)."""
    spec = net.specs[road]
    for idx, side in ((k, "left"), (k - 1, "right")):
        if -spec.lanes_back <= idx < spec.lanes:
            left, right = net.markings(net.lane((road, idx)))
            if idx < 0:  # against the reference: its left lies toward +d
                left, right = right, left
            return left if side == "left" else right
    raise AssertionError("a boundary always has a lane on one side")


def _connectors(net: Network) -> list[str]:
    """Roads that join lane to lane: one lane, not a loop, with a predecessor and a successor
    on other roads (what ``NetworkBuilder.connect`` makes)."""
    out = []
    for name, spec in net.specs.items():
        if spec.lanes + spec.lanes_back != 1 or spec.loop:
            continue
        lane = net.lane((name, 0 if spec.lanes else -1))
        others = [net.lane_road(j) != name for j in net.predecessors(lane) + net.successors(lane)]
        if net.predecessors(lane) and net.successors(lane) and all(others):
            out.append(name)
    return out


def junctions(net: Network) -> list[list[str]]:
    """Groups of connector roads whose lane strips overlap (away from their ends), two or
    more per group: each is a junction, paved as one surface and left unmarked."""
    names = _connectors(net)
    centre = {}
    for name in names:
        spec = net.specs[name]
        s = _stations(net, name)
        s = s[(s > 1.0) & (s < net.roads[name].length - 1.0)]
        d = (0.5 if spec.lanes else -0.5) * spec.lane_width
        x, y, _ = net.roads[name].to_world(s, np.full_like(s, d))
        centre[name] = np.stack([x, y], -1)
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = centre[a], centre[b]
            if not len(pa) or not len(pb):
                continue
            reach = 0.9 * min(net.specs[a].lane_width, net.specs[b].lane_width)
            if (pa.min(0) - reach > pb.max(0)).any() or (pb.min(0) - reach > pa.max(0)).any():
                continue
            gap = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1)).min()
            if gap < reach:
                parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return [g for g in groups.values() if len(g) >= 2]


def _dash_phase(net: Network) -> dict[str, float]:
    """Per road, the distance (m) into the dash period at its start: a road that continues
    another (a forward lane linked from a forward lane of another road) carries on its
    predecessor's pattern, so dashes run on across the join instead of restarting."""
    phase = dict.fromkeys(net.roads, 0.0)
    before: dict[str, str] = {}
    for name, spec in net.specs.items():
        for i in range(spec.lanes):
            preds = [p for p in net.predecessors(net.lane((name, i)))
                     if net.lane_road(p) != name and net.lane_direction(p) > 0]
            if preds:
                before[name] = net.lane_road(preds[0])
                break
    for name in net.roads:  # follow each chain back to its start (or round a loop once)
        chain, r = [], name
        while r in before and r not in chain:
            chain.append(r)
            r = before[r]
        if r in chain:  # a loop: measure from the ring's road of the first name
            chain = chain[: chain.index(min(chain)) + 1]
        else:
            chain.append(r)
        total = sum(net.roads[p].length for p in chain[1:])
        phase[name] = total % DASH_PERIOD
    return phase


def _on_other_roads(net: Network, name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each world point ``(x, y)`` (m) lies on the surface of a road other than
    ``name`` (within its lanes, more than JOIN m inside its ends)."""
    on = np.zeros(x.shape, dtype=bool)
    for other, spec in net.specs.items():
        if other == name:
            continue
        road = net.roads[other]
        s, d = road.to_road(x, y)
        w = spec.lane_width
        # Strictly between its ends: where a connector meets the lane it links to end to
        # start, it is not on that road.
        on |= ((s > JOIN) & (s < road.length - JOIN) & (d >= -spec.lanes_back * w - 1e-6)
               & (d <= spec.lanes * w + 1e-6))
    return on


def static_polygons(net: Network, yield_ends: Sequence[int] = (),
                    line_width: float = LINE_WIDTH, markings: bool = True) -> Polygons:
    """The static layer as labelled convex polygons (m), in painting order: road surfaces
    (every lane's strip: the paved area is exactly where the simulator finds a lane, so what
    is drawn as road is never off-road), markings ``line_width`` m wide and yield lines
    (``yield_ends``: lane ids whose end gets one); ``markings=False``: the surfaces alone."""
    polys: list[np.ndarray] = []
    labels: list[int] = []

    def add(quads, label):
        polys.extend(quads)
        labels.extend([label] * len(quads))

    stations = {name: _stations(net, name) for name in net.roads}
    for name, spec in net.specs.items():
        w = spec.lane_width
        add(_band(net, name, stations[name], -spec.lanes_back * w, spec.lanes * w), L_ROAD)
    if not markings:
        start = np.concatenate([[0], np.cumsum([len(p) for p in polys])]).astype(np.int64)
        return Polygons(np.ascontiguousarray(np.concatenate(polys), dtype=np.float64), start,
                        np.array(labels, dtype=np.uint8))
    groups = junctions(net)
    in_junction = {n for g in groups for n in g}
    hw = 0.5 * line_width
    # Connectors outside junctions (a roundabout's entries and exits, a ramp's) merge into or
    # leave other roads: their own lines are painted only off those roads, and their mouths
    # are repainted paved so the other road's edge line does not run across them.
    free = [n for n in _connectors(net) if n not in in_junction]
    phase = _dash_phase(net)
    for name, spec in net.specs.items():
        if name in in_junction or name in free:
            continue
        w, s, length = spec.lane_width, stations[name], net.roads[name].length
        for k in range(-spec.lanes_back, spec.lanes + 1):
            kind = _boundary_marking(net, name, k)
            if kind == "solid":
                add(_band(net, name, s, k * w - hw, k * w + hw), L_SOLID)
            elif kind == "dashed":
                period, dash = DASH_PERIOD, DASH_LENGTH
                for a in np.arange(-phase[name], length, period):
                    a, b = max(a, 0.0), min(a + dash, length)
                    if b - a < 1e-6:
                        continue
                    n = max(1, math.ceil((b - a) / STEP))
                    add(_band(net, name, np.linspace(a, b, n + 1), k * w - hw, k * w + hw),
                        L_DASHED)
    for name in free:
        spec, s = net.specs[name], stations[name]
        d0, d1 = -spec.lanes_back * spec.lane_width, spec.lanes * spec.lane_width
        add(_band(net, name, s, d0 + 2 * hw, d1 - 2 * hw), L_ROAD)
        for d in (d0, d1):
            kind = _boundary_marking(net, name, round(d / spec.lane_width))
            if kind == "none":
                continue
            x, y, _ = net.roads[name].to_world(s, np.full_like(s, d))
            off = ~_on_other_roads(net, name, x, y)
            quads = _band(net, name, s, d - hw, d + hw)
            add([q for q, a, b in zip(quads, off[:-1], off[1:], strict=True) if a and b],
                L_SOLID)
    for lane in yield_ends:
        lane = int(lane)
        if not 0 <= lane < len(net.lanes):
            raise ValueError(f"yield_ends: no lane {lane}; lane ids run 0 to "
                             f"{len(net.lanes) - 1} (Network.lane('road:lane') gives one)")
        length, half = net.lane_length(lane), 0.5 * net.lane_width(lane)
        depth = min(max(YIELD_DEPTH, line_width), length)
        reach = half - hw  # blocks stay inside the lane's edges
        centres = np.arange(-math.floor(reach / YIELD_PERIOD), math.floor(reach / YIELD_PERIOD)
                            + 1) * YIELD_PERIOD
        for c in centres:
            o0, o1 = max(c - 0.5 * YIELD_DASH, -reach), min(c + 0.5 * YIELD_DASH, reach)
            u = np.array([length - depth, length, length, length - depth])
            x, y, _ = net.lane_to_world(np.full(4, lane), u, np.array([o0, o0, o1, o1]))
            add([np.stack([x, y], -1)], L_YIELD)
    start = np.concatenate([[0], np.cumsum([len(p) for p in polys])]).astype(np.int64)
    return Polygons(np.ascontiguousarray(np.concatenate(polys), dtype=np.float64), start,
                    np.array(labels, dtype=np.uint8))


def _extent(polys: Polygons) -> tuple[float, float, float, float]:
    lo, hi = polys.xy.min(0), polys.xy.max(0)
    return lo[0] - MARGIN, hi[1] + MARGIN, hi[0] + MARGIN, lo[1] - MARGIN  # x0, y0, x1, y1


def _layer_size(polys: Polygons, mpp: float, what: str) -> tuple[float, float, int, int]:
    x0, y0, x1, y1 = _extent(polys)
    w, h = math.ceil((x1 - x0) / mpp), math.ceil((y0 - y1) / mpp)
    if w * h > MAX_LAYER_PIXELS:
        most = math.sqrt(MAX_LAYER_PIXELS / ((x1 - x0) * (y0 - y1)))
        raise ValueError(
            f"{what}: the network spans {x1 - x0:.0f} × {y0 - y1:.0f} m, a {w:,} × {h:,} px "
            f"layer at {1 / mpp:g} px/m; at most {MAX_LAYER_PIXELS:,} px are accepted: use "
            f"{most:.3g} px/m or fewer"
        )
    return x0, y0, w, h


def grey_layer(polys: Polygons, mpp: float, greys: Sequence[int]) -> Layer:
    """The static layer in grey levels at ``mpp`` m per pixel: ``greys`` gives off-road, road,
    dashed and solid markings (yield lines are solid)."""
    x0, y0, w, h = _layer_size(polys, mpp, "NetworkFrames")
    labels = np.full((h, w), L_OFFROAD, dtype=np.uint8)
    rasterize(polys, x0, y0, mpp, 0, labels)
    off, road, dashed, solid = (int(g) for g in greys[:4])
    lut = np.array([off, road, dashed, solid, solid], dtype=np.uint8)
    return Layer(lut[labels], x0, y0, mpp)


def _number(value, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer) \
            or not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def _lane_ids(net: Network, lanes, name: str) -> np.ndarray:
    ids = np.asarray([net.lane(v) if isinstance(v, str | tuple) else v for v in lanes],
                     dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= len(net.lanes)):
        raise ValueError(f"{name}: lane ids run 0 to {len(net.lanes) - 1}, got "
                         f"{int(ids.min() if ids.min() < 0 else ids.max())}")
    return ids


# ---------------------------------------------------------------------- grey frames
class NetworkFrames:
    """Grey top-down observation frames around each world's ego, batched and compiled.

    Args:
        network: the network.
        shape: ``(H, W)`` px of a frame, each 8 to 1024.
        metres_per_pixel: 0.05 to 5 (square pixels).
        behind: the fraction of the frame's width behind the ego, 0 to 1 (the ego's column;
            the single-road pixel frames use 0.25).
        yield_ends: lanes with a yield line across their end (ids or names).
        markings: False draws the paved surface alone (no lines): where the road is.
        greys: the grey levels, in order: off-road, road, dashed marking, solid marking (and
            yield lines), traffic, obstacles (kinds STALLED and above), the ego; the pixel
            observation passes its own (:data:`lanesim.envs.netpixels.GREYS`).
        route_grey: the grey of a route band (0 to 255), drawn where :meth:`__call__` is given
            a route; None: no route may be given.
        route_width: the band's width (m), 0.1 to 20.

    A frame's pixel ``(i, j)`` shows the point ``(j + 0.5 - behind · W) · mpp`` m ahead of the
    ego along its heading and ``(i + 0.5 - H / 2) · mpp`` m to its right: the ego's heading
    points right, its right side down, as the single-road frames point the road's direction.
    The network is sampled from a grey layer at ``metres_per_pixel / 2`` (nearest pixel),
    whose markings are painted at least one frame pixel wide so that none vanishes between
    samples. A route is a band over the road's grey (never over a marking or the grass), under
    the vehicles.
    """

    def __init__(self, network: Network, shape: tuple[int, int] = (84, 84),
                 metres_per_pixel: float = 0.5, behind: float = 0.25,
                 yield_ends: Sequence[int | str] = (), *,
                 greys: Sequence[int], markings: bool = True, route_grey: int | None = None,
                 route_width: float = 2.0) -> None:
        if (not isinstance(greys, tuple | list) or len(greys) != 7 or not all(
                isinstance(g, int | np.integer) and not isinstance(g, bool) and 0 <= g <= 255
                for g in greys)):
            raise ValueError(f"greys must be 7 grey levels 0 to 255 (off-road, road, dashed, "
                             f"solid, traffic, obstacle, ego), got {greys!r}")
        if (not isinstance(shape, tuple | list) or len(shape) != 2 or not all(
                isinstance(v, int | np.integer) and not isinstance(v, bool)
                and FRAME_SIDE[0] <= v <= FRAME_SIDE[1] for v in shape)):
            raise ValueError(f"shape must be (H, W), integers {FRAME_SIDE[0]} to "
                             f"{FRAME_SIDE[1]}, got {shape!r}")
        self.network = network
        self.shape = (int(shape[0]), int(shape[1]))
        self.mpp = _number(metres_per_pixel, "metres_per_pixel", *MPP_RANGE)
        self.behind = _number(behind, "behind", 0.0, 1.0)
        ends = tuple(int(v) for v in _lane_ids(network, yield_ends, "yield_ends"))
        self.layer = grey_layer(static_polygons(network, ends, max(LINE_WIDTH, self.mpp),
                                                markings), 0.5 * self.mpp, greys)
        if route_grey is not None and (not isinstance(route_grey, int | np.integer)
                                       or isinstance(route_grey, bool)
                                       or not 0 <= route_grey <= 255):
            raise ValueError(f"route_grey must be a grey level 0 to 255 or None, got "
                             f"{route_grey!r}")
        self.route_grey = route_grey
        self.route_half = 0.5 * _number(route_width, "route_width", 0.1, 20.0)
        off, road, _, _, traffic, obstacle, ego = (int(g) for g in greys)
        band = road if route_grey is None else int(route_grey)
        self._greys = np.array([off, traffic, obstacle, ego, STALLED, road, band],
                               dtype=np.int64)
        self._no_route = np.zeros((0, 0, 2)), np.zeros(0, dtype=np.int64)

    def __call__(self, x, y, heading, length, width, kind,
                 out: np.ndarray | None = None, route=None) -> np.ndarray:
        """Frames ``(B, H, W)`` uint8 of B worlds from their ``(B, N)`` entity rows (m, rad;
        kind -1 = inactive, not drawn), into ``out`` if given. ``route``: ``(points, count)``,
        world ``b``'s route as the polyline ``points[b, :count[b]]`` (``(B, P, 2)`` world m,
        ``(B,)`` int), drawn as a ``route_width`` band in ``route_grey``."""
        rows = [np.ascontiguousarray(a, dtype=np.float64) for a in (x, y, heading, length, width)]
        kind = np.ascontiguousarray(kind, dtype=np.int64)
        if rows[0].ndim != 2 or any(a.shape != rows[0].shape for a in (*rows, kind)):
            raise ValueError("x, y, heading, length, width, kind must be (B, N) arrays of one "
                             "shape")
        b = rows[0].shape[0]
        h, w = self.shape
        if out is None:
            out = np.empty((b, h, w), dtype=np.uint8)
        elif out.shape != (b, h, w) or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous ({b}, {h}, {w}) uint8 array")
        if route is None:
            pts, count = self._no_route
            if pts.shape[0] != b:
                pts, count = np.zeros((b, 0, 2)), np.zeros(b, dtype=np.int64)
                self._no_route = pts, count
        else:
            if self.route_grey is None:
                raise ValueError("route: these frames have no route_grey; pass route_grey to "
                                 "NetworkFrames to draw routes")
            pts = np.ascontiguousarray(route[0], dtype=np.float64)
            count = np.ascontiguousarray(route[1], dtype=np.int64)
            if (pts.ndim != 3 or pts.shape[0] != b or pts.shape[2] != 2 or count.shape != (b,)
                    or (count.size and (count.min() < 0 or count.max() > pts.shape[1]))):
                raise ValueError(f"route must be (points ({b}, P, 2), count ({b},)) with counts "
                                 f"0 to P, got shapes {pts.shape} and {count.shape}")
        grey_frames(self.layer, *rows, kind, self.mpp, self.behind * w, self._greys, pts, count,
                    self.route_half, out)
        return out

    def of_world(self, world, out: np.ndarray | None = None) -> np.ndarray:
        """Frames ``(B, H, W)`` of every world of a network world (its ``(B, N)`` views
        ``x, y, heading, length, width, kind``)."""
        return self(world.x, world.y, world.heading, world.length, world.width, world.kind,
                    out)

