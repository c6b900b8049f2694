"""Road geometry: a reference line of straight and circular segments with parallel lanes.

Coordinates
-----------
World frame: ``x`` east, ``y`` north (m), heading counter-clockwise from ``+x`` (rad).

Road frame (Frenet): ``s`` is the distance along the reference line (m) and ``d`` the lateral
distance to the *right* of it (m). The reference line is the road's left edge, lane 0 is the
leftmost lane, and lane ``i``'s centre lies at ``d = (i + 0.5) * lane_width``, so ``d`` grows with
the lane index. A segment's ``curvature`` is positive for left turns.

Every conversion takes arrays of any shape and is exact on arcs (closed form, no sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from lanesim.sim.jit import kernel, kernel_inline

# Lane markings between two lanes are dashed: DASH_LENGTH m painted of every DASH_PERIOD m along
# the road from s = 0, in every view (top-down, pixels, camera), so the dashes stream past alike.
DASH_LENGTH, DASH_PERIOD = 3.0, 9.0
# Lane ends that join (a closed road's end and start, a network's linked lanes) must meet within
# these (m, rad): far tighter than a car's size, loose enough for poses integrated along arcs in
# floating point.
MEET_DISTANCE = 0.01
MEET_HEADING = 0.01


def pose_miss(p: tuple[float, float, float], q: tuple[float, float, float]) -> tuple[float, float]:
    """How far pose ``q`` lies from pose ``p``: ``(distance (m), |heading difference| (rad))``;
    ends meet when both are within MEET_DISTANCE and MEET_HEADING."""
    return math.hypot(q[0] - p[0], q[1] - p[1]), abs(math.remainder(q[2] - p[2], math.tau))


class ClosureError(ValueError):
    """A road declared closed whose end does not meet its start; the message gives the miss."""


@dataclass(frozen=True)
class Segment:
    """One piece of the reference line: straight when ``curvature == 0``, else a circular arc."""

    length: float  # m, along the reference line
    curvature: float  # 1/m, positive turns left


@dataclass(frozen=True)
class LaneSpan:
    """Where a lane exists along the road: ``start <= s <= end`` (m). ``taper`` is the length (m)
    over which its width is drawn opening or closing; the lane counts as drivable over all of it."""

    start: float
    end: float
    taper: float = 0.0


class RoadArrays(NamedTuple):
    """The road as the kernels read it (:attr:`Road.arrays`)."""

    geometry: tuple  # (s0, length, curvature, x0, y0, h0), each (segments,)
    lane_start: np.ndarray  # (lanes,) m
    lane_end: np.ndarray  # (lanes,) m
    lane_stop: np.ndarray  # (lanes,) m where traffic stops in a closing lane; inf: none
    lane_width: float  # m
    lanes: int
    lane_next: np.ndarray  # (lanes,) int: the lane each lane continues into past the road's
    # end, at s - seam; -1: the lane ends there
    lane_prev: np.ndarray  # (lanes,) int: the lane each lane continues from before s = 0; -1
    seam: float  # m by which s restarts on a successor lane: the length of a closed road; 0
    # on an open road (no lane continues)
    lane_direction: np.ndarray  # (lanes,) int: +1 where traffic travels toward +s, -1 where
    # it comes the other way (a two-way road's oncoming lanes)
    two_way: bool  # some lane's traffic comes the other way (the kernels skip the oncoming
    # lanes' checks on a road of one direction)


class Road:
    """A multi-lane road: segments, lane count and width, and where each lane exists.

    Args:
        segments: the reference line, in order, from ``start``.
        lanes: number of lanes (including lanes that exist only over part of the road).
        lane_width: m.
        spans: one :class:`LaneSpan` per lane; ``None`` means every lane runs the whole road.
        start: pose ``(x, y, heading)`` (m, m, rad) where the reference line starts; a road of
            a network (:mod:`lanesim.sim.network`) starts anywhere, a world's single road at
            the origin heading east.
        closed: the road's end joins its start (a circuit): each lane continues into itself,
            ``s`` restarting from 0 (:attr:`seam`). Every lane must run the whole road.
        directions: per lane, +1 where traffic travels toward +s, -1 where it comes the other
            way (oncoming, heading + π); ``None``: every lane +1. Oncoming lanes must run the
            whole road of an open one (their traffic enters at the far end).

    Raises:
        ClosureError: ``closed`` but the end pose misses the start by more than MEET_DISTANCE
            or MEET_HEADING; the message gives both poses and the miss.
    """

    def __init__(
        self,
        segments: list[Segment],
        lanes: int,
        lane_width: float,
        spans: list[LaneSpan] | None = None,
        start: tuple[float, float, float] = (0.0, 0.0, 0.0),
        closed: bool = False,
        directions: list[int] | None = None,
    ) -> None:
        if not segments:
            raise ValueError("a road needs at least one segment")
        self.segments = list(segments)
        self.lanes = int(lanes)
        self.lane_width = float(lane_width)
        self.width = self.lanes * self.lane_width
        n = len(segments)
        self.seg_length = np.array([s.length for s in segments], dtype=np.float64)
        self.seg_curv = np.array([s.curvature for s in segments], dtype=np.float64)
        self.seg_s0 = np.concatenate([[0.0], np.cumsum(self.seg_length)[:-1]])
        self.length = float(self.seg_length.sum())
        # Start pose of each segment, integrated once in closed form.
        self.seg_x0 = np.zeros(n)
        self.seg_y0 = np.zeros(n)
        self.seg_h0 = np.zeros(n)
        self.start = tuple(float(v) for v in start)
        x, y, h = self.start
        for i, seg in enumerate(segments):
            self.seg_x0[i], self.seg_y0[i], self.seg_h0[i] = x, y, h
            x, y, h = advance(x, y, h, seg.length, seg.curvature)
        self.end_pose = (x, y, h)
        self._geometry = (
            self.seg_s0, self.seg_length, self.seg_curv, self.seg_x0, self.seg_y0, self.seg_h0
        )
        if spans is None:
            spans = [LaneSpan(0.0, self.length) for _ in range(self.lanes)]
        if len(spans) != self.lanes:
            raise ValueError(f"got {len(spans)} lane spans for {self.lanes} lanes")
        self.spans = list(spans)
        self.lane_start = np.array([sp.start for sp in spans], dtype=np.float64)
        self.lane_end = np.array([sp.end for sp in spans], dtype=np.float64)
        self.lane_centre = (np.arange(self.lanes) + 0.5) * self.lane_width
        # A lane that ends before the road does is a lane end that traffic must leave. Traffic
        # stops (m) where it starts to narrow (at its cones on a closure); inf: no stop.
        self.lane_closes = self.lane_end < self.length - 1e-6
        taper = np.array([sp.taper for sp in spans], dtype=np.float64)
        self.lane_stop = np.where(self.lane_closes, self.lane_end - taper, np.inf)
        self.closed = bool(closed)
        if self.closed:
            self._check_closure()
            if np.any(self.lane_start > 1e-6) or np.any(self.lane_closes):
                raise ValueError("every lane of a closed road must run the whole road")
        # On a single road each lane continues into itself, if anywhere.
        self.lane_next = np.arange(self.lanes) if self.closed else np.full(self.lanes, -1)
        self.lane_prev = self.lane_next.copy()
        self.seam = self.length if self.closed else 0.0
        self.lane_direction = np.ones(self.lanes, dtype=np.int64)
        if directions is not None:
            self._set_directions(directions)

    def _set_directions(self, directions: list[int]) -> None:
        if len(directions) != self.lanes or any(v not in (1, -1) for v in directions):
            raise ValueError(
                f"directions must give +1 (forward) or -1 (oncoming) for each of the "
                f"{self.lanes} lanes, got {list(directions)}"
            )
        self.lane_direction = np.array(directions, dtype=np.int64)
        back = self.lane_direction < 0
        if back.any() and self.closed:
            raise ValueError("a closed road's lanes all travel one way (no oncoming lanes)")
        if np.any(back & ((self.lane_start > 1e-6) | self.lane_closes)):
            raise ValueError(
                f"oncoming lanes {np.flatnonzero(back).tolist()} must run the whole road: "
                "lanes that start late or close are forward lanes"
            )

    def _check_closure(self) -> None:
        x0, y0, h0 = self.start
        x1, y1, h1 = self.end_pose
        gap, turn = pose_miss(self.end_pose, self.start)
        if gap > MEET_DISTANCE or turn > MEET_HEADING:
            raise ClosureError(
                f"its end at ({x1:.2f}, {y1:.2f}) heading {math.degrees(h1):.1f}° misses its "
                f"start at ({x0:.2f}, {y0:.2f}) heading {math.degrees(h0):.1f}° by {gap:.2f} m "
                f"and {math.degrees(turn):.1f}° (a loop must close within {MEET_DISTANCE} m and "
                f"{math.degrees(MEET_HEADING):.1f}°)"
            )

    @property
    def geometry(self) -> tuple[np.ndarray, ...]:
        """The segment arrays the compiled kernels take: ``(s0, length, curvature, x0, y0, h0)``."""
        return self._geometry

    @property
    def arrays(self) -> RoadArrays:
        """The road as the compiled kernels take it."""
        return RoadArrays(
            self._geometry, self.lane_start, self.lane_end, self.lane_stop, self.lane_width,
            self.lanes, self.lane_next, self.lane_prev, self.seam, self.lane_direction,
            bool(np.any(self.lane_direction < 0)),
        )

    def wrap(self, s: np.ndarray) -> np.ndarray:
        """``s`` (m) on a closed road brought into ``[0, length)``; unchanged on an open road."""
        s = np.asarray(s, dtype=np.float64)
        return s % self.length if self.closed else s

    def offset(self, s: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """``s - origin`` (m) along the road; on a closed road the shorter way round, in
        ``[-length / 2, length / 2)`` (:func:`along_offset`)."""
        return along_offset.py_func(np.asarray(s, dtype=np.float64) - origin, self.seam)

    # ------------------------------------------------------------------ road frame -> world
    def segment_index(self, s: np.ndarray) -> np.ndarray:
        """Index of the segment holding each ``s`` (clamped to the road's ends)."""
        idx = np.searchsorted(self.seg_s0, s, side="right") - 1
        return np.clip(idx, 0, len(self.segments) - 1)

    def reference_pose(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        """Pose of the reference line at ``s``: ``(x, y, heading, curvature)``, each shaped
        like ``s`` (on a closed road any ``s``, taken round the loop)."""
        s = self.wrap(s)
        out = _reference_poses(self._geometry, np.ascontiguousarray(s).reshape(-1))
        return tuple(a.reshape(s.shape) for a in out)

    def to_world(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Road frame ``(s, d)`` to world ``(x, y)`` and the road heading there (rad)."""
        x, y, h, _ = self.reference_pose(s)
        # d is to the right: the right normal of heading h is (sin h, -cos h).
        return x + d * np.sin(h), y - d * np.cos(h), h

    # ------------------------------------------------------------------ world -> road frame
    def to_road(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World ``(x, y)`` to road frame ``(s, d)`` by exact projection onto every segment.

        The nearest projection wins. Points beyond an open road's ends are extrapolated along
        the first or last segment, so ``s`` may be negative or exceed :attr:`length`; on a
        closed road ``s`` lies in ``[0, length)``.
        Shapes: any, broadcast together; cost is ``O(points × segments)``.
        """
        x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        s, d = _to_road_many(
            self._geometry, np.ascontiguousarray(x).reshape(-1),
            np.ascontiguousarray(y).reshape(-1), self.closed,
        )
        return self.wrap(s).reshape(x.shape), d.reshape(x.shape)

    # ------------------------------------------------------------------ lanes
    def lane_exists(self, lane: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Whether ``lane`` (int array, any value) is drivable at ``s``; invalid indices give
        False."""
        lane = np.asarray(lane)
        valid = (lane >= 0) & (lane < self.lanes)
        li = np.clip(lane, 0, self.lanes - 1)
        return valid & (s >= self.lane_start[li]) & (s <= self.lane_end[li])

    def lane_at(self, d: np.ndarray) -> np.ndarray:
        """Index of the lane whose strip holds lateral position ``d`` (may be out of range)."""
        return np.floor(np.asarray(d) / self.lane_width).astype(np.int64)

    def drivable(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Whether the point ``(s, d)`` lies on an existing lane (any ``s`` on a closed road)."""
        s = self.wrap(s) if self.closed else np.asarray(s)
        return (s >= 0) & (s <= self.length) & self.lane_exists(self.lane_at(d), s)


# ---------------------------------------------------------------------- compiled geometry
# Scalar functions of one point, shared by the Road methods above and the simulator kernels.


@kernel
def advance(x, y, h, u, k):
    """Pose after travelling ``u`` (m) from ``(x, y, h)`` with curvature ``k`` (1/m)."""
    if abs(k * u) < 1e-9:
        return x + u * math.cos(h), y + u * math.sin(h), h + k * u
    return (
        x + (math.sin(h + k * u) - math.sin(h)) / k,
        y - (math.cos(h + k * u) - math.cos(h)) / k,
        h + k * u,
    )


@kernel_inline
def wrap_angle(angle):
    """``angle`` (rad) wrapped into [-π, π)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


_TWO_PI = 2 * math.pi


@kernel_inline
def wrap_heading(angle):
    """:func:`wrap_angle` (``angle`` rad wrapped into [-π, π)), the same bits for every input,
    without its ``fmod`` call where ``angle + π`` lies in (-2π, 4π) (every heading the kernels
    wrap in a step: a sum or difference of two wrapped angles and a little more).

    Why the bits are the same: wrap_angle is ``m - π`` with ``m = x % 2π``, ``x = angle + π``,
    and numba's float ``%`` is CPython's: ``r = fmod(x, 2π)`` (exact), then ``r + 2π`` where
    ``r`` is non-zero and negative, ``+0.0`` where ``r`` is zero. For ``0 < x < 2π``, ``r = x``;
    for ``2π <= x < 4π``, ``r = x - 2π``, which floating point subtracts exactly (Sterbenz: ``x``
    within a factor 2 of ``2π``), and is ``+0.0`` at ``x = 2π`` as fmod's zero becomes; for
    ``-2π < x < 0``, ``r = x`` and the result adds ``2π`` to it, the same rounded sum; for
    ``x = ±0`` (a heading of exactly -π), ``r = +0.0``. Any other ``x`` (from -2π down, from 4π
    up, inf, NaN) takes wrap_angle itself. Tested against it bit for bit
    (tests/test_network_fastpaths.py)."""
    x = angle + math.pi
    if 0.0 < x < _TWO_PI:
        return x - math.pi
    if _TWO_PI <= x < 2.0 * _TWO_PI:
        return (x - _TWO_PI) - math.pi
    if -_TWO_PI < x < 0.0:
        return (x + _TWO_PI) - math.pi
    if x == 0.0:  # a heading of exactly -π (due west): fmod's ±0 becomes +0
        return 0.0 - math.pi
    return wrap_angle(angle)


@kernel_inline
def along_offset(ds, seam):
    """An along-road offset ``ds`` (m) taken the shorter way round a closed road of length
    ``seam`` (into ``[-seam / 2, seam / 2)``); unchanged where ``seam`` is 0 (an open road)."""
    if seam > 0.0:
        return (ds + 0.5 * seam) % seam - 0.5 * seam
    return ds


def wrap_angles(angle: np.ndarray) -> np.ndarray:
    """:func:`wrap_angle` over an array, in numpy: the same formula, the same bits."""
    return wrap_angle.py_func(np.asarray(angle, dtype=np.float64))


@kernel
def segment_at(geometry, s):
    """Index of the segment holding ``s``, clamped to the road's ends."""
    s0 = geometry[0]
    lo, hi = 0, s0.shape[0] - 1
    while lo < hi:  # last segment whose start is <= s
        mid = (lo + hi + 1) // 2
        if s0[mid] <= s:
            lo = mid
        else:
            hi = mid - 1
    return lo


@kernel
def pose_at(geometry, s):
    """``(x, y, heading, curvature)`` of the reference line at ``s``."""
    s0, _, curv, x0, y0, h0 = geometry
    i = segment_at(geometry, s)
    x, y, h = advance(x0[i], y0[i], h0[i], s - s0[i], curv[i])
    return x, y, h, curv[i]


@kernel
def pose_trig_at(geometry, s):
    """:func:`pose_at` plus the cosine and sine of the heading, computed once."""
    s0, _, curv, x0, y0, h0 = geometry
    i = segment_at(geometry, s)
    h, k, u = h0[i], curv[i], s - s0[i]
    if k == 0.0:
        c, sn = math.cos(h), math.sin(h)
        return x0[i] + u * c, y0[i] + u * sn, h, k, c, sn
    x, y, heading = advance(x0[i], y0[i], h, u, k)
    return x, y, heading, k, math.cos(heading), math.sin(heading)


@kernel_inline
def segment_foot(geometry, i, px, py):
    """Distance (m) along segment ``i`` from its start to the foot of the world point
    ``(px, py)`` on its line or circle, unclamped: negative before the segment, beyond its
    length after it."""
    h0 = geometry[5][i]
    return segment_foot_trig(geometry, i, px, py, math.cos(h0), math.sin(h0))


@kernel_inline
def segment_foot_trig(geometry, i, px, py, c, sn):
    """:func:`segment_foot` with the cosine and sine ``c, sn`` of the segment's start heading
    given (a network keeps them in a table: ``NetworkArrays.seg_trig``)."""
    _, length, curv, x0, y0, _ = geometry
    k = curv[i]
    if k == 0.0:
        return (px - x0[i]) * c + (py - y0[i]) * sn
    r = 1.0 / k  # signed radius; the centre lies to the left for a left turn
    cx, cy = x0[i] - r * sn, y0[i] + r * c
    ang = math.atan2(py - cy, px - cx) - math.atan2(y0[i] - cy, x0[i] - cx)
    if r < 0:
        ang = -ang
    # Wrap around the arc's middle so arcs sweeping more than π still project right.
    half = 0.5 * length[i] * abs(k)
    ang = wrap_heading(ang - half) + half
    return ang * abs(r)


@kernel
def project(geometry, px, py, first, last, closed):
    """Road frame ``(s, d)`` of the world point ``(px, py)``: the nearest foot on segments
    ``first`` to ``last`` (indices, inclusive; on a ``closed`` road the range may run on past
    the last segment to the first, ``first > last``).

    Searching only the segments near where a car was keeps it on its own stretch of a road
    that passes the same place twice (a repeated pattern can cross itself).
    """
    s0, length, curv, x0, y0, h0 = geometry
    n = s0.shape[0]
    best_gap = np.inf
    best_s = 0.0
    best_d = 0.0
    i = first
    while True:
        u = segment_foot(geometry, i, px, py)
        k = curv[i]
        # An open road's two ends stay open so points before the start or past the end
        # project; a closed road has no ends.
        if (closed or i > 0) and u < 0.0:
            u = 0.0
        if (closed or i < n - 1) and u > length[i]:
            u = length[i]
        fx, fy, fh = advance(x0[i], y0[i], h0[i], u, k)
        gap = math.hypot(px - fx, py - fy)
        if gap < best_gap:
            best_gap = gap
            best_s = s0[i] + u
            best_d = (px - fx) * math.sin(fh) - (py - fy) * math.cos(fh)
        if i == last:
            break
        i = i + 1 if i < n - 1 else 0
    return best_s, best_d


@kernel
def project_near(road, px, py, s, reach):
    """:func:`project` of ``(px, py)`` on the segments within ``reach`` (m) of ``s`` along a
    road (:class:`RoadArrays`), round the seam of a closed one, where ``s`` comes out in
    ``[0, length]``."""
    geometry = road.geometry
    closed = road.seam > 0.0
    if not closed:
        first, last = segment_at(geometry, s - reach), segment_at(geometry, s + reach)
    elif 2.0 * reach >= road.seam:
        first, last = 0, geometry[0].shape[0] - 1
    else:
        lo, hi = s - reach, s + reach
        across = lo < 0.0 or hi >= road.seam
        lo = lo + road.seam if lo < 0.0 else lo
        hi = hi - road.seam if hi >= road.seam else hi
        first, last = segment_at(geometry, lo), segment_at(geometry, hi)
        if across and first <= last:  # the window spans the seam within one long segment
            first, last = 0, geometry[0].shape[0] - 1
    # One call with the flag as a value: numba compiles project once, not per constant.
    return project(geometry, px, py, first, last, closed)


@njit(cache=True)
def _reference_poses(geometry, s):
    n = s.shape[0]
    x, y, h, k = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for j in range(n):
        x[j], y[j], h[j], k[j] = pose_at(geometry, s[j])
    return x, y, h, k


@njit(cache=True)
def _to_road_many(geometry, x, y, closed):
    n = x.shape[0]
    s, d = np.empty(n), np.empty(n)
    for j in range(n):
        s[j], d[j] = project(geometry, x[j], y[j], 0, geometry[0].shape[0] - 1, closed)
    return s, d
