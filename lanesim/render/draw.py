"""Per-frame drawing of the moving parts: vehicles and the dynamic road overlay.

Everything here reads world ``b``'s state arrays and draws; nothing writes the world.
Geometry is computed for all visible entities at once with numpy, then handed to pygame as
plain lists (one conversion per frame, not one per vehicle).
"""

from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402
from lanesim.render.hud import Text  # noqa: E402
from lanesim.render.view import View  # noqa: E402
from lanesim.sim.world import CONE, World  # noqa: E402

# Body corners (4) then windscreen corners (4), as complex offsets from the centre in units of
# (length, width), forward along the real axis: one complex multiply rotates them all.
_ALONG = 0.5 * np.array([1.0, 1.0, -1.0, -1.0, 0.62, 0.62, 0.18, 0.18])
_ACROSS = 0.5j * np.array([1.0, -1.0, -1.0, 1.0, 0.78, -0.78, -0.78, 0.78])
_SHADE = [style.darker(c) for c in style.VEHICLE_COLOURS]


def draw_vehicles(surf: pygame.Surface, view: View, world: World, b: int,
                  centre: tuple[float, float]) -> None:
    """Every entity of world ``b`` within view as a rotated rectangle, the ego last (on top).

    ``centre`` is the world point (m) at the middle of the surface; entities farther from it
    than the view's half diagonal (plus a car length) are skipped. The geometry is a few
    whole-array operations (complex numbers: position + heading rotation × corner offsets),
    since numpy's per-call overhead, not arithmetic, is what costs here.
    """
    x, y = world.x[b], world.y[b]
    r = view.radius() + 4.0
    idx = np.flatnonzero(np.hypot(x - centre[0], y - centre[1]) < r)
    shape = world.length[b, idx, None] * _ALONG + world.width[b, idx, None] * _ACROSS
    z = (x[idx] + 1j * y[idx])[:, None] + np.exp(1j * world.heading[b, idx])[:, None] * shape
    pts = view.complex_points(z).tolist()
    kinds = world.kind[b, idx].tolist()
    crashed = world.crashed[b, idx].tolist()
    if len(idx) and idx[0] == 0:  # the ego (index 0) goes last, on top
        pts.append(pts.pop(0))
        kinds.append(kinds.pop(0))
        crashed.append(crashed.pop(0))
    colours, shades = style.VEHICLE_COLOURS, _SHADE
    polygon = pygame.draw.polygon
    for p, k, hit in zip(pts, kinds, crashed, strict=True):
        polygon(surf, style.CRASHED if hit else colours[k], p[:4])
        if k != CONE:
            polygon(surf, shades[k], p[4:])


def arrow(surf: pygame.Surface, colour, start, end, width: int, head: float) -> None:
    """A line from ``start`` to ``end`` (px) with a triangular head ``head`` px long."""
    pygame.draw.line(surf, colour, start, end, width)
    dx, dy = end[0] - start[0], end[1] - start[1]
    n = math.hypot(dx, dy)
    if n < 1e-6:
        return
    ux, uy = dx / n, dy / n
    bx, by = end[0] - ux * head, end[1] - uy * head
    pygame.draw.polygon(surf, colour, [end, (bx - uy * head * 0.5, by + ux * head * 0.5),
                                       (bx + uy * head * 0.5, by - ux * head * 0.5)])


def draw_polyline(surf: pygame.Surface, view: View, xy: np.ndarray, colour, width: int,
                  dots: bool = False) -> None:
    """World points ``xy`` ``(n, 2)`` (m) joined by a line; ``dots`` marks each point."""
    if len(xy) < 1:
        return
    pts = view.points(xy[:, 0], xy[:, 1]).tolist()
    if len(pts) > 1:
        pygame.draw.lines(surf, colour, False, pts, width)
    if dots:
        r = max(2, width + 1)
        for p in pts:
            pygame.draw.circle(surf, colour, p, r)


def label(surf: pygame.Surface, text: Text, s: str, colour, at: tuple[float, float]) -> None:
    """Text on an opaque dark box centred at ``at`` (px), kept inside the surface."""
    img = text(s, colour, style.HUD_BG)
    w, h = img.get_size()
    x = min(max(at[0] - w / 2, 0), surf.get_width() - w)
    y = min(max(at[1] - h / 2, 0), surf.get_height() - h)
    surf.blit(img, (x, y))


def leader(world: World, b: int, curvature: float) -> tuple[int, float, float, float]:
    """The nearest entity ahead of the ego in its lane: ``(index or -1, bumper gap (m),
    headway (s), time to collision (s))``; ``inf`` where undefined.

    A car counts as in the lane when its lane or its lane-change target is the ego's lane,
    which is how traffic itself judges leaders while changing lanes.
    """
    lane = world.lane[b, 0]
    s = world.s[b]
    ahead = np.where(((world.lane[b] == lane) | (world.target_lane[b] == lane)) & (s > s[0]),
                     s, np.inf)
    ahead[0] = np.inf
    j = int(ahead.argmin())
    if ahead[j] == np.inf:
        return -1, math.inf, math.inf, math.inf
    gap = (s[j] - s[0]) * (1.0 + curvature * world.d[b, 0])
    gap -= 0.5 * (world.length[b, 0] + world.length[b, j])
    v, vl = float(world.speed[b, 0]), float(world.speed[b, j])
    headway = gap / v if v > 0.1 else math.inf
    ttc = gap / (v - vl) if v - vl > 1e-6 else math.inf
    return j, float(gap), headway, ttc
