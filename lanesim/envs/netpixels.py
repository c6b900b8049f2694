"""Image and grid observations on a road network, around the ego and turned with it.

``pixels``: the single-road pixel observation's frames and grey levels, drawn from the network's
geometry by :class:`lanesim.raster.network.NetworkFrames`: the ego's heading points right, its
right side down, square pixels of ``0.5 × 84 / W`` m (42 m across an 84-pixel frame), a quarter
of the frame behind the ego; and the ego's route ahead as a band of grey :data:`ROUTE`.
``occupancy``: a grid in the same frame, the route in a channel of its own.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from numba import njit

from lanesim.envs.observations import (
    DASHED,
    EGO,
    OBSTACLE,
    OFFROAD,
    ROAD,
    SOLID,
    TRAFFIC,
    FrameStack,
)
from lanesim.raster.network import NetworkFrames
from lanesim.sim.netego import RouteArrays
from lanesim.sim.network import NetworkArrays, lane_point, lane_reference_s, lane_u_at

PIXEL_METRES = 0.5  # m per pixel of an 84-pixel-wide frame
# The one-road pixel observation's grey levels, in NetworkFrames' order.
GREYS = (OFFROAD, ROAD, DASHED, SOLID, TRAFFIC, OBSTACLE, EGO)
# The route band's grey: between the road (60) and a dashed line (130), 30 or more from every
# other grey, so a network frame has eight levels that no resampling confuses.
ROUTE = 100
ROUTE_WIDTH = 2.0  # m: the band's width, about half a lane (the viewer's route band's)
ROUTE_STEP = 2.0  # m between the band's points (a chord sags 4 cm on a 12 m radius: 0.1 px)
# A lane change the route asks for is drawn as a diagonal at this angle to the lanes, about a
# lane change's (15 m along for a 4 m lane, 30 m for two).
ROUTE_CHANGE_ANGLE = math.radians(15.0)


def network_frames(network, shape=(84, 84), metres_per_pixel=0.5, behind=0.25,
                   yield_ends=()) -> NetworkFrames:
    """:class:`~lanesim.raster.network.NetworkFrames` in the pixel observation's grey levels,
    routes a :data:`ROUTE_WIDTH` band of grey :data:`ROUTE`."""
    return NetworkFrames(network, shape, metres_per_pixel, behind, yield_ends, greys=GREYS,
                         route_grey=ROUTE, route_width=ROUTE_WIDTH)


class NetworkPixels(FrameStack):
    """``(frame_stack, H, W)`` uint8 frames, newest last (the ``pixels`` observation): the
    network, the ego's route ahead as a band (:func:`route_points`), the vehicles."""

    def __init__(self, options, world) -> None:
        h, w = options.image_shape
        super().__init__(world, options.frame_stack, (h, w))
        mpp = PIXEL_METRES * 84 / w
        self.painter = network_frames(world.network, (h, w), mpp, 0.25, world.yield_ends)
        self.gauge = w / world.spec.ego.max_speed if options.speed_bar else 0.0
        self._frame = np.empty((world.B, h, w), dtype=np.uint8)
        # Route walked: half again the distance to the frame's far corners, for bends that
        # leave the frame and come back into it.
        self.reach = 1.5 * math.hypot(0.75 * w * mpp, 0.5 * h * mpp)
        self._points = np.zeros((world.B, int(self.reach / ROUTE_STEP) + 2, 2))
        self._count = np.zeros(world.B, dtype=np.int64)

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        w = self.world
        idx = np.flatnonzero(worlds)
        if idx.size == 0:
            return
        st = w.state
        pts, count = self._points[: idx.size], self._count[: idx.size]
        route_points(w.plain_network, w.plain_routes, st.lane, st.u, st.ego_route, idx,
                     ROUTE_STEP, self.reach, 1.0 / math.tan(ROUTE_CHANGE_ANGLE), pts, count)
        frames = self.painter(w.x[idx], w.y[idx], w.heading[idx], w.length[idx], w.width[idx],
                              w.kind[idx], self._frame[: idx.size], (pts, count))
        if self.gauge:
            cells = np.rint(self.gauge * w.speed[idx, 0]).astype(np.int64)
            cols = np.arange(frames.shape[2])[None, :]
            frames[:, 0, :] = np.where(cols < cells[:, None], EGO, OFFROAD)
        if shift:
            self.frames[idx, :-1] = self.frames[idx, 1:]
        self.frames[idx, -1] = frames


