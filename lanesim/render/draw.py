"""Per-frame drawing of the moving parts: vehicles and the dynamic road overlay.

Everything here reads world ``b``'s state arrays and draws; nothing writes the world.
Geometry is computed for all visible entities at once with numpy, then handed to pygame as
plain lists (one conversion per frame, not one per vehicle): numpy's per-call overhead, not
arithmetic, is what costs at these sizes.
"""

from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402
from lanesim.render.hud import Text  # noqa: E402
from lanesim.render.kernels import (  # noqa: E402
    ANGLE_STEPS,
    BOX_FILL,
    match_leader,
    place_vehicles,
    split_key,
    sprite_half_size,
)
from lanesim.render.view import View  # noqa: E402
from lanesim.sim.world import CONE, World  # noqa: E402

# Body corners (4) then windscreen corners (4) as (along, left) multiples of the half length
# and half width.
_ALONG = (1.0, 1.0, -1.0, -1.0, 0.62, 0.62, 0.18, 0.18)
_LEFT = (1.0, -1.0, -1.0, 1.0, 0.78, -0.78, -0.78, 0.78)
_COLOURS = (*style.VEHICLE_COLOURS, style.CRASHED)  # by kind; CRASHED_COLOUR for crashed
SPRITE_SUPERSAMPLE = 4  # sprites are drawn this much finer, then smoothly scaled down


