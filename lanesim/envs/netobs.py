"""Observations on a road network, in the ego's frame.

On one road, kinematics and the occupancy grid are in the road frame (along / across the road).
A network has no one road frame: a junction's arms point every way. Here every position,
velocity and heading is relative to the ego: ``x`` ahead along its heading, ``y`` to its right
(the side lanesim's lateral offsets count positive), headings counter-clockwise from its
heading. The route's direction comes in the ego's row, so the agent knows where its goal lies.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from numba import njit

from lanesim.envs.observations import KINEMATICS_FEATURES
from lanesim.sim.jit import compiled_for
from lanesim.sim.network import wrap_heading

# The ego's row, feature by feature (the other rows are as KINEMATICS_FEATURES says).
NETWORK_EGO_FEATURES = (
    "presence",  # 1
    "route_ahead",  # sin of the bearing of the route's centre 20 m ahead: + right of the heading
    "goal_turn",  # sin of the goal lane's direction at arrival relative to the heading: + right
    # (a right turn), 0 straight on, - left; 0 without a goal
    "speed",  # over the ego's top speed
    "route_left",  # remaining route distance over 10 x perception_distance (1: far or no goal)
    "cos_h",  # heading relative to its lane's direction
    "sin_h",
    "lane_offset",  # from its lane's centre over half a lane width, + right
)


class NetworkKinematics:
    """``(1 + observed_vehicles, 8)`` float32 rows in [-1, 1] in the ego's frame.

    Row 0 is the ego (:data:`NETWORK_EGO_FEATURES`); rows 1.. the ``observed_vehicles`` nearest
    cars within ``perception_distance`` (m, straight-line), nearest first, zero rows when fewer:
    ``presence``, ``x`` ahead and ``y`` right of the ego over the perception distance, ``vx``,
    ``vy`` their velocity minus the ego's in the ego's frame over its top speed, ``cos_h``,
    ``sin_h`` their heading relative to the ego's, ``lane_offset`` from their lane's centre over
    half its width.
    """

    def __init__(self, options, world) -> None:
        self.n = options.observed_vehicles
        self.range = options.perception_distance
        self.world = world
        self.space = spaces.Box(-1.0, 1.0, (1 + self.n, len(KINEMATICS_FEATURES)), np.float32)
        self._shape = (world.B, 1 + self.n, len(KINEMATICS_FEATURES))
        # The kernel without numba's per-call dispatch: the world's arrays, a new float32 out.
        self._args = (world.x, world.y, world.heading, world.speed, world.kind, world.offset,
                      world.lane, world.lane_half_width, world.ego_route_features(),
                      self.range, world.spec.ego.max_speed)
        self._fill = compiled_for(ego_frame_kinematics, *self._args,
                                  np.zeros(self._shape, dtype=np.float32))

    def reset(self, worlds: np.ndarray) -> np.ndarray:
        return self()

    def __call__(self) -> np.ndarray:
        out = np.zeros(self._shape, dtype=np.float32)
        self._fill(*self._args, out)
        return out


@njit(cache=True, inline="always")
def _half_lane(lane, lane_half_width):
    return lane_half_width[lane] if lane >= 0 else 1.75


@njit(cache=True)
def ego_frame_kinematics(x, y, heading, speed, kind, offset, lane, lane_half_width, route,
                         perception, vmax, out):
    """Fill ``out`` ``(B, 1 + n, 8)``. ``x`` .. ``offset`` are the world's ``(B, N)`` views
    (entity 0 the ego; ``kind < 0`` an empty slot), ``lane`` ``(B, N)`` each entity's lane (-1
    off the network), ``lane_half_width`` ``(lanes,)`` half of each lane's width (1.75 m off
    the network, as :attr:`lanesim.sim.netrun.NetRun.half_lane`), ``route`` ``(B, 4)`` per world
    (:meth:`lanesim.sim.netrun.NetRun.ego_route_features`): the route's bearing 20 m ahead and
    the goal's direction relative to the ego's heading (rad, + left), the remaining route
    distance (m, inf without a goal) and the ego's heading relative to its lane (rad)."""
    n = out.shape[1] - 1
    N = x.shape[1]
    for b in range(x.shape[0]):
        h0 = heading[b, 0]
        c0, s0 = math.cos(h0), math.sin(h0)
        vx0, vy0 = speed[b, 0], 0.0  # the ego's own velocity in its frame
        row = out[b, 0]
        row[0] = 1.0
        row[1] = -math.sin(route[b, 0])
        row[2] = -math.sin(route[b, 1])
        row[3] = speed[b, 0] / vmax
        row[4] = min(route[b, 2] / (10.0 * perception), 1.0)
        row[5] = math.cos(route[b, 3])
        row[6] = math.sin(route[b, 3])
        row[7] = offset[b, 0] / _half_lane(lane[b, 0], lane_half_width)
        best = np.full(n, -1)
        best_dist = np.full(n, np.inf)
        for e in range(1, N):
            if kind[b, e] < 0:
                continue
            dist = math.hypot(x[b, e] - x[b, 0], y[b, e] - y[b, 0])
            if dist > perception:
                continue
            j = n - 1
            if n == 0 or dist >= best_dist[j]:
                continue
            while j > 0 and best_dist[j - 1] > dist:
                best_dist[j], best[j] = best_dist[j - 1], best[j - 1]
                j -= 1
            best_dist[j], best[j] = dist, e
        for k in range(n):
            e = best[k]
            if e < 0:
                break
            dx, dy = x[b, e] - x[b, 0], y[b, e] - y[b, 0]
            rel = wrap_heading(heading[b, e] - h0)
            ve = speed[b, e]
            # World velocity of e, turned into the ego's frame (x ahead, y right).
            wx, wy = ve * math.cos(heading[b, e]), ve * math.sin(heading[b, e])
            row = out[b, 1 + k]
            row[0] = 1.0
            row[1] = (dx * c0 + dy * s0) / perception
            row[2] = (dx * s0 - dy * c0) / perception
            row[3] = ((wx * c0 + wy * s0) - vx0) / vmax
            row[4] = ((wx * s0 - wy * c0) - vy0) / vmax
            row[5] = math.cos(rel)
            row[6] = math.sin(rel)
            row[7] = offset[b, e] / _half_lane(lane[b, e], lane_half_width)
        for k in range(1 + n):
            for f in range(out.shape[2]):
                out[b, k, f] = min(max(out[b, k, f], -1.0), 1.0)