class NetworkOccupancy:
    """``(5, 16, 32)`` float32 grid in the ego's frame (the ``occupancy`` observation):
    occupancy, relative speed (velocity along the ego's heading minus its speed, over its top
    speed), drivable area, ego footprint, and the ego's route (the cells its route's centre
    line crosses, from the ego on). Cells are 2 m square; columns run along the ego's heading
    from 16 m behind to 48 m ahead, rows across it from 16 m left (row 0) to 16 m right.
    """

    CHANNELS = ("occupancy", "relative_speed", "drivable", "ego", "route")
    CELL, ROWS, COLS, BEHIND_COLS = 2.0, 16, 32, 8

    def __init__(self, options, world) -> None:
        self.world = world
        self.space = spaces.Box(-1.0, 1.0, (len(self.CHANNELS), self.ROWS, self.COLS),
                                np.float32)
        # The drivable area is the network's paved surface (no markings: a line on the grass
        # side of an edge is not road) seen at the grid's cells, with no vehicle drawn.
        self.frames = NetworkFrames(world.network, (self.ROWS, self.COLS), self.CELL,
                                    self.BEHIND_COLS / self.COLS, greys=GREYS, markings=False)
        self._none = np.full((world.B, 1), -1, dtype=np.int64)
        reach = (self.COLS - self.BEHIND_COLS) * self.CELL * 1.5  # the far edge round bends
        self._points = np.zeros((int(reach / (0.5 * self.CELL)) + 2, 2))

    def reset(self, worlds: np.ndarray) -> np.ndarray:
        return self()

    def __call__(self) -> np.ndarray:
        w = self.world
        out = np.zeros((w.B, len(self.CHANNELS), self.ROWS, self.COLS), dtype=np.float32)
        ego = (slice(None), slice(0, 1))
        ground = self.frames(w.x[ego], w.y[ego], w.heading[ego], w.length[ego], w.width[ego],
                             self._none)
        out[:, 2] = ground != OFFROAD
        _occupancy(w.x, w.y, w.heading, w.speed, w.length, w.width, w.kind,
                   self.CELL, self.BEHIND_COLS, w.spec.ego.max_speed, out)
        st = w.state
        _route_cells(w.plain_network, w.plain_routes, st.lane, st.u, st.x, st.y, st.heading,
                     st.ego_route, self.CELL, self.BEHIND_COLS, self._points, out)
        return out


@njit(cache=True)
def _lane_change(net, lane, via, u, slope, walked, pts, n):
    """The route's change from ``lane`` (at ``u`` m) into ``via``: ``(lane, u, walked, n)``
    after it, on ``via`` at the same station (``slope`` 0) or ``slope`` m further on per m
    across, with a point at the change's start added to ``pts`` (``n`` so far)."""
    _, s = lane_reference_s(net, lane, u)
    u_via = lane_u_at(net, via, s)
    if slope == 0.0:
        return via, u_via, walked, n
    px, py, _ = lane_point(net, lane, u, 0.0)
    qx, qy, _ = lane_point(net, via, u_via, 0.0)
    if n < pts.shape[0] and u <= net.lane_length[lane]:
        pts[n, 0], pts[n, 1] = px, py
        n += 1
    ramp = slope * math.hypot(qx - px, qy - py)
    return via, u_via + ramp, walked + ramp, n


@njit(cache=True)
def _walk_route(net, routes, g, lane, u, step, reach, slope, pts):
    """Points (world m) of route ``g``'s centre line into ``pts`` ``(P, 2)``, from ``u`` m
    along ``lane`` on, every ``step`` m for ``reach`` m of route (at most P); returns how many.
    Where the route asks for a lane change (``RouteArrays.via``: at the start, or at the start
    of a lane it goes on into) the line moves into the lane the change leads to as a diagonal,
    ``slope`` m along per m across (0: at once)."""
    n, walked = 0, 0.0
    via = routes.via[g, lane]
    if via != lane:
        lane, u, walked, n = _lane_change(net, lane, via, u, slope, walked, pts, n)
    while walked <= reach and n < pts.shape[0]:
        if u > net.lane_length[lane]:
            nxt = routes.next[g, lane]
            if nxt < 0:
                break
            u -= net.lane_length[lane]
            lane = nxt
            via = routes.via[g, nxt]
            if via != nxt:
                lane, u, walked, n = _lane_change(net, nxt, via, u, slope, walked, pts, n)
            continue
        px, py, _ = lane_point(net, lane, u, 0.0)
        pts[n, 0], pts[n, 1] = px, py
        n += 1
        u += step
        walked += step
    return n


