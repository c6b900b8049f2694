"""The viewer's driver's-seat pane: world 0 through the ego's camera, and the road overlay in
perspective.

Every overlay mark is a 3D point set (world metres, on the ground or on a vehicle's box) moved
into the ego's vehicle frame, then into the camera frame by :meth:`Camera.vehicle_to_camera`,
cut at a near plane and projected by :meth:`Camera.project`: the same model that renders the
image, so the marks sit on what they mark. Lines are cut where they cross the near plane; no
point behind it is ever projected (a mirrored projection would draw a line across the sky).
"""

from __future__ import annotations

import dataclasses
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.camera import Camera, CameraRaster  # noqa: E402
from lanesim.camera.raster import BOX_HEIGHTS, DRAW_DISTANCE, lane_edges  # noqa: E402
from lanesim.render import style  # noqa: E402
from lanesim.render.annotate import Annotation  # noqa: E402
from lanesim.render.draw import arrow, label, leader  # noqa: E402
from lanesim.render.hud import Text  # noqa: E402
from lanesim.render.kernels import copy_inside  # noqa: E402
from lanesim.render.overlay import (  # noqa: E402
    ARROW_LENGTH,
    headway_label,
    headway_path,
    plan_until_vehicle,
)
from lanesim.render.view import RoadPose  # noqa: E402
from lanesim.sim.world import World  # noqa: E402

# The viewer's camera: issue #17's default mounting, the one the camera observation uses.

NEAR = 0.1  # m: the overlay's near plane (camera depth); nearer points are cut away
# Stations (m ahead of the ego's centre) the road's lines are sampled at, as far as the image
# shows the road: 1 m apart near the car, then 5 % farther each, as a pixel covers more road
# with distance (a 12 m chord on the tightest 80 m curve strays 0.2 m, under a pixel that far
# away). From just behind the car, so the lines reach the image's bottom edge.
STATIONS = np.concatenate([np.arange(-2.0, 12.0, 1.0), 12.0 * 1.05 ** np.arange(
    math.ceil(math.log(DRAW_DISTANCE / 12.0) / math.log(1.05)) + 1)])