class VehicleSprites:
    """Vehicles as pre-drawn, rotated, colour-keyed sprites, one blit each per frame.

    A sprite is drawn the first time a (colour, length, width, screen angle) combination is
    needed, with the angle rounded to ``360 / ANGLE_STEPS`` degrees and the size to half a
    pixel; on a highway a few hundred cover everything. A blit costs ~1 µs where drawing the
    two polygons of a car costs ~4 µs, and the per-frame geometry is one compiled call
    (:func:`lanesim.render.kernels.place_vehicles`).

    Sprites are drawn SPRITE_SUPERSAMPLE times finer and scaled down smoothly into per-pixel
    alpha, so rotated cars have clean edges. Each vehicle has a dark outline, so touching or
    crashed vehicles stay apart; a cone is a disc with a white tip.

    Args:
        ppm: pixels per metre.
        like: sprites take this surface's pixel format.
        max_sprites: most sprites kept (all are dropped when full; they redraw on demand).
    """

    def __init__(self, ppm: float, like: pygame.Surface, max_sprites: int = 4096) -> None:
        self.ppm, self.like, self.max_sprites = ppm, like, max_sprites
        self._cache: dict[int, pygame.Surface] = {}
        self._keys = self._left = self._top = np.zeros(0, dtype=np.int64)

    def draw(self, surf: pygame.Surface, view: View, world: World, b: int,
             centre: tuple[float, float]) -> None:
        """Every entity of world ``b`` near the view, the ego (entity 0) last, on top.

        ``centre`` is the world point (m) at the middle of ``surf``; entities farther from it
        than the view's half diagonal plus a car length are skipped.
        """
        n = world.N
        if len(self._keys) < n:
            self._keys, self._left, self._top = (np.zeros(n, dtype=np.int64) for _ in range(3))
        count = place_vehicles(
            world.x[b], world.y[b], world.heading[b], world.length[b], world.width[b],
            world.kind[b], world.crashed[b], centre[0], centre[1], view.radius() + 4.0,
            view.a, view.b, view.c, view.d, view.e, view.f, view.theta, self.ppm,
            self._keys, self._left, self._top)
        cache = self._cache
        surf.blits([(cache.get(k) or self._make(k), (x, y)) for k, x, y in zip(
            self._keys[:count].tolist(), self._left[:count].tolist(),
            self._top[:count].tolist(), strict=True)], False)

    def _make(self, key: int) -> pygame.Surface:
        """Draw the sprite of a packed key (see :func:`lanesim.render.kernels.split_key`)."""
        c, length2, width2, a = split_key(key)
        hl, hw = 0.25 * length2, 0.25 * width2  # half length and width, px
        half_w, half_h = sprite_half_size(length2, width2, a)
        phi = a * math.tau / ANGLE_STEPS  # counter-clockwise on screen
        cs, sn = math.cos(phi), math.sin(phi)
        # Screen y points down, so "left" of the car is -y when phi = 0.
        k = SPRITE_SUPERSAMPLE
        pts = [(k * (half_w + u * hl * cs - v * hw * sn),
                k * (half_h - (u * hl * sn + v * hw * cs)))
               for u, v in zip(_ALONG, _LEFT, strict=True)]
        size = (math.ceil(2 * half_w), math.ceil(2 * half_h))
        fine = pygame.Surface((k * size[0], k * size[1]), pygame.SRCALPHA)
        colour, edge = _COLOURS[c], style.darker(_COLOURS[c], 0.35)
        outline = max(k, round(k * 0.1 * self.ppm))  # about 10 cm, at least a pixel
        if c == CONE:
            centre, r = (k * half_w, k * half_h), k * min(hl, hw)
            pygame.draw.circle(fine, edge, centre, r)
            pygame.draw.circle(fine, colour, centre, max(r - outline, 1))
            pygame.draw.circle(fine, style.MARKING, centre, max(r // 3, 1))
        else:
            pygame.draw.polygon(fine, edge, pts[:4])
            pygame.draw.polygon(fine, colour, _inset(pts[:4], outline))
            pygame.draw.polygon(fine, style.darker(colour), pts[4:])
        img = pygame.transform.smoothscale(fine, size)
        if len(self._cache) >= self.max_sprites:
            self._cache.clear()
        self._cache[key] = img
        return img


def _inset(quad: list[tuple[float, float]], by: float) -> list[tuple[float, float]]:
    """The rectangle ``quad`` (4 corners in order, px) shrunk by ``by`` px on every side: each
    corner moves ``by`` along both of its sides."""
    out = []
    for (xp, yp), (x, y), (xn, yn) in zip(quad[-1:] + quad[:-1], quad, quad[1:] + quad[:1],
                                          strict=True):
        lp, ln = math.hypot(xp - x, yp - y) or 1.0, math.hypot(xn - x, yn - y) or 1.0
        out.append((x + by * ((xp - x) / lp + (xn - x) / ln),
                    y + by * ((yp - y) / lp + (yn - y) / ln)))
    return out


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
                  dots: np.ndarray | None = None) -> None:
    """World points ``xy`` ``(n, 2)`` (m) joined by a line ``width`` px wide; each of the
    world points ``dots`` ``(k, 2)`` (m), if given, marked with a dot."""
    if len(xy) > 1:
        pygame.draw.lines(surf, colour, False, view.points(xy[:, 0], xy[:, 1]).tolist(), width)
    if dots is not None and len(dots):
        r = max(2, width + 1)
        for p in view.points(dots[:, 0], dots[:, 1]).tolist():
            pygame.draw.circle(surf, colour, p, r)


def label(surf: pygame.Surface, text: Text, s: str, colour, at: tuple[float, float]) -> None:
    """Text on an opaque dark box centred at ``at`` (px), kept inside the surface."""
    text.draw(surf, [(s, colour)], at, 1, BOX_FILL, style.HUD_BG, centre=True)


def leader(world: World, b: int, curvature: float) -> tuple[int, float, float, float]:
    """The ego's leader as the environment sees it: ``(entity or -1, bumper gap (m), headway
    (s), time to collision (s))``, ``inf`` where undefined; the numbers match
    ``info["headway"]`` and ``info["time_to_collision"]``.

    The simulator reports the gap and speed only; the entity (for drawing the line to it) is
    the one ahead whose bumper gap along the road matches.
    """
    gaps, speeds = world.leader_of_ego()
    gap, vl = float(gaps[b]), float(speeds[b])
    if not math.isfinite(gap):
        return -1, math.inf, math.inf, math.inf
    s = world.s[b]
    if world.road.closed:  # leaders lie ahead, perhaps across the seam (with a smaller s)
        s = s[0] + (s - s[0]) % world.road.length
    j = match_leader(s, world.length[b], float(world.d[b, 0]), curvature, gap)
    v = float(world.speed[b, 0])
    headway = gap / v if v > 0.1 else math.inf
    ttc = gap / (v - vl) if v - vl > 1e-6 else math.inf
    return j, gap, headway, ttc