@njit(cache=True)
def route_points(net, routes, lanes, us, ego_route, idx, step, reach, slope, pts, count):
    """The route ahead of the egos of worlds ``idx``: for ``k``, world ``idx[k]``'s points
    into ``pts[k]`` ``(P, 2)`` (world m) and their number into ``count[k]`` (0 off the
    network), from the ego's place on its lane on, every ``step`` m for ``reach`` m, lane
    changes as diagonals of ``slope`` m along per m across (:func:`_walk_route`). ``net``,
    ``routes``: the world's ``plain_network`` and ``plain_routes``; ``lanes``, ``us``
    ``(B, N)``, ``ego_route`` ``(B,)``: its state's."""
    net, routes = NetworkArrays(*net), RouteArrays(*routes)
    for k in range(idx.shape[0]):
        b = idx[k]
        lane = lanes[b, 0]
        count[k] = 0 if lane < 0 else _walk_route(net, routes, ego_route[b], lane, us[b, 0],
                                                  step, reach, slope, pts[k])


@njit(cache=True)
def _route_cells(net, routes, lanes, us, xs, ys, headings, ego_route, cell, behind, pts, out):
    """Channel 4 of ``out``: the cells the ego's route's centre line crosses, walked every
    half cell from the ego's place on its lane (or on the lane its route changes into) to the
    grid's far edge; nothing off the network. ``pts``: scratch ``(P, 2)``."""
    net, routes = NetworkArrays(*net), RouteArrays(*routes)
    rows, cols = out.shape[2], out.shape[3]
    reach = (cols - behind) * cell * 1.5  # m of route walked: the grid's far edge round bends
    for b in range(lanes.shape[0]):
        lane = lanes[b, 0]
        if lane < 0:
            continue
        n = _walk_route(net, routes, ego_route[b], lane, us[b, 0], 0.5 * cell, reach, 0.0, pts)
        c0, s0 = math.cos(headings[b, 0]), math.sin(headings[b, 0])
        for k in range(n):
            dx, dy = pts[k, 0] - xs[b, 0], pts[k, 1] - ys[b, 0]
            c = int(math.floor((dx * c0 + dy * s0) / cell)) + behind
            r = int(math.floor((dx * s0 - dy * c0) / cell + 0.5 * rows))
            if 0 <= r < rows and 0 <= c < cols:
                out[b, 4, r, c] = 1.0


@njit(cache=True)
def _occupancy(x, y, heading, speed, length, width, kind, cell, behind, vmax, out):
    """Footprints (a cell whose centre lies within a vehicle's rectangle grown by half a cell)
    into channels 0 (others, with their relative speed in 1) and 3 (the ego) of ``out``."""
    rows, cols = out.shape[2], out.shape[3]
    for b in range(x.shape[0]):
        h0 = heading[b, 0]
        c0, s0 = math.cos(h0), math.sin(h0)
        for e in range(x.shape[1]):
            if kind[b, e] < 0:
                continue
            # The vehicle's centre in grid coordinates (columns ahead, rows right).
            dx, dy = x[b, e] - x[b, 0], y[b, e] - y[b, 0]
            ahead, right = dx * c0 + dy * s0, dx * s0 - dy * c0
            rel = heading[b, e] - h0
            cr, sr = math.cos(rel), math.sin(rel)
            half_l = 0.5 * length[b, e] + 0.5 * cell
            half_w = 0.5 * width[b, e] + 0.5 * cell
            reach = math.hypot(half_l, half_w)
            c_lo = max(int(math.floor((ahead - reach) / cell)) + behind, 0)
            c_hi = min(int(math.floor((ahead + reach) / cell)) + behind, cols - 1)
            r_lo = max(int(math.floor((right - reach) / cell + 0.5 * rows)), 0)
            r_hi = min(int(math.floor((right + reach) / cell + 0.5 * rows)), rows - 1)
            v_rel = (speed[b, e] * cr - speed[b, 0]) / vmax
            v_rel = min(max(v_rel, -1.0), 1.0)
            for r in range(r_lo, r_hi + 1):
                py = (r + 0.5 - 0.5 * rows) * cell - right  # m right of the vehicle's centre
                for c in range(c_lo, c_hi + 1):
                    px = (c + 0.5 - behind) * cell - ahead
                    # Into the vehicle's own axes: along its heading and to its right.
                    along = px * cr - py * sr
                    across = px * sr + py * cr
                    if abs(along) > half_l or abs(across) > half_w:
                        continue
                    if e == 0:
                        out[b, 3, r, c] = 1.0
                    else:
                        out[b, 0, r, c] = 1.0
                        out[b, 1, r, c] = v_rel
