"""The camera: world metres to screen pixels, and a scalar road pose for per-frame use.

Screen pixels: ``x`` right, ``y`` down, origin at the surface's top-left corner. The world
fills the surface right of ``left`` (the HUD's side panel is left of it). The view is rotated
so the road direction at the ego points right, with the ego's station on the road placed at
``anchor`` (default a third of the way across the world's part, half way down).

*World pixels* are the frame the cached road tiles are drawn in: ``X = x · ppm``,
``Y = -y · ppm`` (north up), unrotated.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from lanesim.sim.road import Road

VIEW_LENGTH = 100.0  # m of road shown across the surface's width


class RoadPose:
    """Closed-form reference-line pose for one scalar ``s``, without numpy overhead.

    Matches :meth:`lanesim.sim.road.Road.to_world` exactly; the viewer calls it a few times
    per frame, where numpy's per-call cost (tens of µs) would dominate.
    """

    def __init__(self, road: Road) -> None:
        self.s0 = [float(v) for v in road.seg_s0]
        self.x0 = [float(v) for v in road.seg_x0]
        self.y0 = [float(v) for v in road.seg_y0]
        self.h0 = [float(v) for v in road.seg_h0]
        self.k = [float(v) for v in road.seg_curv]
        self.seam = road.seam  # a closed road's length: s beyond it goes round again; 0: open

    def __call__(self, s: float, d: float = 0.0) -> tuple[float, float, float]:
        """World ``(x, y)`` (m) of road point ``(s, d)`` and the road heading there (rad)."""
        if self.seam:
            s %= self.seam
        i = min(max(bisect_right(self.s0, s) - 1, 0), len(self.s0) - 1)
        u = s - self.s0[i]
        k, h0 = self.k[i], self.h0[i]
        if abs(k * u) < 1e-9:
            x = self.x0[i] + u * math.cos(h0)
            y = self.y0[i] + u * math.sin(h0)
        else:
            x = self.x0[i] + (math.sin(h0 + k * u) - math.sin(h0)) / k
            y = self.y0[i] - (math.cos(h0 + k * u) - math.cos(h0)) / k
        h = h0 + k * u
        return x + d * math.sin(h), y - d * math.cos(h), h

    def straight(self, s0: float, s1: float) -> bool:
        """Whether the reference line has no curve anywhere between ``s0`` and ``s1`` (m)."""
        if self.seam and (s0 < 0.0 or s1 >= self.seam):  # round the seam: assume a curve
            return False
        i0 = min(max(bisect_right(self.s0, s0) - 1, 0), len(self.s0) - 1)
        i1 = min(max(bisect_right(self.s0, s1) - 1, 0), len(self.s0) - 1)
        return not any(self.k[i0 : i1 + 1])

    def curvature(self, s: float) -> float:
        """Curvature (1/m, + left) of the reference line at ``s``."""
        return self.k[min(max(bisect_right(self.s0, s) - 1, 0), len(self.s0) - 1)]


class View:
    """An affine world-to-screen map: ``sx = a·x + b·y + e``, ``sy = c·x + d·y + f``.

    Args:
        width, height: surface size (px).
        ppm: pixels per metre.
        anchor: where the camera's world point lands, as fractions of the world's part of the
            surface, ``(width - left, height)``.
        left: the world is drawn at columns ``left`` (px) and right of it.
    """

    def __init__(self, width: int, height: int, ppm: float, anchor=(1 / 3, 1 / 2),
                 left: int = 0) -> None:
        self.width, self.height, self.ppm, self.left = int(width), int(height), float(ppm), left
        self.ax, self.ay = left + anchor[0] * (width - left), anchor[1] * height
        self.theta = 0.0
        self.a, self.b, self.c, self.d, self.e, self.f = ppm, 0.0, 0.0, -ppm, 0.0, 0.0

    def look_at(self, x: float, y: float, theta: float) -> None:
        """Put world point ``(x, y)`` (m) at the anchor, with direction ``theta`` (rad, world
        frame) pointing right. With ``theta == 0`` the offsets are snapped to whole pixels so
        the cached road tiles and everything drawn on top line up exactly."""
        p = self.ppm
        c, s = math.cos(theta), math.sin(theta)
        self.theta = theta
        self.a, self.b = p * c, p * s
        self.c, self.d = p * s, -p * c
        self.e = self.ax - self.a * x - self.b * y
        self.f = self.ay - self.c * x - self.d * y
        if theta == 0.0:
            self.e, self.f = float(round(self.e)), float(round(self.f))

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Screen position (px) of one world point (m)."""
        return self.a * x + self.b * y + self.e, self.c * x + self.d * y + self.f

    def points(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Screen positions ``(..., 2)`` (px) of world points ``x, y`` (m, any equal shapes)."""
        return np.stack((self.a * x + self.b * y + self.e, self.c * x + self.d * y + self.f), -1)

    def world(self, sx: float, sy: float) -> tuple[float, float]:
        """World point (m) under screen pixel ``(sx, sy)``: the inverse map."""
        det = self.a * self.d - self.b * self.c
        u, v = sx - self.e, sy - self.f
        return (self.d * u - self.b * v) / det, (self.a * v - self.c * u) / det

    def rect(self) -> tuple[int, int, int, int]:
        """The world's part of the surface, ``(left, top, width, height)`` px."""
        return self.left, 0, self.width - self.left, self.height

    def centre(self) -> tuple[float, float]:
        """The world point (m) at the middle of the world's part of the surface."""
        return self.world(0.5 * (self.left + self.width), 0.5 * self.height)

    def radius(self) -> float:
        """Half the diagonal of the world's part, in metres: anything farther from
        :meth:`centre` is off-view."""
        return 0.5 * math.hypot(self.width - self.left, self.height) / self.ppm