STATIONS[-1] = DRAW_DISTANCE
# Lines are drawn thinner with depth: full width to 25 m, half to 70 m, then 1 px.
BAND_ENDS = (25.0, 70.0)
MARK_AHEAD = 8.0  # m ahead of the ego's centre where the lateral offset and heading are drawn
# The image is drawn in horizontal strips on this many threads (the raster releases the GIL),
# split so each has about as much ground as the others: a ground pixel costs about 8 sky ones.
STRIPS = min(4, os.cpu_count() or 1)
SKY_COST = 0.12
# A box's edges as pairs of its corners (see DashCam.box_corners), and the two faces each
# edge bounds: front, rear (along the box), left, right, top, bottom.
BOX_EDGES = np.array([(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
                      (0, 4), (1, 5), (2, 6), (3, 7)])
FRONT, REAR, LEFT, RIGHT, TOP, BOTTOM = range(6)
EDGE_FACES = np.array([(BOTTOM, FRONT), (BOTTOM, RIGHT), (BOTTOM, REAR), (BOTTOM, LEFT),
                       (TOP, FRONT), (TOP, RIGHT), (TOP, REAR), (TOP, LEFT),
                       (FRONT, LEFT), (FRONT, RIGHT), (REAR, RIGHT), (REAR, LEFT)])


def strip_rows(camera: Camera, strips: int) -> list[tuple[int, int]]:
    """``strips`` row ranges ``[r0, r1)`` covering ``camera``'s image, of about equal drawing
    cost (rows above the horizon cost SKY_COST of a ground row)."""
    w, h = camera.image_size
    horizon = min(max(camera.horizon_row(), 0.0), float(h))
    cost = np.where(np.arange(h) + 0.5 < horizon, SKY_COST, 1.0)
    cum = np.concatenate([[0.0], np.cumsum(cost)])
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, strips) / strips)
    edges = np.unique(np.concatenate([[0], np.clip(cuts, 1, h - 1), [h]]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def crop(camera: Camera, rows: tuple[int, int]) -> Camera:
    """The camera that sees exactly rows ``[r0, r1)`` of ``camera``'s image: the same camera
    with its principal point moved up by ``r0``."""
    fx, fy, cx, cy = camera.intrinsics
    r0, r1 = rows
    return dataclasses.replace(camera, intrinsics=(fx, fy, cx, cy - r0),
                               image_size=(camera.image_size[0], r1 - r0))


def line_px(height: int) -> int:
    """Width (px) of the overlay's nearest lines in a pane ``height`` px tall."""
    return max(2, round(height / 130))


def clip_segments(a: np.ndarray, b: np.ndarray, near: float = NEAR,
                  reach: float = math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments ``a -> b`` (``(K, 3)`` camera frame, m) cut to their part at depth ``z >= near``.

    Returns ``(a, b, kept)``: the cut end points and ``(K,)`` whether any part is left. A
    segment with an end beyond ``reach`` (the lens's one-to-one radius,
    :meth:`Camera.one_to_one_radius`) is dropped: distortion would fold it onto the image."""
    za, zb = a[:, 2], b[:, 2]
    kept = (za >= near) | (zb >= near)
    with np.errstate(divide="ignore", invalid="ignore"):  # dropped segments give NaN
        t = ((near - za) / (zb - za))[:, None]
        cut = a + t * (b - a)
    a = np.where((za < near)[:, None], cut, a)
    b = np.where((zb < near)[:, None], cut, b)
    if math.isfinite(reach):
        with np.errstate(divide="ignore", invalid="ignore"):
            kept &= (within(a, reach) & within(b, reach))
    return a, b, kept


def within(p: np.ndarray, reach: float) -> np.ndarray:
    """``(K,)``: the camera-frame points ``p`` lie in front of the camera and within ``reach``
    of the optical axis on the normalised image plane."""
    z = p[:, 2]
    return (z > 0) & (np.hypot(p[:, 0], p[:, 1]) <= reach * z)


def clip_polylines(p: np.ndarray, joined: np.ndarray, near: float = NEAR,
                   reach: float = math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polylines cut at the near plane.

    Args:
        p: ``(N, 3)`` camera-frame points (m).
        joined: ``(N - 1,)`` whether point ``i`` connects to point ``i + 1`` (False between
            polylines and over gaps).

    Returns:
        ``(points, starts, first)``: the pieces in front of the plane, all their points
        ``(M, 3)``, where piece ``k`` is ``points[starts[k]:starts[k + 1]]`` (at least 2 points
        each), and the index in ``p`` of each piece's first segment (to tell which line it
        belongs to).
    """
    a, b, kept = clip_segments(p[:-1], p[1:], near, reach)
    kept &= joined
    segs = np.flatnonzero(kept)
    if len(segs) == 0:
        return np.zeros((0, 3)), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # A segment continues the previous piece when that one was kept and their shared point
    # is in front (neither was cut there).
    follows = np.zeros(len(segs), dtype=bool)
    follows[1:] = (np.diff(segs) == 1) & (p[segs[1:], 2] >= near)
    first = segs[~follows]
    # Each piece: its first segment's start, then every segment's end.
    n_pieces = len(first)
    starts = np.zeros(n_pieces + 1, dtype=np.int64)
    starts[1:] = np.cumsum(np.bincount(np.cumsum(~follows) - 1, minlength=n_pieces) + 1)
    points = np.empty((starts[-1], 3))
    heads = starts[:-1]
    points[heads] = a[first]
    ends = np.ones(starts[-1], dtype=bool)
    ends[heads] = False
    points[ends] = b[segs]
    return points, starts, first


class DashCam:
    """The camera pane of world 0: its image and the road overlay projected into it.

    Args:
        world: the simulator (read only).
        pose: the road's scalar pose function.
        size: the pane's ``(width, height)`` px.
        camera: the environment's camera (its ``camera_*`` options, ``Options.camera``), shown
            with its mounting, lens and field of view at the pane's size (:meth:`Camera.resized`).
    """

    def __init__(self, world: World, pose: RoadPose, size: tuple[int, int],
                 camera: Camera) -> None:
        self.world, self.road, self.pose = world, world.road, pose
        self.size = size
        self.camera = camera.resized(size)
        # Overlay points farther off the axis would fold back onto the image through the lens.
        self.reach = self.camera.one_to_one_radius()
        self.lw = line_px(size[1])
        self.strips = [(rows, CameraRaster(crop(self.camera, rows), world, colour=True))
                       for rows in strip_rows(self.camera, STRIPS)]
        self._pool = ThreadPoolExecutor(len(self.strips) - 1) if len(self.strips) > 1 else None
        self._world0 = np.arange(world.B) == 0

    def close(self) -> None:
        """Stop the drawing threads."""
        if self._pool is not None:
            self._pool.shutdown()

    # ------------------------------------------------------------------ the image
    def draw_image(self, out: np.ndarray) -> None:
        """The camera image of world 0 into ``out`` (``(height, width, 3)`` uint8 RGB, may be
        a strided view of a frame's pixels): drawn there by the raster, strip by strip in
        parallel, no copy."""
        jobs = [self._pool.submit(self._draw_strip, k, out) for k in range(1, len(self.strips))]
        self._draw_strip(0, out)
        for job in jobs:
            job.result()

    def _draw_strip(self, k: int, out: np.ndarray) -> None:
        (r0, r1), raster = self.strips[k]
        part = out[r0:r1]
        # The raster takes one image per world and draws the selected ones: every world's
        # image is ``part`` (a zero stride), and only world 0's is drawn.
        batch = np.lib.stride_tricks.as_strided(
            part, (self.world.B, *part.shape), (0, *part.strides), writeable=True)
        raster.draw(self._world0, batch)

    # ------------------------------------------------------------------ the overlay
    def to_camera(self, x, y, z=0.0) -> np.ndarray:
        """World points (m; ``x``, ``y``, ``z`` broadcast together, ``z`` up from the ground)
        to the camera frame of world 0's ego, ``(N, 3)`` m."""
        w = self.world
        h = float(w.heading[0, 0])
        c, s = math.cos(h), math.sin(h)
        dx = np.asarray(x, dtype=np.float64) - float(w.x[0, 0])
        dy = np.asarray(y, dtype=np.float64) - float(w.y[0, 0])
        dx, dy, z = np.broadcast_arrays(dx, dy, np.asarray(z, dtype=np.float64))
        vehicle = np.stack([c * dx + s * dy, c * dy - s * dx, z], axis=-1).reshape(-1, 3)
        return self.camera.vehicle_to_camera(vehicle)

    def road_points(self, s_ego: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The overlay's road lines ahead of the ego (at ``s_ego``, m), as world points.

        Returns ``(xy, drawn, centre)``: ``xy`` ``(L, S, 2)`` m for ``L`` lines (per lane: left
        edge, centre, right edge) at the :data:`STATIONS` ahead, ``drawn`` ``(L, S)`` where the
        line exists, and ``centre`` ``(L,)`` which lines are lane centres.
        """
        road = self.road
        s = road.wrap(s_ego + STATIONS)  # round a closed road's seam
        on_road = (s >= 0.0) & (s <= road.length)
        s = np.clip(s, 0.0, road.length)
        lanes = np.arange(road.lanes)
        exists = road.lane_exists(lanes[:, None], s[None, :])  # (lanes, S)
        d, drawn, centre = [], [], []
        for lane in range(road.lanes):
            left, right = lane_edges(road, lane, s)
            # A lane's right edge is the next lane's left edge where that one exists.
            right_alone = exists[lane] & (
                ~exists[lane + 1] if lane + 1 < road.lanes else True)
            d += [left, np.full_like(s, road.lane_centre[lane]), right]
            drawn += [exists[lane], exists[lane], right_alone]
            centre += [False, True, False]
        d = np.stack(d)
        x, y, _ = road.to_world(s[None, :], d)
        return np.stack([x, y], -1), np.stack(drawn) & on_road, np.array(centre)

    def draw_overlay(self, surf: pygame.Surface, origin: tuple[int, int], pixels: np.ndarray,
                     ann: Annotation | None, s_ego: float, offset: float, heading_error: float,
                     text: Text) -> None:
        """The road overlay onto ``surf`` (clipped to the pane by the caller), the pane's
        top-left at ``origin`` (px), where ``pixels`` (the :meth:`draw_image` array) are the
        pane's: lane boundaries and centres ahead, the agent's plan, the leader's box with its
        gap and time gap, and the ego's lateral offset (m) and heading error (rad) at the lane
        ahead, with their values.

        The marks on the road are hidden where a vehicle stands in front of them: with the
        camera above the ground, a ground point is hidden exactly where a vehicle's box covers
        it in the image (a ray that meets the ground meets a box on the ground before), so the
        image inside each box's outline is put back after they are drawn."""
        lw = self.lw
        corners = self.box_corners()
        hulls = self.outlines(corners)
        clean = [pixels[y0:y1, x0:x1].copy() for _, (x0, y0, x1, y1) in hulls]
        xy, drawn, centre = self.road_points(s_ego)
        self._lines_3d(surf, origin, xy, drawn, centre)
        if ann is not None and ann.plan is not None and len(ann.plan):
            path, dots = plan_until_vehicle(self.world, 0, ann.plan)
            self._ground_line(surf, origin, path, style.PLAN, lw, dots)
        lead = leader(self.world, 0, self.pose.curvature(s_ego))
        if lead[0] >= 0:
            path = np.array(headway_path(self.world, self.pose, s_ego, lead[0]))
            self._ground_line(surf, origin, path, style.HEADWAY, max(1, lw - 1))
        self._error_marks(surf, origin, s_ego)
        for (hull, (x0, y0, _, _)), image in zip(hulls, clean, strict=True):
            copy_inside(pixels, image, x0, y0, hull[:, 0], hull[:, 1])
        if lead[0] >= 0:
            self._leader_box(surf, origin, corners, lead, text)
        width, height = self.size
        label(surf, text, f"offset {offset:+.2f} m  heading {math.degrees(heading_error):+.1f}°",
              style.OFFSET, (origin[0] + 0.5 * width, origin[1] + height - text.line))

    def box_corners(self) -> np.ndarray:
        """``(N, 8, 3)``: the corners of every entity's box of world 0 in the camera frame (m):
        bottom front-left, front-right, rear-right, rear-left, then the same on top (the
        ego's own box, which holds the camera, included: callers skip entity 0)."""
        w = self.world
        h, hl, hw = w.heading[0], 0.5 * w.length[0], 0.5 * w.width[0]
        c, sn = np.cos(h)[:, None], np.sin(h)[:, None]
        along = hl[:, None] * np.array([1.0, 1.0, -1.0, -1.0])
        left = hw[:, None] * np.array([1.0, -1.0, -1.0, 1.0])
        x = w.x[0][:, None] + along * c - left * sn
        y = w.y[0][:, None] + along * sn + left * c
        top = BOX_HEIGHTS[w.kind[0]][:, None]
        z = np.concatenate([np.zeros_like(top).repeat(4, 1), top.repeat(4, 1)], axis=1)
        return self.to_camera(np.tile(x, 2), np.tile(y, 2), z).reshape(-1, 8, 3)

    def outlines(self, corners: np.ndarray, hidden: np.ndarray | None = None,
                 ) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
        """The image outline of every vehicle's box (entities 1.., ``corners`` from
        :meth:`box_corners`) within DRAW_DISTANCE and in view, as far as it is in front of
        the near plane, but those ``hidden`` (``(N - 1,)`` bool, e.g. a network's empty
        slots): ``(polygon (k, 2) pane px, bounding box (x0, y0, x1, y1) within the pane)``
        each."""
        w = self.world
        far = np.hypot(w.x[0, 1:] - w.x[0, 0], w.y[0, 1:] - w.y[0, 0]) > DRAW_DISTANCE
        if hidden is not None:
            far |= hidden
        boxes = corners[1:]
        m = len(boxes)
        a, b, kept = clip_segments(boxes[:, BOX_EDGES[:, 0]].reshape(-1, 3),
                                   boxes[:, BOX_EDGES[:, 1]].reshape(-1, 3), reach=self.reach)
        kept = kept.reshape(m, len(BOX_EDGES)) & ~far[:, None]
        shown = np.flatnonzero(kept.any(axis=1))
        if len(shown) == 0:
            return []
        ends = np.concatenate([a.reshape(m, -1, 3)[shown], b.reshape(m, -1, 3)[shown]], axis=1)
        both = np.concatenate([kept[shown], kept[shown]], axis=1)
        uv, _ = self.camera.project(ends[both])  # the cut ends of each box's kept edges
        split = np.cumsum(both.sum(axis=1))[:-1]
        out = []
        width, height = self.size
        for pts in np.split(uv, split):
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            x0, y0 = max(math.floor(lo[0]), 0), max(math.floor(lo[1]), 0)
            x1, y1 = min(math.ceil(hi[0]) + 1, width), min(math.ceil(hi[1]) + 1, height)
            if x1 > x0 and y1 > y0:
                out.append((convex_hull(pts), (x0, y0, x1, y1)))
        return out

    def project(self, cam: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
        """Camera-frame points ``(N, 3)`` in front of the near plane to surface pixels."""
        uv, _ = self.camera.project(cam)
        return uv + np.asarray(origin, dtype=np.float64)

    def _lines_3d(self, surf, origin, xy, drawn, centre) -> None:
        """Lane edges and centres, thinner with distance (bands of stations)."""
        L, S, _ = xy.shape
        cam = self.to_camera(xy[..., 0], xy[..., 1])
        joined = (drawn[:, :-1] & drawn[:, 1:])
        joined = np.concatenate([joined, np.zeros((L, 1), dtype=bool)], axis=1).reshape(-1)[:-1]
        points, starts, first = clip_polylines(cam, joined, reach=self.reach)
        if len(first) == 0:
            return
        px = self.project(points, origin)
        depth = points[:, 2]
        lw = self.lw
        widths = np.where(depth < BAND_ENDS[0], lw,
                          np.where(depth < BAND_ENDS[1], max(1, lw // 2), 1))
        px_list = px.tolist()
        for k, seg in enumerate(first.tolist()):
            i0, i1 = int(starts[k]), int(starts[k + 1])
            colour = style.LANE_CENTRE if centre[seg // S] else style.LANE_BOUNDARY
            wk = widths[i0:i1]
            # Pieces of equal width; neighbours share their joint point.
            cuts = [i0, *(i0 + 1 + np.flatnonzero(np.diff(wk))).tolist(), i1 - 1]
            for c0, c1 in zip(cuts[:-1], cuts[1:], strict=True):
                if c1 > c0:
                    pygame.draw.lines(surf, colour, False, px_list[c0 : c1 + 1], int(wk[c0 - i0]))

    def _ground_line(self, surf, origin, xy: np.ndarray, colour, width: int,
                     dots: np.ndarray | None = None) -> None:
        """A polyline of world ground points ``xy`` ``(n, 2)`` (m), dots at ``dots``."""
        if len(xy) > 1:
            cam = self.to_camera(xy[:, 0], xy[:, 1])
            points, starts, _ = clip_polylines(cam, np.ones(len(xy) - 1, dtype=bool),
                                               reach=self.reach)
            px = self.project(points, origin).tolist()
            for i0, i1 in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
                pygame.draw.lines(surf, colour, False, px[i0:i1], width)
        if dots is not None and len(dots):
            cam = self.to_camera(dots[:, 0], dots[:, 1])
            front = (cam[:, 2] >= NEAR) & within(cam, self.reach)
            fy = self.camera.intrinsics[1]
            radius = np.clip(0.15 * fy / cam[front, 2], 1.5, width + 1.0).tolist()
            for (u, v), r in zip(self.project(cam[front], origin).tolist(), radius, strict=True):
                pygame.draw.circle(surf, colour, (u, v), r)

    def _leader_box(self, surf, origin, corners: np.ndarray, lead, text: Text) -> None:
        """The leader's box outline, its edges the camera sees, and its label (gap, time gap)
        above the box."""
        j, gap, headway, ttc = lead
        s, warn = headway_label(gap, headway, ttc)
        colour = style.TEXT_WARN if warn else style.HEADWAY
        w = self.world
        hl, hw, h = 0.5 * float(w.length[0, j]), 0.5 * float(w.width[0, j]), float(w.heading[0, j])
        top = float(BOX_HEIGHTS[w.kind[0, j]])
        # The camera in the box's frame: a face is seen when the camera is beyond its plane.
        he = float(w.heading[0, 0])
        dx = float(w.x[0, 0]) + self.camera.forward * math.cos(he) - float(w.x[0, j])
        dy = float(w.y[0, 0]) + self.camera.forward * math.sin(he) - float(w.y[0, j])
        along, left = dx * math.cos(h) + dy * math.sin(h), dy * math.cos(h) - dx * math.sin(h)
        z = self.camera.height
        seen = np.array([along > hl, along < -hl, left > hw, left < -hw, z > top, z < 0.0])
        edges = BOX_EDGES[seen[EDGE_FACES].any(axis=1)]
        a, b, kept = clip_segments(corners[j, edges[:, 0]], corners[j, edges[:, 1]],
                                   reach=self.reach)
        pa = self.project(a[kept], origin).tolist()
        pb = self.project(b[kept], origin).tolist()
        for p, q in zip(pa, pb, strict=True):
            pygame.draw.line(surf, colour, p, q, max(1, self.lw - 1))
        # Above the middle of the box's rear face.
        anchor = self.to_camera(float(w.x[0, j]) - hl * math.cos(h),
                                float(w.y[0, j]) - hl * math.sin(h), top + 0.6)
        if anchor[0, 2] >= NEAR and within(anchor, self.reach)[0]:
            u, v = self.project(anchor, origin)[0].tolist()
            label(surf, text, s, colour, (u, v))

    def _error_marks(self, surf, origin, s_ego: float) -> None:
        """The ego's lateral offset and heading error, as the top-down overlay draws them at
        the ego but carried MARK_AHEAD along the road, where the camera sees the ground: a
        line across from the lane centre to the ego's lateral position, and from there the
        road direction (white) and the ego's heading (orange) arrows."""
        w = self.world
        lane_d = float(self.road.lane_centre[w.lane[0, 0]])
        s = s_ego + MARK_AHEAD
        fx, fy, road_h = self.pose(s, lane_d)
        ex, ey, _ = self.pose(s, float(w.d[0, 0]))
        h = float(w.heading[0, 0])
        r = ARROW_LENGTH
        pts = np.array([[fx, fy], [ex, ey],
                        [ex + r * math.cos(road_h), ey + r * math.sin(road_h)],
                        [ex + r * math.cos(h), ey + r * math.sin(h)]])
        cam = self.to_camera(pts[:, 0], pts[:, 1])
        lw = self.lw
        if (cam[:, 2] >= NEAR).all() and within(cam, self.reach).all():
            foot, ego, road_tip, heading_tip = self.project(cam, origin).tolist()
            pygame.draw.line(surf, style.OFFSET, foot, ego, lw)
            pygame.draw.circle(surf, style.OFFSET, foot, lw + 1)
            head = 3 * lw + 2
            arrow(surf, style.ROAD_DIRECTION, ego, road_tip, lw, head)
            arrow(surf, style.HEADING, ego, heading_tip, lw, head)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """The convex hull of ``(n, 2)`` points, ``(k, 2)`` in order (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) < 3:
        return np.array(pts)

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and ((chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1])
                                       - (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0])
                                       ) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1])
