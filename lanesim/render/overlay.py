"""The moving part of the road overlay: what the ego is doing relative to its lane and leader.

Drawn per frame (the static part, lane centres, boundaries and the drivable tint, is in the
cached road tiles): the ego's recent trail, the agent's plan, the line and label of the
headway to the leader (under the vehicles), and on top of the ego its lateral offset from the
lane centre and two arrows, the road direction (white) and the ego's heading (orange), whose
angle is the heading error.
"""

from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402
from lanesim.render.annotate import Annotation  # noqa: E402
from lanesim.render.draw import arrow, draw_polyline, label, leader  # noqa: E402
from lanesim.render.hud import Text  # noqa: E402
from lanesim.render.kernels import screen_points  # noqa: E402
from lanesim.render.view import RoadPose, View  # noqa: E402
from lanesim.sim.world import World  # noqa: E402

TRAIL_SECONDS = 3.0
ARROW_LENGTH = 6.0  # m, from the ego's front bumper


class Overlay:
    """The ego's trail (its last TRAIL_SECONDS of positions, sampled once per simulated
    instant) and the per-frame overlay marks of world 0.

    Args:
        world: the simulator (read only).
        pose: the road's scalar pose function.
        sim_hz: simulation steps per second (sizes the trail).
    """

    def __init__(self, world: World, pose: RoadPose, sim_hz: float) -> None:
        self.world, self.road, self.pose = world, world.road, pose
        # A ring buffer written twice (at i and i + cap), so the latest points are always one
        # contiguous slice: no per-frame reordering.
        self.cap = int(round(TRAIL_SECONDS * sim_hz)) + 1
        self.trail = np.zeros((2 * self.cap, 2))  # x, y (m)
        self._px = np.zeros((self.cap + 1, 2))  # the drawn points, screen px
        # Every k-th sample is drawn (about 8 a second), chosen by its absolute count so the
        # drawn points do not change from frame to frame.
        self.every = max(1, round(sim_hz / 8))
        self.reset()

    def reset(self) -> None:
        """Forget the trail (a new episode)."""
        self.n = self.head = self.count = 0
        self.t = -math.inf

    def sample(self) -> None:
        """Add the ego's position to the trail, once per simulated instant."""
        w = self.world
        t = float(w.time[0])
        if t == self.t:
            return
        if t < self.t:  # a new episode (e.g. a vector env's autoreset)
            self.reset()
        self.t = t
        cap, i = self.cap, self.head
        self.trail[i] = self.trail[i + cap] = (w.x[0, 0], w.y[0, 0])
        self.head = (i + 1) % cap
        self.n = min(self.n + 1, cap)
        self.count += 1

    def latest(self, ago: int) -> np.ndarray:
        """The ego's position ``ago`` samples back (0: the latest), ``(2,)`` m."""
        return self.trail[self.head + self.cap - 1 - ago]

    def draw_under(self, surf: pygame.Surface, view: View, ann: Annotation | None, s_ego: float,
                   lw: int):
        """Trail, plan and headway line, drawn beneath the vehicles (``lw``: line width, px).
        Returns what :meth:`draw_over` needs for the headway label (None without a leader)."""
        w = self.world
        ex, ey = float(w.x[0, 0]), float(w.y[0, 0])
        if self.n > 1:
            end, n, k = self.head + self.cap, self.n, self.every
            first = end - n + (-(self.count - n)) % k  # the oldest sample drawn
            m = screen_points(self.trail, first, end, k, view.a, view.b, view.c, view.d,
                              view.e, view.f, self._px)
            pts = self._px[:m].tolist()
            pts.append(view.point(ex, ey))
            pygame.draw.lines(surf, style.TRAIL, False, pts, lw)
        if ann is not None and ann.plan is not None and len(ann.plan):
            path, dots = plan_until_vehicle(w, 0, ann.plan)
            draw_polyline(surf, view, path, style.PLAN, lw, dots)
        lead = leader(w, 0, self.pose.curvature(s_ego))
        j = lead[0]
        if j < 0:
            return None
        pts = [view.point(x, y) for x, y in headway_path(w, self.pose, s_ego, j)]
        pygame.draw.lines(surf, style.HEADWAY, False, pts, max(1, lw - 1))
        a, b = pts[0], pts[-1]
        mid = pts[len(pts) // 2] if len(pts) > 2 else ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        return lead, mid

    def draw_over(self, surf: pygame.Surface, view: View, s_ego: float, theta: float, lead,
                  text: Text, lw: int) -> None:
        """On top of the vehicles: the lateral offset (a line from the lane centre to the
        ego's centre, a dot at each end), the heading arrows and the headway label (see
        :func:`headway_label`), kept inside ``surf``'s clip rectangle."""
        w = self.world
        ex, ey, h = float(w.x[0, 0]), float(w.y[0, 0]), float(w.heading[0, 0])
        lane_d = float(self.road.lane_centre[w.lane[0, 0]])
        foot, ego = view.point(*self.pose(s_ego, lane_d)[:2]), view.point(ex, ey)
        pygame.draw.line(surf, style.OFFSET, foot, ego, lw)
        pygame.draw.circle(surf, style.OFFSET, foot, lw + 1)
        pygame.draw.circle(surf, style.OFFSET, ego, lw)
        half = 0.5 * float(w.length[0, 0])
        fx, fy = ex + half * math.cos(h), ey + half * math.sin(h)
        front, head, r = view.point(fx, fy), 3 * lw + 2, ARROW_LENGTH
        arrow(surf, style.ROAD_DIRECTION, front,
              view.point(fx + r * math.cos(theta), fy + r * math.sin(theta)), lw, head)
        arrow(surf, style.HEADING, front, view.point(fx + r * math.cos(h), fy + r * math.sin(h)),
              lw, head)
        if lead is not None:
            (_, gap, headway, ttc), mid = lead
            s, warn = headway_label(gap, headway, ttc)
            label(surf, text, s, style.TEXT_WARN if warn else style.HEADWAY,
                  (mid[0], mid[1] - 1.2 * text.line))


def headway_path(world: World, pose: RoadPose, s_ego: float, j: int) -> list[tuple[float, float]]:
    """World points (m) of the headway line of world 0 from the ego's front bumper to the rear
    of its leader ``j``, along the ego's lane (a point every ~8 m where the road curves on the
    way)."""
    w = world
    ex, ey = float(w.x[0, 0]), float(w.y[0, 0])
    h, half = float(w.heading[0, 0]), 0.5 * float(w.length[0, 0])
    hj, half_j = float(w.heading[0, j]), 0.5 * float(w.length[0, j])
    a = (ex + half * math.cos(h), ey + half * math.sin(h))
    b = (float(w.x[0, j]) - half_j * math.cos(hj), float(w.y[0, j]) - half_j * math.sin(hj))
    lane_d = float(w.road.lane_centre[w.lane[0, 0]])
    # The leader is ahead: on a closed road perhaps across the seam, with a smaller s.
    ahead = float(w.s[0, j]) - s_ego
    if w.road.closed:
        ahead %= w.road.length
    s0, s1 = s_ego + half, s_ego + ahead - half_j
    n = 0 if pose.straight(s0, s1) else max(int((s1 - s0) / 8.0), 0)
    return [a, *(pose(s0 + (s1 - s0) * (i + 1) / (n + 1), lane_d)[:2] for i in range(n)), b]


PLAN_STEP = 0.5  # m between the points a plan is checked at for vehicles


def plan_until_vehicle(world, b: int, plan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The part of an agent's ``plan`` (``(n, 2)`` world m, from the ego on) before it first
    enters another vehicle of world ``b`` as it stands now: ``(path, points)``, the polyline to
    draw (``(m, 2)``, ending where it meets the vehicle) and the plan's own points on it. The
    plan is where the ego will be later, when that vehicle has moved on, but drawn through it
    the path reads as a collision and hides the vehicle. ``world`` is a one-road
    :class:`~lanesim.sim.world.World` or a network's :class:`~lanesim.sim.netrun.NetRun`
    (whose empty slots, ``kind < 0``, are no vehicles)."""
    if len(plan) < 2:
        return plan, plan
    seg = np.diff(plan, axis=0)
    steps = np.maximum(np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / PLAN_STEP), 1).astype(int)
    owner = np.repeat(np.arange(len(seg)), steps)  # the segment each sample lies on
    frac = np.concatenate([np.arange(k) / k for k in steps])
    samples = plan[owner] + frac[:, None] * seg[owner]
    cars = 1 + np.flatnonzero(world.kind[b, 1:] >= 0)
    x, y, h = world.x[b, cars], world.y[b, cars], world.heading[b, cars]
    dx, dy = samples[:, :1] - x, samples[:, 1:] - y
    c, s = np.cos(h), np.sin(h)
    inside = ((np.abs(dx * c + dy * s) < 0.5 * world.length[b, cars])
              & (np.abs(dy * c - dx * s) < 0.5 * world.width[b, cars])).any(axis=1)
    if not inside.any():
        return plan, plan
    first = int(np.argmax(inside))
    points = plan[: owner[first] + (frac[first] > 0)]
    return np.concatenate([points, samples[first - 1 : first] if first else plan[:0]]), points


def headway_label(gap: float, headway: float, ttc: float) -> tuple[str, bool]:
    """The headway label's text and whether it warns, from the bumper ``gap`` (m), the
    ``headway`` (s) and the time to collision ``ttc`` (s; ``inf`` where undefined).

    Touching or overlapping bumpers (a crash) read "contact"; a headway or time to collision
    that is undefined (the ego stands, or is not closing in) or beyond 100 s is left out. It
    warns under 0.8 s of headway or 3 s to collision."""
    if gap <= 0.0:
        return "contact", True
    parts = [f"{gap:.1f} m" if gap < 10.0 else f"{gap:.0f} m"]
    if headway < 100.0:
        parts.append(f"{headway:.1f} s")
    if ttc < 100.0:
        parts.append(f"ttc {ttc:.1f} s")
    return "  ".join(parts), ttc < 3.0 or headway < 0.8
