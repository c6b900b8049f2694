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

from dataclasses import dataclass

import numpy as np


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


class Road:
    """A multi-lane road: segments, lane count and width, and where each lane exists.

    Args:
        segments: the reference line, in order; it starts at the origin heading east.
        lanes: number of lanes (including lanes that exist only over part of the road).
        lane_width: m.
        spans: one :class:`LaneSpan` per lane; ``None`` means every lane runs the whole road.
    """

    def __init__(
        self,
        segments: list[Segment],
        lanes: int,
        lane_width: float,
        spans: list[LaneSpan] | None = None,
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
        x = y = h = 0.0
        for i, seg in enumerate(segments):
            self.seg_x0[i], self.seg_y0[i], self.seg_h0[i] = x, y, h
            x, y, h = _advance(x, y, h, seg.length, seg.curvature)
        self.end_pose = (x, y, h)
        if spans is None:
            spans = [LaneSpan(0.0, self.length) for _ in range(self.lanes)]
        if len(spans) != self.lanes:
            raise ValueError(f"got {len(spans)} lane spans for {self.lanes} lanes")
        self.spans = list(spans)
        self.lane_start = np.array([sp.start for sp in spans], dtype=np.float64)
        self.lane_end = np.array([sp.end for sp in spans], dtype=np.float64)
        self.lane_centre = (np.arange(self.lanes) + 0.5) * self.lane_width
        # A lane that ends before the road does is a lane end that traffic must leave.
        self.lane_closes = self.lane_end < self.length - 1e-6

    # ------------------------------------------------------------------ road frame -> world
    def segment_index(self, s: np.ndarray) -> np.ndarray:
        """Index of the segment holding each ``s`` (clamped to the road's ends)."""
        idx = np.searchsorted(self.seg_s0, s, side="right") - 1
        return np.clip(idx, 0, len(self.segments) - 1)

    def reference_pose(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pose of the reference line at ``s``: ``(x, y, heading, curvature)``, each shaped like s."""
        s = np.asarray(s, dtype=np.float64)
        i = self.segment_index(s)
        u = s - self.seg_s0[i]
        k = self.seg_curv[i]
        x, y, h = _advance(self.seg_x0[i], self.seg_y0[i], self.seg_h0[i], u, k)
        return x, y, h, k

    def to_world(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Road frame ``(s, d)`` to world ``(x, y)`` and the road heading there (rad)."""
        x, y, h, _ = self.reference_pose(s)
        # d is to the right: the right normal of heading h is (sin h, -cos h).
        return x + d * np.sin(h), y - d * np.cos(h), h

    # ------------------------------------------------------------------ world -> road frame
    def to_road(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World ``(x, y)`` to road frame ``(s, d)`` by exact projection onto every segment.

        The nearest projection wins. Points beyond the road's ends are extrapolated along the
        first or last segment, so ``s`` may be negative or exceed :attr:`length`.
        Shapes: any, broadcast together; cost is ``O(points × segments)``.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        px = x[..., None]
        py = y[..., None]
        x0, y0, h0 = self.seg_x0, self.seg_y0, self.seg_h0
        k, length, s0 = self.seg_curv, self.seg_length, self.seg_s0
        c, sn = np.cos(h0), np.sin(h0)
        dx, dy = px - x0, py - y0
        along = dx * c + dy * sn  # straight: distance along the tangent
        straight = k == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(straight, np.inf, 1.0 / np.where(straight, 1.0, k))  # signed radius
            # Arc centre lies to the left for a left turn (r > 0) and to the right for r < 0.
            cx = x0 - r * sn
            cy = y0 + r * c
            ex, ey = px - cx, py - cy
            dist = np.hypot(ex, ey)
            # Angle swept from the segment start, measured in the turning direction.
            start_angle = np.arctan2(y0 - cy, x0 - cx)
            ang = np.arctan2(ey, ex) - start_angle
            ang = np.where(r > 0, ang, -ang)
            # Wrap around the arc's middle so arcs sweeping more than π still project right.
            half = 0.5 * length * np.abs(k)
            ang = (ang - half + np.pi) % (2 * np.pi) - np.pi + half
            u_arc = ang * np.abs(r)
        u = np.where(straight, along, u_arc)
        # Clamp to the segment, then measure the true distance to that foot point; the road's two
        # ends stay open so cars before the start or past the end still get coordinates.
        lo = np.where(np.arange(len(length)) == 0, -np.inf, 0.0)
        hi = np.where(np.arange(len(length)) == len(length) - 1, np.inf, length)
        uc = np.clip(u, lo, hi)
        fx, fy, fh = _advance(x0, y0, h0, uc, k)
        gap = np.hypot(px - fx, py - fy)
        best = np.argmin(gap, axis=-1)[..., None]
        s_out = np.take_along_axis(s0 + uc, best, -1)[..., 0]
        fx = np.take_along_axis(fx, best, -1)[..., 0]
        fy = np.take_along_axis(fy, best, -1)[..., 0]
        fh = np.take_along_axis(fh, best, -1)[..., 0]
        d_out = (px[..., 0] - fx) * np.sin(fh) - (py[..., 0] - fy) * np.cos(fh)
        return s_out, d_out

    # ------------------------------------------------------------------ lanes
    def lane_exists(self, lane: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Whether ``lane`` (int array, any value) is drivable at ``s``; invalid indices give False."""
        lane = np.asarray(lane)
        valid = (lane >= 0) & (lane < self.lanes)
        li = np.clip(lane, 0, self.lanes - 1)
        return valid & (s >= self.lane_start[li]) & (s <= self.lane_end[li])

    def lane_at(self, d: np.ndarray) -> np.ndarray:
        """Index of the lane whose strip holds lateral position ``d`` (may be out of range)."""
        return np.floor(np.asarray(d) / self.lane_width).astype(np.int64)

    def drivable(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Whether the point ``(s, d)`` lies on an existing lane."""
        s = np.asarray(s)
        return (s >= 0) & (s <= self.length) & self.lane_exists(self.lane_at(d), s)


def _advance(x, y, h, u, k):
    """Pose after travelling ``u`` (m) from ``(x, y, h)`` with curvature ``k`` (1/m); vectorized."""
    small = np.abs(k * u) < 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        ks = np.where(small, 1.0, k)
        xa = x + (np.sin(h + k * u) - np.sin(h)) / ks
        ya = y - (np.cos(h + k * u) - np.cos(h)) / ks
    xs = x + u * np.cos(h)
    ys = y + u * np.sin(h)
    return np.where(small, xs, xa), np.where(small, ys, ya), h + k * u
