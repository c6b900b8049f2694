"""The camera renderer: what a :class:`~lanesim.camera.model.Camera` on the ego sees, compiled.

:class:`CameraRaster` draws straight from the simulator's arrays at the camera's resolution, on
the CPU, one world after another (over the world's thread pool for large batches):

* **Sky and distant ground** never change (the camera is rigid on the car and the ground is
  flat), so they are a background made once.
* **The ground** within :data:`DRAW_DISTANCE` of the camera: the point where each pixel's ray
  (:meth:`Camera.rays`, distortion included) meets the ground is fixed in the vehicle frame and
  made once; per frame it is moved by the ego's pose and put in road coordinates by walking the
  road's segments from the previous pixel's (neighbouring pixels are near each other). The road
  surface, the lane markings (dashed between two lanes, 3 m of every 9, anchored to ``s``, so
  they stream past; solid at an edge with a lane on one side only, following tapers; a bar
  across a lane that starts or ends abruptly) and the off-road ground are weighed by how much
  of the pixel's footprint on the ground they cover: far lines fade instead of flickering, and
  the road fades into the ground over the last :data:`FADE_DISTANCE`.
* **Vehicles** are boxes (:data:`BOX_HEIGHT` by kind; the ego, whose box holds the camera, is
  never drawn). Each pixel's ray is intersected with every box whose image it may fall in, and
  a depth buffer keeps the nearest hit: occlusion is exact for any overlap, and a box partly
  behind the camera is drawn as far as it is in front, never mirrored (rays only go forward).
  Faces are shaded by their angle to a sun fixed in the world (:data:`SUN`).
* **Colour images** fade what is far towards the horizon's colour (:data:`HAZE`); grey
  images keep their levels exact.

The colours are the named constants below: ``*_GREY`` for grey images, ``*_RGB`` for colour.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from lanesim.camera.model import Camera
from lanesim.sim.jit import kernel, kernel_inline
from lanesim.sim.road import DASH_LENGTH, DASH_PERIOD, Road, segment_at, wrap_angle
from lanesim.sim.state import HEADING, KIND, LENGTH, WIDTH, S, X, Y
from lanesim.sim.world import CAR, CONE, EGO, STALLED, World

__all__ = ["CameraRaster", "lane_edges"]

DRAW_DISTANCE = 250.0  # m from the camera: road and vehicles beyond it are not drawn
FADE_DISTANCE = 50.0  # m over which the road fades into the ground before DRAW_DISTANCE
LINE_WIDTH = 0.15  # m, painted lane markings
BOX_HEIGHT = {EGO: 1.5, CAR: 1.5, STALLED: 1.5, CONE: 0.75}  # m, by entity kind
# The same as an array indexed by kind (0 for a kind without a box).
BOX_HEIGHTS = np.array([BOX_HEIGHT.get(k, 0.0) for k in range(max(BOX_HEIGHT) + 1)])
# Unit vector towards the sun in the world frame (x east, y north, z up): high, behind the
# left shoulder of a car driving east, so a car's back, sides and roof all differ.
SUN = tuple(np.array([-0.6, 0.35, 0.7]) / np.linalg.norm([-0.6, 0.35, 0.7]))
AMBIENT = 0.65  # brightness of a face turned away from the sun (1: facing it)

# Grey levels (0-255). The ground, road and markings are far apart so a CNN sees them; the
# base levels of vehicles are for a face towards the sun, the others darker (AMBIENT), and
# even a car's darkest face (120) stands 25 levels above the road.
SKY_GREY = 200
GROUND_GREY = 50
ROAD_GREY = 95
DASHED_GREY = 185
SOLID_GREY = 230
CAR_GREY = 185
OBSTACLE_GREY = 250  # stalled cars and cones
CRASHED_GREY = 25

# Colours (RGB), the vehicles' as the top-down viewer draws them.
SKY_TOP_RGB = (92, 146, 218)
SKY_HORIZON_RGB = (198, 220, 240)
GROUND_RGB = (86, 122, 70)
ROAD_RGB = (84, 86, 92)
MARKING_RGB = (236, 236, 236)  # dashed and solid alike, as painted
CAR_RGB = (66, 128, 222)
STALLED_RGB = (150, 150, 150)
CONE_RGB = (255, 136, 20)
CRASHED_RGB = (222, 48, 48)

# Rows of the palette the kernels take, ``(rows, channels)``; vehicles at KIND_ROW + kind.
SKY_TOP_ROW, SKY_HORIZON_ROW, GROUND_ROW, ROAD_ROW, DASHED_ROW, SOLID_ROW, CRASHED_ROW = range(7)
KIND_ROW = 7
# Line kinds in RoadPaint.lines.
SOLID_LINE, DASHED_LINE = 0, 1
# Elevation (ray z) at which the sky's gradient reaches its top colour.
SKY_GRADIENT = 0.5
# Colour images only: the share of the horizon's colour in what lies at DRAW_DISTANCE or
# beyond, growing linearly from the camera (aerial perspective: distance reads as depth, and
# the ground meets the sky softly). Grey images keep their levels exact.
HAZE = 0.5


def palette(colour: bool) -> np.ndarray:
    """``(rows, 1)`` grey levels or ``(rows, 3)`` RGB, rows as ``*_ROW`` (float64, 0-255)."""
    if colour:
        rows = [SKY_TOP_RGB, SKY_HORIZON_RGB, GROUND_RGB, ROAD_RGB, MARKING_RGB, MARKING_RGB,
                CRASHED_RGB, CAR_RGB, CAR_RGB, STALLED_RGB, CONE_RGB]
    else:
        rows = [(g,) for g in (SKY_GREY, SKY_GREY, GROUND_GREY, ROAD_GREY, DASHED_GREY,
                               SOLID_GREY, CRASHED_GREY, CAR_GREY, CAR_GREY, OBSTACLE_GREY,
                               OBSTACLE_GREY)]
    return np.array(rows, dtype=np.float64)


class CameraTables(NamedTuple):
    """What the camera sees that never changes, made once from the :class:`Camera`."""

    ground_ij: np.ndarray  # (G, 2) int: row, column of each pixel whose ray meets the road area
    hit: np.ndarray  # (G, 2) m: where that ray meets the ground, vehicle frame (forward, left)
    footprint: np.ndarray  # (G, 4) m: the pixel's sides on the ground, (a_x, a_y, b_x, b_y)
    fade: np.ndarray  # (G,): 1 near, falling to 0 at DRAW_DISTANCE
    reach: np.ndarray  # (G,) m: no paint or edge further than this changes the pixel
    background_ij: np.ndarray  # (Q, 2) int: every other pixel (sky and far ground)
    background: np.ndarray  # (Q, C) uint8: its colour
    rays: np.ndarray  # (H, W, 3): each pixel's unit ray, vehicle frame
    column_x: np.ndarray  # (W, 2): min and max of X/Z over each column's rays (camera frame)
    row_y: np.ndarray  # (H, 2): min and max of Y/Z over each row's rays
    rotation: np.ndarray  # (3, 3): vehicle frame to camera frame (Camera.rotation)
    position: np.ndarray  # (3,) m: the optical centre in the vehicle frame
    box_height: np.ndarray  # (kinds,) m
    shade_sun: np.ndarray  # (3,): SUN
    ground_haze: np.ndarray  # (G,): the share of the horizon's colour in each ground pixel
    plain: np.ndarray  # (G, 2, C) uint8: each ground pixel wholly off-road (0) or road (1)
    haze: float  # that share at DRAW_DISTANCE and beyond (0 for grey images)


class RoadPaint(NamedTuple):
    """The road as the renderer paints it, made once from the :class:`Road`.

    Segments carry their direction's cosine and sine and, for arcs, the circle's centre and
    the start's angle on it, so a point is put in road coordinates without trigonometry on
    straights. The road is cut into *pieces* at every lane start, end and taper end; within a
    piece every edge and line moves linearly with ``s``, kept as ``(d at the piece's start,
    d per m of s)``. Most pieces have no taper (*lattice* pieces): every edge lies on a lane
    boundary, and the renderer looks only at the lanes and boundaries under a pixel.
    """

    geometry: tuple  # Road.geometry: (s0, length, curvature, x0, y0, h0), each (n,)
    seg_cos: np.ndarray  # (n,) cos of the start heading
    seg_sin: np.ndarray  # (n,)
    seg_cx: np.ndarray  # (n,) m, arc centre (unused on straights)
    seg_cy: np.ndarray  # (n,) m
    seg_a0: np.ndarray  # (n,) rad, angle of the start point seen from the centre
    piece_start: np.ndarray  # (P,) m
    piece_end: np.ndarray  # (P,) m
    surfaces: np.ndarray  # (P, lanes, 4): asphalt strips (left d0, slope, right d0, slope)
    n_surfaces: np.ndarray  # (P,) int
    lines: np.ndarray  # (P, lanes + 1, 3): (SOLID_LINE or DASHED_LINE, d0, slope)
    n_lines: np.ndarray  # (P,) int
    lattice: np.ndarray  # (P,) bool: no taper in the piece; every edge is a lane boundary
    paved: np.ndarray  # (P, lanes) bool, lattice pieces: the lane exists
    boundary: np.ndarray  # (P, lanes + 1) int, lattice pieces: SOLID_LINE, DASHED_LINE or -1
    bars: np.ndarray  # (m, 3): lines across a lane at an abrupt start or end: (s, d_left, d_right)
    length: float  # m
    lane_width: float  # m
    seam: float  # m: the road's length on a closed road (the walk runs on round it), else 0


class CameraRaster:
    """Renders what ``camera`` (mounted on the ego, entity 0) sees in every world of ``world``.

    Args:
        camera: the camera; its ``image_size`` ``(W, H)`` is the image's.
        world: the worlds to draw; its road and entity arrays are read, never written.
        colour: RGB images ``(H, W, 3)`` instead of grey ``(H, W)``, uint8 either way.
    """

    def __init__(self, camera: Camera, world: World, colour: bool = False) -> None:
        if not isinstance(camera, Camera):
            raise TypeError(f"camera must be a lanesim.camera.Camera, got {type(camera).__name__}")
        if not isinstance(world, World):
            raise TypeError(f"world must be a lanesim.sim.world.World, got {type(world).__name__}")
        self.camera, self.world, self.colour = camera, world, bool(colour)
        w, h = camera.image_size
        self.shape = (h, w, 3) if self.colour else (h, w)
        self._palette = palette(self.colour)
        self.tables = camera_tables(camera, self._palette, HAZE if self.colour else 0.0)
        self.paint = road_paint(world.road)
        self._args = (tuple(self.tables), tuple(self.paint), world.F, world.I, world.crashed,
                      self._palette)

    def draw(self, worlds: np.ndarray, out: np.ndarray) -> None:
        """Draw the current state of the worlds selected by ``worlds`` (``(B,)`` bool) into
        ``out``: ``(B, H, W)`` uint8 grey, or ``(B, H, W, 3)`` uint8 RGB when colour;
        ``(W, H) = camera.image_size``. ``out`` may be a strided view (e.g. ``frames[:, -1]``).
        Other worlds' images are untouched. Runs over the world's thread pool for large
        batches (:meth:`World.over_worlds`)."""
        worlds = np.asarray(worlds)
        if worlds.dtype != np.bool_ or worlds.shape != (self.world.B,):
            raise ValueError(
                f"worlds must be a bool mask of shape ({self.world.B},), got {worlds.dtype} "
                f"{worlds.shape}"
            )
        expect = (self.world.B, *self.shape)
        if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != expect:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            kind = "RGB" if self.colour else "grey"
            raise ValueError(f"out must be a uint8 array {expect} for {kind} images, got {got}")
        if not out.flags.writeable:
            raise ValueError("out must be writeable")
        self.world.over_worlds(draw_worlds, *self._args, self._channels(out), 0, worlds)

    def image(self, b: int = 0) -> np.ndarray:
        """A fresh ``(H, W)`` or ``(H, W, 3)`` uint8 image of world ``b`` (for the viewer and
        tests)."""
        if not isinstance(b, (int, np.integer)) or not 0 <= b < self.world.B:
            raise ValueError(f"b must be a world index from 0 to {self.world.B - 1}, got {b!r}")
        img = np.empty((1, *self.shape), dtype=np.uint8)
        mask = np.zeros(self.world.B, dtype=bool)
        mask[b] = True
        draw_worlds(*self._args, self._channels(img), int(b), mask, int(b), int(b) + 1)
        return img[0]

    def _channels(self, out: np.ndarray) -> np.ndarray:
        """``out`` with a channel axis, ``(B, H, W, C)``: one kernel draws grey and colour."""
        return out if self.colour else out[..., None]


# ---------------------------------------------------------------------- tables made once
def camera_tables(camera: Camera, colours: np.ndarray, haze: float) -> CameraTables:
    """The per-pixel tables of ``camera`` (see :class:`CameraTables`), the background painted
    from the palette ``colours``, with ``haze`` (the horizon colour's share at DRAW_DISTANCE)."""
    w, h = camera.image_size
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = camera.rays(np.stack([u, v], axis=-1))
    pos = camera.position
    hit, dist = _ground_hits(rays, pos)
    ground = dist <= DRAW_DISTANCE
    # The pixel's footprint: its corners' ground points (far ones held at a cap, which makes
    # the footprint long and averages everything under it, as it should near the horizon).
    cv, cu = np.mgrid[0 : h + 1, 0 : w + 1].astype(np.float64) - 0.5
    corner, _ = _ground_hits(camera.rays(np.stack([cu, cv], axis=-1)), pos)
    a = 0.5 * ((corner[:-1, 1:] - corner[:-1, :-1]) + (corner[1:, 1:] - corner[1:, :-1]))
    b = 0.5 * ((corner[1:, :-1] - corner[:-1, :-1]) + (corner[1:, 1:] - corner[:-1, 1:]))
    # Half the footprint's widest extent plus the widest half line it can be given (both
    # bounded by |a| + |b|), and a little for rounding.
    span = np.linalg.norm(a, axis=-1) + np.linalg.norm(b, axis=-1)
    reach = 0.5 * span + 0.5 * np.maximum(LINE_WIDTH, span) + 1e-6
    # Rows alternate direction, so each pixel's road walk starts next to the previous one.
    order = np.arange(h * w).reshape(h, w)
    order[1::2] = order[1::2, ::-1]
    order = order.ravel()
    flat_ground = ground.ravel()[order]
    gi = order[flat_ground]
    bi = order[~flat_ground]
    ij = lambda idx: np.column_stack([idx // w, idx % w]).astype(np.int64)  # noqa: E731
    # Sky: from the horizon's colour up to the top's; far ground: the ground's.
    up = np.clip(rays[..., 2] / SKY_GRADIENT, 0.0, 1.0)[..., None]
    sky = colours[SKY_HORIZON_ROW] * (1 - up) + colours[SKY_TOP_ROW] * up
    far_ground = colours[GROUND_ROW] + haze * (colours[SKY_HORIZON_ROW] - colours[GROUND_ROW])
    back = np.where((rays[..., 2] >= 0)[..., None], sky, far_ground)
    # The two plain colours of every ground pixel, faded and hazed as the kernel mixes them.
    fade = np.clip((DRAW_DISTANCE - dist.ravel()[gi]) / FADE_DISTANCE, 0.0, 1.0)
    hazed = haze * np.minimum(dist.ravel()[gi] / DRAW_DISTANCE, 1.0)
    grass, road, horizon = colours[GROUND_ROW], colours[ROAD_ROW], colours[SKY_HORIZON_ROW]
    cam = rays @ camera.rotation.T  # each ray in the camera frame
    nx, ny = cam[..., 0] / cam[..., 2], cam[..., 1] / cam[..., 2]
    return CameraTables(
        ground_ij=ij(gi),
        hit=hit.reshape(-1, 2)[gi],
        footprint=np.concatenate([a, b], axis=-1).reshape(-1, 4)[gi],
        fade=fade,
        reach=reach.ravel()[gi],
        background_ij=ij(bi),
        background=np.round(back.reshape(-1, colours.shape[1])[bi]).astype(np.uint8),
        rays=np.ascontiguousarray(rays),
        column_x=np.stack([nx.min(axis=0), nx.max(axis=0)], axis=1),
        row_y=np.stack([ny.min(axis=1), ny.max(axis=1)], axis=1),
        rotation=camera.rotation,
        position=pos,
        box_height=BOX_HEIGHTS,
        shade_sun=np.array(SUN),
        ground_haze=hazed,
        plain=np.stack([_mix(grass, road, asphalt, fade, hazed, horizon)
                        for asphalt in (0.0, 1.0)], axis=1),
        haze=float(haze),
    )


def _mix(grass, road, asphalt, fade, haze, horizon):
    """``(G, C)`` uint8: the kernel's colour of unpainted ground, in its order of operations
    and rounding, for ``fade`` and ``haze`` ``(G,)``."""
    v = grass + (road - grass) * asphalt
    v = grass + (v - grass) * fade[:, None]
    return np.floor(v + (horizon - v) * haze[:, None] + 0.5).astype(np.uint8)


def _ground_hits(rays: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where ``rays`` ``(..., 3)`` from ``pos`` meet the ground: ``(..., 2)`` vehicle-frame
    points and their horizontal distance from the camera (m); rays that meet it beyond four
    times DRAW_DISTANCE, or never, are held at that distance along their direction."""
    cap = 4.0 * DRAW_DISTANCE
    flat = np.hypot(rays[..., 0], rays[..., 1])
    down = -rays[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.where(down > 0, pos[2] * flat / down, np.inf)
    dist = np.minimum(dist, cap)
    with np.errstate(invalid="ignore"):
        unit = rays[..., :2] / flat[..., None]
    hit = pos[:2] + dist[..., None] * unit
    return hit, dist


def road_paint(road: Road) -> RoadPaint:
    """The road's segments and pieces as :class:`RoadPaint` holds them."""
    _, _, curv, x0, y0, h0 = road.geometry
    with np.errstate(divide="ignore"):
        r = np.where(curv != 0, 1.0 / np.where(curv != 0, curv, 1.0), 0.0)
    cx, cy = x0 - r * np.sin(h0), y0 + r * np.cos(h0)
    a0 = np.arctan2(y0 - cy, x0 - cx)
    # Pieces: cut at every span end and taper end, so edges are linear in s within each.
    cuts = [0.0, road.length]
    for sp in road.spans:
        cuts += [sp.start, sp.end, sp.start + sp.taper, sp.end - sp.taper]
    cuts = np.unique(np.clip(cuts, 0.0, road.length))
    keep = np.diff(cuts) > 1e-9
    starts, ends = cuts[:-1][keep], cuts[1:][keep]
    P, lanes, w = len(starts), road.lanes, road.lane_width
    surfaces = np.zeros((P, lanes, 4))
    n_surfaces = np.zeros(P, dtype=np.int64)
    lines = np.zeros((P, lanes + 1, 3))
    n_lines = np.zeros(P, dtype=np.int64)
    lattice = np.zeros(P, dtype=bool)
    paved = np.zeros((P, lanes), dtype=bool)
    boundary = np.full((P, lanes + 1), -1, dtype=np.int64)
    for p, (p0, p1) in enumerate(zip(starts, ends, strict=True)):
        exists = road.lane_exists(np.arange(lanes), 0.5 * (p0 + p1))
        edges = [lane_edges(road, lane, np.array([p0, p1])) for lane in range(lanes)]

        strips, marks = [], []
        for lane in np.flatnonzero(exists):
            left, right = edges[lane]
            # Lanes whose edges meet over the whole piece make one strip of asphalt.
            if strips and np.allclose(strips[-1][1], left):
                strips[-1][1] = right
            else:
                strips.append([left, right])
            if lane == 0 or not exists[lane - 1]:
                marks.append((SOLID_LINE, *_linear(left, p0, p1)))
            elif road.lane_direction[lane - 1] != road.lane_direction[lane]:
                marks.append((SOLID_LINE, lane * w, 0.0))  # between the two directions
            else:
                marks.append((DASHED_LINE, lane * w, 0.0))
            if lane == lanes - 1 or not exists[lane + 1]:
                marks.append((SOLID_LINE, *_linear(right, p0, p1)))
        for k, (left, right) in enumerate(strips):
            surfaces[p, k] = (*_linear(left, p0, p1), *_linear(right, p0, p1))
        n_surfaces[p] = len(strips)
        lines[p, : len(marks)] = marks
        n_lines[p] = len(marks)
        on_boundaries = [slope == 0 and abs(d0 / w - round(d0 / w)) < 1e-9
                         for _, d0, slope in marks]
        if all(on_boundaries) and all(sf[1] == sf[3] == 0 for sf in surfaces[p, : len(strips)]):
            lattice[p] = True
            paved[p] = exists
            for kind, d0, _ in marks:
                boundary[p, round(d0 / w)] = kind
    bars = [
        (s_end, lane * w, (lane + 1) * w)
        for lane, sp in enumerate(road.spans)
        for s_end in (sp.start, sp.end)
        if sp.taper == 0 and 0.0 < s_end < road.length
    ]
    return RoadPaint(
        geometry=road.geometry, seg_cos=np.cos(h0), seg_sin=np.sin(h0), seg_cx=cx, seg_cy=cy,
        seg_a0=a0,
        piece_start=starts, piece_end=ends, surfaces=surfaces, n_surfaces=n_surfaces,
        lines=lines, n_lines=n_lines, lattice=lattice, paved=paved, boundary=boundary,
        bars=np.array(bars, dtype=np.float64).reshape(-1, 3), length=float(road.length),
        lane_width=road.lane_width, seam=float(road.seam),
    )


def _linear(d: np.ndarray, p0: float, p1: float) -> tuple[float, float]:
    """``(d at p0, d at p1)`` as ``(d at p0, d per m of s)``."""
    return float(d[0]), float((d[1] - d[0]) / (p1 - p0))


def lane_edges(road: Road, lane: int, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Painted left and right edges ``d`` (m) of ``lane`` at ``s`` ``(n,)``: over a taper the
    lane narrows to nothing from its outer side (the left for lane 0, else the right), the side
    its closure cones start from, as the top-down viewer draws it."""
    sp, w = road.spans[lane], road.lane_width
    frac = np.ones_like(s)
    if sp.taper > 0:
        if sp.start > 0:
            frac = np.minimum(frac, np.clip((s - sp.start) / sp.taper, 0.0, 1.0))
        if road.lane_closes[lane]:
            frac = np.minimum(frac, np.clip((sp.end - s) / sp.taper, 0.0, 1.0))
    left = np.full_like(s, lane * w)
    right = left + w
    if lane == 0 and road.lanes > 1:
        left = right - frac * w
    else:
        right = left + frac * w
    return left, right


# ---------------------------------------------------------------------- compiled drawing
# The entry point allocates the depth buffer, once per call: one per thread drawing, whatever
# the batch (a buffer per world made once would take B × H × W floats, 245 MB for 256 worlds
# at 600 × 400). Allocating needs numba's reference counting, which the drawing itself runs
# without (lanesim.sim.jit: it would cost atomic operations on every array view in the pixel
# loops, measured 3× slower here).
@njit(cache=True, nogil=True, no_cfunc_wrapper=True, error_model="numpy")
def draw_worlds(tables, paint, F, I, crashed, colours, out, out0, worlds, first, stop):
    """Draw worlds ``first .. stop - 1`` selected by ``worlds`` ``(B,)`` into ``out[b - out0]``
    ``(H, W, C)`` uint8, C channels of the palette ``colours`` ``(rows, C)``. Takes
    :class:`CameraTables` and :class:`RoadPaint` as plain tuples (cheaper to pass from Python).
    Releases the GIL: disjoint ranges of worlds may run on several threads at once."""
    depth = np.empty(CameraTables(*tables).rays.shape[:2], dtype=np.float32)
    _draw_range(tables, paint, F, I, crashed, colours, out, out0, worlds, first, stop, depth)


@kernel
def _draw_range(tables, paint, F, I, crashed, colours, out, out0, worlds, first, stop, depth):
    """:func:`draw_worlds` with its scratch ``depth`` ``(H, W)`` float32; the structures are
    named again here, at no cost."""
    tables, paint = CameraTables(*tables), RoadPaint(*paint)
    for b in range(first, stop):
        if not worlds[b]:
            continue
        img = out[b - out0]
        _background(tables, img)
        _ground(tables, paint, F, colours, img, b)
        _boxes(tables, F, I, crashed, colours, depth, img, b)


@kernel_inline
def _put(img, i, j, c, value):
    """Write ``value`` (0-255 float) to channel ``c`` of pixel ``(i, j)``, rounded. Every value
    drawn is a mix of palette colours with weights in [0, 1], so it needs no clipping."""
    img[i, j, c] = np.uint8(value + 0.5)


@kernel_inline
def _background(tables, img):
    """Copy the fixed background (sky and far ground) into its pixels."""
    bij, back = tables.background_ij, tables.background
    for q in range(bij.shape[0]):
        i, j = bij[q, 0], bij[q, 1]
        for c in range(img.shape[2]):
            img[i, j, c] = back[q, c]


@kernel_inline
def _segment_point(paint, k, px, py):
    """World point ``(px, py)`` against segment ``k``: ``(u, d, tx, ty)``, ``u`` (m) along it
    (not clamped), ``d`` (m) right of its reference line and the road's unit tangent there."""
    _, length, curvature, x0, y0, _ = paint.geometry
    c, sn = paint.seg_cos[k], paint.seg_sin[k]
    curv = curvature[k]
    if curv == 0.0:
        dx, dy = px - x0[k], py - y0[k]
        return dx * c + dy * sn, dx * sn - dy * c, c, sn
    dx, dy = px - paint.seg_cx[k], py - paint.seg_cy[k]
    rho = max(math.hypot(dx, dy), 1e-9)  # the centre itself: any direction will do
    ang = math.atan2(dy, dx) - paint.seg_a0[k]
    if curv < 0.0:
        ang = -ang
    # Wrap around the arc's middle, as lanesim.sim.road.project does.
    half = 0.5 * length[k] * abs(curv)
    ang = wrap_angle(ang - half) + half
    ux, uy = dx / rho, dy / rho
    if curv > 0.0:  # counter-clockwise: the tangent is the radius turned left
        return ang / curv, rho - 1.0 / curv, -uy, ux
    return ang / -curv, -1.0 / curv - rho, uy, -ux


@kernel_inline
def _road_frame(paint, px, py, k):
    """``(s, d, tx, ty, segment)`` of world point ``(px, py)``, walking from segment ``k``
    in one direction only, round a closed road's seam too, to the segment whose extent holds
    it (at most once round the road, so it ends)."""
    s0, length = paint.geometry[0], paint.geometry[1]
    n = s0.shape[0]
    closed = paint.seam > 0.0
    step = 0
    for _ in range(n):
        u, d, tx, ty = _segment_point(paint, k, px, py)
        if u < 0.0 and (k > 0 or closed) and step <= 0:
            k = k - 1 if k > 0 else n - 1
            step = -1
        elif u > length[k] and (k < n - 1 or closed) and step >= 0:
            k = k + 1 if k < n - 1 else 0
            step = 1
        else:
            return s0[k] + u, d, tx, ty, k
    u, d, tx, ty = _segment_point(paint, k, px, py)
    return s0[k] + u, d, tx, ty, k


@kernel_inline
def _overlap(lo, hi, a, b):
    """Length of the overlap of ``[lo, hi]`` and ``[a, b]``."""
    return max(min(hi, b) - max(lo, a), 0.0)


@kernel_inline
def _dashes(x):
    """Painted length of the dash pattern over ``[0, x]`` (m)."""
    n = math.floor(x / DASH_PERIOD)
    return n * DASH_LENGTH + min(x - n * DASH_PERIOD, DASH_LENGTH)


@kernel_inline
def _ground(tables, paint, F, colours, img, b):
    """Paint every ground pixel: road, markings and off-road ground, weighed by how much of
    the pixel's footprint they cover."""
    ex, ey, eh = F[X, b, 0], F[Y, b, 0], F[HEADING, b, 0]
    ce, se = math.cos(eh), math.sin(eh)
    # Start both walks where the ego is.
    k = segment_at(paint.geometry, F[S, b, 0])
    p = 0
    n_pieces = paint.piece_start.shape[0]
    w, lanes = paint.lane_width, paint.paved.shape[1]
    C = img.shape[2]
    ground_ij, hit, fade, reach = tables.ground_ij, tables.hit, tables.fade, tables.reach
    haze, plains = tables.ground_haze, tables.plain
    for g in range(ground_ij.shape[0]):
        hx, hy = hit[g, 0], hit[g, 1]
        px = ex + ce * hx - se * hy
        py = ey + se * hx + ce * hy
        s, d, tx, ty, k = _road_frame(paint, px, py, k)
        i, j = ground_ij[g, 0], ground_ij[g, 1]
        plain = 0  # the pixel is wholly ground (0) or road (1), else -1: weigh the paint
        if 0.0 <= s <= paint.length:
            while p > 0 and s < paint.piece_start[p]:
                p -= 1
            while p < n_pieces - 1 and s >= paint.piece_end[p]:
                p += 1
            # Most pixels lie inside one lane or off the road, further than `reach` from any
            # edge, line or piece end: their colour needs no footprint.
            r = reach[g]
            lane = int(math.floor(d / w))
            if (paint.lattice[p] and s - paint.piece_start[p] >= r
                    and paint.piece_end[p] - s >= r):
                if lane * w + r <= d <= lane * w + w - r:
                    if 0 <= lane < lanes and paint.paved[p, lane]:
                        plain = 1
                elif not (d + r < 0.0 or d - r > lanes * w):
                    plain = -1
            else:
                plain = -1
        if plain >= 0:
            for c in range(C):
                img[i, j, c] = plains[g, plain, c]
            continue
        asphalt, solid, dashed = _cover(tables, paint, p, g, s, d, tx, ty, ce, se)
        f, h = fade[g], haze[g]
        for c in range(C):
            grass = colours[GROUND_ROW, c]
            v = grass + (colours[ROAD_ROW, c] - grass) * asphalt
            v = v * (1.0 - solid - dashed) + colours[SOLID_ROW, c] * solid
            v += colours[DASHED_ROW, c] * dashed
            v = grass + (v - grass) * f
            _put(img, i, j, c, v + (colours[SKY_HORIZON_ROW, c] - v) * h)


@kernel_inline
def _cover(tables, paint, p, g, s, d, tx, ty, ce, se):
    """``(asphalt, solid, dashed)``: the fractions of ground pixel ``g``'s footprint, at road
    point ``(s, d)`` of piece ``p`` where the road's unit tangent is ``(tx, ty)``, on asphalt
    and on solid and dashed paint (``ce, se``: the ego's heading's cosine and sine)."""
    # The road's tangent in the vehicle frame, and the pixel's sides (a, b) on the ground
    # measured along and across it.
    vx, vy = ce * tx + se * ty, ce * ty - se * tx
    foot = tables.footprint
    ax, ay, bx, by = foot[g, 0], foot[g, 1], foot[g, 2], foot[g, 3]
    a_along, b_along = ax * vx + ay * vy, bx * vx + by * vy
    a_across, b_across = ax * vy - ay * vx, bx * vy - by * vx
    along = max(abs(a_along) + abs(b_along), 1e-6)
    across = max(abs(a_across) + abs(b_across), 1e-6)
    lo, hi = d - 0.5 * across, d + 0.5 * across
    # Lines are painted at least a pixel thick in the image (the distance across them of one
    # pixel's step perpendicular to them), so that they stay visible at observation
    # resolution, as the top-down view's do, instead of fading out.
    half = 0.5 * max(LINE_WIDTH, math.sqrt(a_across * a_across + b_across * b_across))
    if paint.lattice[p]:
        asphalt, solid, dashed = _lattice_cover(paint, p, s, lo, hi, half, along)
    else:
        asphalt = solid = dashed = 0.0
        u = s - paint.piece_start[p]
        for q in range(paint.n_surfaces[p]):
            sf = paint.surfaces[p, q]
            asphalt += _overlap(lo, hi, sf[0] + sf[1] * u, sf[2] + sf[3] * u)
        for q in range(paint.n_lines[p]):
            ln = paint.lines[p, q]
            at = ln[1] + ln[2] * u
            cover = _overlap(lo, hi, at - half, at + half)
            if cover > 0.0:
                if ln[0] == DASHED_LINE:
                    dashed += cover * _dash_cover(s, along)
                else:
                    solid += cover
    if paint.bars.shape[0]:
        half_bar = 0.5 * max(LINE_WIDTH, math.sqrt(a_along * a_along + b_along * b_along))
        for q in range(paint.bars.shape[0]):
            bar = paint.bars[q]
            cover = _overlap(s - 0.5 * along, s + 0.5 * along, bar[0] - half_bar,
                             bar[0] + half_bar)
            if cover > 0.0:
                solid += cover * _overlap(lo, hi, bar[1], bar[2]) / along
    solid /= across
    dashed /= across
    marks = solid + dashed
    if marks > 1.0:  # lines wider than a far pixel overlap
        solid, dashed = solid / marks, dashed / marks
    return min(asphalt / across, 1.0), solid, dashed


@kernel_inline
def _lattice_cover(paint, p, s, lo, hi, half, along):
    """``(asphalt, solid, dashed)``: the lengths of ``[lo, hi]`` (m across the road) on
    asphalt and on solid and dashed lines (``half`` their half width) in lattice piece ``p``."""
    w, lanes = paint.lane_width, paint.paved.shape[1]
    asphalt = solid = dashed = 0.0
    for lane in range(max(int(math.floor(lo / w)), 0),
                      min(int(math.floor(hi / w)), lanes - 1) + 1):
        if paint.paved[p, lane]:
            asphalt += _overlap(lo, hi, lane * w, lane * w + w)
    for q in range(max(int(math.ceil((lo - half) / w)), 0),
                   min(int(math.floor((hi + half) / w)), lanes) + 1):
        kind = paint.boundary[p, q]
        if kind >= 0:
            cover = _overlap(lo, hi, q * w - half, q * w + half)
            if kind == DASHED_LINE:
                dashed += cover * _dash_cover(s, along)
            else:
                solid += cover
    return asphalt, solid, dashed


@kernel_inline
def _dash_cover(s, along):
    """The painted fraction of the dash pattern over ``[s - along / 2, s + along / 2]``."""
    return (_dashes(s + 0.5 * along) - _dashes(s - 0.5 * along)) / along


# Faces of a box, as the slab test names the one a ray enters by.
FRONT, BACK, LEFT, RIGHT, TOP, BOTTOM = range(6)
NEAR = 1e-3  # m: the camera's near plane, only for bounding a box's image


@kernel_inline
def _corner(tables, k, vx, vy, cr, sr, hl, hw, hb):
    """Corner ``k`` (bits: front, left, top) of a box centred at ``(vx, vy)`` in the vehicle
    frame, turned by ``(cos, sin)`` ``(cr, sr)``, in the camera frame."""
    lx = hl if k & 1 else -hl
    ly = hw if k & 2 else -hw
    R, pos = tables.rotation, tables.position
    px = vx + cr * lx - sr * ly - pos[0]
    py = vy + sr * lx + cr * ly - pos[1]
    pz = (hb if k & 4 else 0.0) - pos[2]
    return (R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz,
            R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz,
            R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz)


@kernel_inline
def _box_bounds(tables, vx, vy, cr, sr, hl, hw, hb):
    """``(x0, x1, y0, y1)``: the extent of a box's image on the undistorted image plane
    (``X/Z``, ``Y/Z``), after clipping the box at the near plane; ``x0 > x1`` if it lies wholly
    behind. The clipped box's vertices are its corners in front and the points where its edges
    cross the near plane, so their extent is exact."""
    cs = (_corner(tables, 0, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 1, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 2, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 3, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 4, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 5, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 6, vx, vy, cr, sr, hl, hw, hb),
          _corner(tables, 7, vx, vy, cr, sr, hl, hw, hb))
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    for k in range(8):
        a = cs[k]
        if a[2] > NEAR:
            x0, x1 = min(x0, a[0] / a[2]), max(x1, a[0] / a[2])
            y0, y1 = min(y0, a[1] / a[2]), max(y1, a[1] / a[2])
        for m in (1, 2, 4):
            if k & m:
                continue
            e = cs[k | m]
            if (a[2] > NEAR) != (e[2] > NEAR):
                t = (NEAR - a[2]) / (e[2] - a[2])
                x = (a[0] + t * (e[0] - a[0])) / NEAR
                y = (a[1] + t * (e[1] - a[1])) / NEAR
                x0, x1 = min(x0, x), max(x1, x)
                y0, y1 = min(y0, y), max(y1, y)
    return x0, x1, y0, y1


@kernel_inline
def _slab(o, d, lo, hi, lo_face, hi_face):
    """A ray ``o + t d`` (one axis) against the slab ``[lo, hi]``: ``(t_in, t_out, face it
    enters by)``; an empty interval (``t_in > t_out``) when parallel and outside."""
    if d > 0.0:
        return (lo - o) / d, (hi - o) / d, lo_face
    if d < 0.0:
        return (hi - o) / d, (lo - o) / d, hi_face
    if lo <= o <= hi:
        return -np.inf, np.inf, -1
    return np.inf, -np.inf, -1


@kernel_inline
def _shade(nx, ny, nz, sun):
    """Brightness of a face with outward unit normal ``(nx, ny, nz)`` (world frame)."""
    return AMBIENT + (1.0 - AMBIENT) * max(nx * sun[0] + ny * sun[1] + nz * sun[2], 0.0)


@kernel_inline
def _boxes(tables, F, I, crashed, colours, depth, img, b):
    """Cast every pixel's ray at every vehicle box whose image it may fall in; the nearest hit
    wins (``depth``, m along the ray)."""
    H, W = depth.shape
    for i in range(H):
        for j in range(W):
            depth[i, j] = np.inf
    ex, ey, eh = F[X, b, 0], F[Y, b, 0], F[HEADING, b, 0]
    ce, se = math.cos(eh), math.sin(eh)
    pos, rays, sun, haze = tables.position, tables.rays, tables.shade_sun, tables.haze
    cols, rows = tables.column_x, tables.row_y
    for e in range(1, F.shape[2]):  # the ego (0) holds the camera and is never drawn
        kind = I[KIND, b, e]
        dxw, dyw = F[X, b, e] - ex, F[Y, b, e] - ey
        vx, vy = ce * dxw + se * dyw, ce * dyw - se * dxw  # vehicle frame
        if math.hypot(vx - pos[0], vy - pos[1]) > DRAW_DISTANCE:
            continue
        he = F[HEADING, b, e]
        cr, sr = math.cos(he - eh), math.sin(he - eh)
        hl, hw, hb = 0.5 * F[LENGTH, b, e], 0.5 * F[WIDTH, b, e], tables.box_height[kind]
        x0, x1, y0, y1 = _box_bounds(tables, vx, vy, cr, sr, hl, hw, hb)
        if x0 > x1:
            continue
        # The pixels whose rays may meet the box: rows and columns whose rays' extent on the
        # undistorted image plane meets the box's (exact without distortion).
        j0, j1 = W, -1
        for j in range(W):
            if cols[j, 1] >= x0 and cols[j, 0] <= x1:
                j0, j1 = min(j0, j), j
        i0, i1 = H, -1
        for i in range(H):
            if rows[i, 1] >= y0 and rows[i, 0] <= y1:
                i0, i1 = min(i0, i), i
        # The camera in the box's frame, and the faces' brightness under the sun.
        ox, oy = pos[0] - vx, pos[1] - vy
        olx, oly, olz = cr * ox + sr * oy, cr * oy - sr * ox, pos[2]
        fc, fs = math.cos(he), math.sin(he)
        shades = (_shade(fc, fs, 0.0, sun), _shade(-fc, -fs, 0.0, sun),
                  _shade(-fs, fc, 0.0, sun), _shade(fs, -fc, 0.0, sun),
                  _shade(0.0, 0.0, 1.0, sun), _shade(0.0, 0.0, -1.0, sun))
        row = CRASHED_ROW if crashed[b, e] else KIND_ROW + kind
        hits = 0
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                rx, ry, rz = rays[i, j, 0], rays[i, j, 1], rays[i, j, 2]
                dlx, dly = cr * rx + sr * ry, cr * ry - sr * rx
                t_in, t_out, face = _slab(olx, dlx, -hl, hl, BACK, FRONT)
                ty_in, ty_out, fy = _slab(oly, dly, -hw, hw, RIGHT, LEFT)
                if ty_in > t_in:
                    t_in, face = ty_in, fy
                t_out = min(t_out, ty_out)
                tz_in, tz_out, fz = _slab(olz, rz, 0.0, hb, BOTTOM, TOP)
                if tz_in > t_in:
                    t_in, face = tz_in, fz
                t_out = min(t_out, tz_out)
                # Only hits in front of the camera, from outside the box.
                if t_in > t_out or t_in <= 0.0 or t_in >= depth[i, j]:
                    continue
                hits += 1
                _paint_box(img, depth, i, j, t_in, colours, row, shades[face], haze)
        if hits == 0:
            # A box whose image falls between pixel centres (a far cone) still covers the
            # pixel nearest its middle, as the top-down view's cells do, so it never blinks.
            xm, ym, zm = _corner_mid(tables, vx, vy, hb)
            if zm <= NEAR:
                continue
            i = _nearest(rows, ym / zm)
            j = _nearest(cols, xm / zm)
            if i < 0 or j < 0:
                continue
            t_mid = math.sqrt(xm * xm + ym * ym + zm * zm)
            if t_mid < depth[i, j]:
                rx, ry = rays[i, j, 0], rays[i, j, 1]
                face = BACK if cr * rx + sr * ry > 0.0 else FRONT
                _paint_box(img, depth, i, j, t_mid, colours, row, shades[face], haze)


@kernel_inline
def _paint_box(img, depth, i, j, t, colours, row, light, haze_far):
    """Paint pixel ``(i, j)`` with palette ``row`` at brightness ``light``, ``t`` (m) away."""
    depth[i, j] = t
    h = haze_far * min(t / DRAW_DISTANCE, 1.0)
    for c in range(img.shape[2]):
        v = colours[row, c] * light
        _put(img, i, j, c, v + (colours[SKY_HORIZON_ROW, c] - v) * h)


@kernel_inline
def _corner_mid(tables, vx, vy, hb):
    """The middle of a box standing at ``(vx, vy)`` (vehicle frame), ``hb`` tall, in the
    camera frame."""
    R, pos = tables.rotation, tables.position
    px, py, pz = vx - pos[0], vy - pos[1], 0.5 * hb - pos[2]
    return (R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz,
            R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz,
            R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz)


@kernel_inline
def _nearest(ranges, x):
    """The index of the row (or column) of pixels whose rays' range on the undistorted image
    plane, ``ranges`` ``(n, 2)``, is nearest to ``x``; -1 when ``x`` lies outside them all by
    more than half a pixel."""
    best, gap = -1, np.inf
    for k in range(ranges.shape[0]):
        g = max(ranges[k, 0] - x, x - ranges[k, 1], 0.0)
        if g < gap:
            best, gap = k, g
    n = ranges.shape[0]
    pixel = abs(ranges[n - 1, 1] - ranges[0, 0]) / max(n - 1, 1)
    return best if gap <= 0.5 * pixel else -1
