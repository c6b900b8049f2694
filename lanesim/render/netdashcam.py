"""The viewer's driver's-seat pane on a road network: world 0 through the ego's camera
(:class:`~lanesim.camera.netraster.NetworkCameraRaster`), and an overlay in perspective.

The overlay is what a network has in place of one road's lines: the centre lines of the lanes
the ego's route takes from where it is (its lane, the lane a change goes to, the lanes after),
the agent's plan, and the ego's lateral offset and heading error drawn :data:`MARK_AHEAD` m
along its lane, with their values. One road's leader box and time gap are not drawn.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pygame

from lanesim.camera import Camera
from lanesim.camera.netraster import NetworkCameraRaster
from lanesim.render import style
from lanesim.render.annotate import Annotation
from lanesim.render.dashcam import (
    MARK_AHEAD,
    NEAR,
    STRIPS,
    DashCam,
    crop,
    line_px,
    strip_rows,
    within,
)
from lanesim.render.draw import arrow, label
from lanesim.render.hud import Text
from lanesim.render.kernels import copy_inside
from lanesim.render.overlay import ARROW_LENGTH, plan_until_vehicle

ROUTE_STEP = 1.0  # m between the points of a route lane's centre line
ROUTE_REACH = 200.0  # m of route drawn ahead of the ego at most


class NetDashCam(DashCam):
    """The camera pane of world 0 on a network.

    Args:
        world: the network world (:class:`~lanesim.sim.netrun.NetRun`, read only).
        size: the pane's ``(width, height)`` px.
        camera: the environment's camera (``Options.camera``), resized to the pane.
    """

    def __init__(self, world, size: tuple[int, int], camera: Camera) -> None:
        self.world, self.network, self.pose = world, world.network, None
        self.size = size
        self.camera = camera.resized(size)
        self.reach = self.camera.one_to_one_radius()
        self.lw = line_px(size[1])
        first = None
        self.strips = []
        for rows in strip_rows(self.camera, STRIPS):
            raster = NetworkCameraRaster(crop(self.camera, rows), world.network, True,
                                         world.yield_ends,
                                         texture=None if first is None else first.texture)
            first = first or raster
            self.strips.append((rows, raster))
        self._pool = ThreadPoolExecutor(len(self.strips) - 1) if len(self.strips) > 1 else None

    def _draw_strip(self, k: int, out: np.ndarray) -> None:
        (r0, r1), raster = self.strips[k]
        w, one = self.world, slice(0, 1)
        raster.draw(w.x[one], w.y[one], w.heading[one], w.length[one], w.width[one],
                    w.kind[one], w.crashed[one], out=out[None, r0:r1])

    def route_points(self) -> list[np.ndarray]:
        """The centre lines of world 0's route lanes from the ego on (the ego's lane from its
        ``u``), each ``(n, 2)`` world m, together at most :data:`ROUTE_REACH` m long."""
        w, net = self.world, self.network
        u_ego = float(w.u[0, 0])
        left = ROUTE_REACH
        lines = []
        for k, lane in enumerate(w.route_lanes(0)):
            length = net.lane_length(lane)
            u0 = min(max(u_ego, 0.0), length) if k == 0 else 0.0
            u1 = min(length, u0 + left)
            if u1 - u0 < 1e-6:
                continue
            u = np.linspace(u0, u1, max(2, math.ceil((u1 - u0) / ROUTE_STEP) + 1))
            x, y, _ = net.lane_to_world(np.full(len(u), lane), u)
            lines.append(np.stack([x, y], -1))
            left -= u1 - u0
            if left <= 0.0:
                break
        return lines

    def draw_overlay(self, surf: pygame.Surface, origin: tuple[int, int], pixels: np.ndarray,
                     ann: Annotation | None, s_ego: float, offset: float, heading_error: float,
                     text: Text) -> None:
        """The overlay onto ``surf`` (clipped to the pane by the caller), the pane's top-left
        at ``origin`` (px), where ``pixels`` (the :meth:`draw_image` array) are the pane's:
        the route's lane centres, the agent's plan, the ego's offset (m) and heading error
        (rad) ahead with their values; hidden behind vehicles as on one road. ``s_ego`` is
        unused (a network has no one road's ``s``)."""
        lw = self.lw
        hulls = self.outlines(self.box_corners(), hidden=self.world.kind[0, 1:] < 0)
        clean = [pixels[y0:y1, x0:x1].copy() for _, (x0, y0, x1, y1) in hulls]
        for line in self.route_points():
            self._ground_line(surf, origin, line, style.LANE_CENTRE, lw)
        if ann is not None and ann.plan is not None and len(ann.plan):
            path, dots = plan_until_vehicle(self.world, 0, np.asarray(ann.plan, dtype=np.float64))
            self._ground_line(surf, origin, path, style.PLAN, lw, dots)
        self._error_marks(surf, origin, s_ego)
        for (hull, (x0, y0, _, _)), image in zip(hulls, clean, strict=True):
            copy_inside(pixels, image, x0, y0, hull[:, 0], hull[:, 1])
        width, height = self.size
        label(surf, text, f"offset {offset:+.2f} m  heading {math.degrees(heading_error):+.1f}°",
              style.OFFSET, (origin[0] + 0.5 * width, origin[1] + height - text.line))

    def _error_marks(self, surf, origin, s_ego: float) -> None:
        """The ego's lateral offset and heading error carried :data:`MARK_AHEAD` m along its
        lane: a line from the lane's centre across to the ego's offset, and from there the
        lane's direction (white) and the ego's heading (orange) arrows."""
        w, net = self.world, self.network
        lane = int(w.lane[0, 0])
        if lane < 0:
            return
        u = min(float(w.u[0, 0]) + MARK_AHEAD, net.lane_length(lane))
        fx, fy, lane_h = (float(v) for v in net.lane_to_world(lane, u))
        ex, ey, _ = (float(v) for v in net.lane_to_world(lane, u, float(w.offset[0, 0])))
        h = float(w.heading[0, 0])
        r = ARROW_LENGTH
        pts = np.array([[fx, fy], [ex, ey],
                        [ex + r * math.cos(lane_h), ey + r * math.sin(lane_h)],
                        [ex + r * math.cos(h), ey + r * math.sin(h)]])
        cam = self.to_camera(pts[:, 0], pts[:, 1])
        lw = self.lw
        if (cam[:, 2] >= NEAR).all() and within(cam, self.reach).all():
            foot, ego, lane_tip, heading_tip = self.project(cam, origin).tolist()
            pygame.draw.line(surf, style.OFFSET, foot, ego, lw)
            pygame.draw.circle(surf, style.OFFSET, foot, lw + 1)
            head = 3 * lw + 2
            arrow(surf, style.ROAD_DIRECTION, ego, lane_tip, lw, head)
            arrow(surf, style.HEADING, ego, heading_tip, lw, head)


__all__ = ["NetDashCam"]
