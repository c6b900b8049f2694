"""Observation builders: kinematics vectors, an occupancy grid, top-down pixels, and the
driver's-seat camera's frames and their bird's-eye view.

Every builder reads a :class:`~lanesim.sim.world.World` and returns a batch ``(B, ...)``. Grids
and images are drawn in the road frame around the ego: columns run along the road (forward to
the right), rows across it (lane 0 at the top), so a curve appears straightened.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from numba import njit

from lanesim.camera.birdseye import BirdseyeWarp, gather
from lanesim.camera.raster import CameraRaster
from lanesim.envs.options import Options
from lanesim.sim import state as layout
from lanesim.sim.jit import kernel_inline, kernel_nogil
from lanesim.sim.lane_index import lane_exists
from lanesim.sim.road import DASH_LENGTH, DASH_PERIOD, along_offset, wrap_angle
from lanesim.sim.world import STALLED, World

KINEMATICS_FEATURES = ("presence", "x", "y", "vx", "vy", "cos_h", "sin_h", "lane_offset")


class KinematicsObservation:
    """``(1 + observed_vehicles, 8)`` float32 rows in [-1, 1]; see the environment docstring."""

    def __init__(self, options: Options, world: World) -> None:
        self.n = options.observed_vehicles
        self.range = options.perception_distance
        self.world = world
        self.space = spaces.Box(-1.0, 1.0, (1 + self.n, len(KINEMATICS_FEATURES)), np.float32)

    def reset(self, worlds: np.ndarray) -> np.ndarray:
        return self()

    def __call__(self) -> np.ndarray:
        w = self.world
        out = np.zeros((w.B, 1 + self.n, len(KINEMATICS_FEATURES)), dtype=np.float32)
        _kinematics(w.F, w.road.lane_width, w.road.width, self.range,
                    w.spec.ego.max_speed, w.road.seam, out)
        return out


@njit(cache=True)
def _kinematics(F, lane_width, road_width, perception, vmax, seam, out):
    """Fill ``out`` ``(B, 1 + n, 8)`` with the kinematics rows of every world; on a closed road
    (``seam``, its length in m, else 0) others lie ahead or behind the shorter way round."""
    n = out.shape[1] - 1
    N = F.shape[2]
    for b in range(F.shape[1]):
        # Velocity along / across the road and heading relative to it, for every entity.
        rel = np.empty(N)
        vs = np.empty(N)
        vd = np.empty(N)
        for e in range(N):
            r = wrap_angle(F[layout.HEADING, b, e] - F[layout.ROAD_HEADING, b, e])
            rel[e] = r
            vs[e] = F[layout.SPEED, b, e] * math.cos(r)
            vd[e] = -F[layout.SPEED, b, e] * math.sin(r)
        s0, d0 = F[layout.S, b, 0], F[layout.D, b, 0]
        row = out[b, 0]
        row[0] = 1.0
        row[1] = 0.0
        row[2] = 2.0 * d0 / road_width - 1.0
        row[3] = vs[0] / vmax
        row[4] = vd[0] / vmax
        row[5] = math.cos(rel[0])
        row[6] = math.sin(rel[0])
        row[7] = (d0 - (math.floor(d0 / lane_width) + 0.5) * lane_width) / (0.5 * lane_width)
        # The n nearest seen entities, nearest first; ties keep entity order.
        best = np.full(n, -1)
        best_dist = np.full(n, np.inf)
        for e in range(1, N):
            ds, dd = along_offset(F[layout.S, b, e] - s0, seam), F[layout.D, b, e] - d0
            if abs(ds) > perception or abs(dd) > road_width:
                continue
            dist = math.hypot(ds, dd)
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
            row = out[b, 1 + k]
            d = F[layout.D, b, e]
            row[0] = 1.0
            row[1] = along_offset(F[layout.S, b, e] - s0, seam) / perception
            row[2] = (d - d0) / road_width
            row[3] = (vs[e] - vs[0]) / vmax
            row[4] = (vd[e] - vd[0]) / vmax
            row[5] = math.cos(rel[e])
            row[6] = math.sin(rel[e])
            row[7] = (d - (math.floor(d / lane_width) + 0.5) * lane_width) / (0.5 * lane_width)
        for k in range(1 + n):
            for f in range(out.shape[2]):
                out[b, k, f] = min(max(out[b, k, f], -1.0), 1.0)


class RoadRaster:
    """Rasterizes the road and entity footprints on an ego-centred road-frame grid.

    Args:
        shape: ``(H, W)`` cells.
        metres: ``(across, along)`` size of one cell (m).
        behind: cells behind the ego's column (the ego sits at column ``behind``).
        road_rows: rows fixed to the road (row 0 at its left edge) instead of centred on the ego.
    """

    def __init__(
        self,
        world: World,
        shape: tuple[int, int],
        metres: tuple[float, float],
        behind: int,
        road_rows: bool = False,
    ):
        self.world = world
        self.H, self.W = shape
        self.my, self.mx = metres
        self.behind = behind
        self.road_rows = road_rows
        self.col_offset = (np.arange(self.W) - behind + 0.5) * self.mx  # (W,) m along the road
        # Patch large enough for any entity at any heading (half diagonal ≤ 3 m).
        reach = 3.2
        self.pw = int(np.ceil(2 * reach / self.mx)) + 2
        self.ph = int(np.ceil(2 * reach / self.my)) + 2

    # Every method draws the worlds ``idx`` (an index array or slice; default all) and returns
    # arrays whose first axis follows ``idx``.
    def top(self, idx=slice(None)) -> np.ndarray:
        """``(W, 1)``: the lateral road coordinate ``d`` (m) of the top edge of row 0."""
        ego_d = self.world.d[idx, :1]
        if self.road_rows:
            return np.zeros_like(ego_d)
        return ego_d - 0.5 * self.H * self.my

    def cells(self, idx=slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Road coordinates of cell centres: ``s`` ``(W, cols)`` (beyond a closed road's seam
        too: :meth:`~lanesim.sim.road.Road.drivable` takes it round) and ``d`` ``(W, rows)``."""
        w = self.world
        return (w.s[idx, :1] + self.col_offset,
                self.top(idx) + (np.arange(self.H) + 0.5) * self.my)

    def drivable(self, idx=slice(None)) -> np.ndarray:
        """``(W, H, W)`` bool: the cell centre lies on an existing lane."""
        s, d = self.cells(idx)
        return self.world.road.drivable(s[:, None, :], d[:, :, None])

    def footprints(self, entities: slice | np.ndarray, idx=slice(None)):
        """Cells covered by the entities' rectangles: ``(b, entity, row, col)`` index arrays.

        Entity indices are positions within ``entities``. Each rectangle is drawn at its heading
        relative to the road; only cell centres inside it count.
        """
        w = self.world
        s = w.s[idx, entities]
        d = w.d[idx, entities]
        rel = w.heading[idx, entities] - w.F[layout.ROAD_HEADING][idx, entities]
        # Anything smaller than a cell still covers one, so cones never vanish between centres.
        ln = np.maximum(w.length[idx, entities], self.mx)
        wd = np.maximum(w.width[idx, entities], self.my)
        # Fractional column of the centre (round a closed road's seam the shorter way).
        col_c = w.road.offset(s, w.s[idx, :1]) / self.mx + self.behind
        row_c = (d - self.top(idx)) / self.my
        c0 = np.floor(col_c).astype(np.int64) - self.pw // 2
        r0 = np.floor(row_c).astype(np.int64) - self.ph // 2
        cols = c0[..., None, None] + np.arange(self.pw)[None, None, None, :]  # (B, E, 1, pw)
        rows = r0[..., None, None] + np.arange(self.ph)[None, None, :, None]  # (B, E, ph, 1)
        # Cell centre relative to the rectangle's centre, in metres (along, right).
        ps = (cols + 0.5 - col_c[..., None, None]) * self.mx
        pd = (rows + 0.5 - row_c[..., None, None]) * self.my
        cr, sr = np.cos(rel)[..., None, None], np.sin(rel)[..., None, None]
        # Forward is (cos, -sin) in (along, right) since a positive heading points left.
        along = ps * cr - pd * sr
        across = ps * sr + pd * cr
        inside = (np.abs(along) <= 0.5 * ln[..., None, None]) & (
            np.abs(across) <= 0.5 * wd[..., None, None]
        )
        inside &= (cols >= 0) & (cols < self.W) & (rows >= 0) & (rows < self.H)
        b, e, i, j = np.nonzero(inside)
        return b, e, rows[b, e, i, 0], cols[b, e, 0, j]


# Grey levels of the pixel observation.
OFFROAD, ROAD, DASHED, SOLID, TRAFFIC, OBSTACLE, EGO = 0, 60, 130, 190, 160, 230, 255


class FrameStack:
    """Stacks of ``frame_stack`` uint8 image frames per world, newest last: what the image
    observations share. A subclass draws the current frame of the selected worlds into the
    newest slot (:meth:`_render`); the stacks are handed out channel-first, ``(B, *space.shape)``,
    a colour stack as ``(3 × frame_stack, H, W)``, the frames in order and RGB within each.

    Args:
        frame: the shape of one frame in the stack: ``(H, W)`` grey or ``(3, H, W)`` colour.
    """

    def __init__(self, world: World, frame_stack: int, frame: tuple[int, ...]) -> None:
        self.world = world
        self.k = frame_stack
        self.frames = np.zeros((world.B, frame_stack, *frame), dtype=np.uint8)
        channels = frame[0] if len(frame) == 3 else 1
        self.space = spaces.Box(0, 255, (channels * frame_stack, *frame[-2:]), np.uint8)
        self._every = np.ones(world.B, dtype=bool)

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        """Draw the current frame of ``worlds`` (bool ``(B,)``) into ``frames[:, -1]``, first
        moving their stacks one frame back if ``shift`` (:func:`shift_stack`)."""
        raise NotImplementedError

    def _stacks(self) -> np.ndarray:
        return self.frames.reshape(self.world.B, *self.space.shape).copy()

    def draw(self, idx=slice(None)) -> np.ndarray:
        """One frame ``(W, *frame)`` of the current state of worlds ``idx`` (default all),
        without touching the stacks."""
        order = np.arange(self.world.B)[idx]
        worlds = np.zeros(self.world.B, dtype=bool)
        worlds[order] = True
        keep = self.frames[worlds, -1].copy()
        self._render(worlds, False)
        img = self.frames[worlds, -1].copy()
        self.frames[worlds, -1] = keep
        return img[np.searchsorted(np.flatnonzero(worlds), order)]  # in the order of idx

    def reset(self, worlds: np.ndarray) -> np.ndarray:
        """Fill the stacks of ``worlds`` (bool ``(B,)``) with their current frame; returns the
        observation of every world without advancing the others' stacks."""
        worlds = np.asarray(worlds, dtype=bool)
        self._render(worlds, False)
        self.frames[worlds, :-1] = self.frames[worlds, -1:]
        return self._stacks()

    def __call__(self) -> np.ndarray:
        self._render(self._every, True)
        return self._stacks()


@kernel_inline
def shift_stack(stack):
    """Move one world's stack ``(frame_stack, ...)`` (C-contiguous) one frame back, making the
    newest slot free; element by element, as an array assignment compiles numba's shape-error
    path."""
    k = stack.shape[0]
    flat = stack.reshape((k, stack.size // k))
    for i in range(k - 1):
        for j in range(flat.shape[1]):
            flat[i, j] = flat[i + 1, j]


@kernel_nogil
def _shift_stacks(frames, worlds, first, stop):
    """:func:`shift_stack` for worlds ``first .. stop - 1`` selected by ``worlds``."""
    for b in range(first, stop):
        if worlds[b]:
            shift_stack(frames[b])


class PixelObservation(FrameStack):
    """``(frame_stack, H, W)`` uint8 top-down frames, newest last; see the env docstring.

    Drawn by :func:`_draw_frames`, compiled, one world after another (over the world's threads
    for large batches); it paints exactly what :class:`RoadRaster` describes.
    """

    # Metres per pixel along and across the road, and how much of the view lies behind the ego.
    ALONG, ACROSS, BEHIND = 1.0, 0.5, 0.25

    def __init__(self, options: Options, world: World) -> None:
        h, w = options.image_shape
        super().__init__(world, options.frame_stack, (h, w))
        along = self.ALONG * 84 / w
        across = self.ACROSS * 84 / h
        self.raster = RoadRaster(world, (h, w), (across, along), int(round(self.BEHIND * w)))
        r, road = self.raster, world.road
        self._args = (
            world.F,
            world.I,
            road.lane_start,
            road.lane_end,
            road.lane_direction,
            road.lane_width,
            road.length,
            road.seam,
            r.my,
            r.mx,
            r.behind,
            r.pw,
            r.ph,
            # Cells of the speed gauge per m/s (0: no gauge).
            w / world.spec.ego.max_speed if options.speed_bar else 0.0,
            self.frames,
        )

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        self.world.over_worlds(_draw_frames, *self._args, worlds, shift)


@njit(cache=True, nogil=True)
def _draw_frames(
    F,
    I,
    lane_start,
    lane_end,
    lane_direction,
    lane_width,
    road_length,
    seam,
    my,
    mx,
    behind,
    pw,
    ph,
    gauge,
    frames,
    worlds,
    shift,
    first,
    stop,
):
    """Draw the current frame of worlds ``first .. stop - 1`` selected by ``worlds`` into
    ``frames[b, -1]`` (after moving the stack one frame back if ``shift``).

    Cell ``(i, j)`` is the road point ``s = ego s + (j - behind + 0.5) mx``, ``d = top + (i +
    0.5) my`` with the ego's row in the middle. Road where the point is on an existing lane;
    lane boundaries on the cells their line crosses, solid with a lane on one side only or
    between lanes of opposite directions (``lane_direction``, a two-way road's centre line),
    dashed (3 m of every 9) between two lanes of one direction; then every entity's rectangle
    at its heading relative to the road (cells whose centre it covers), traffic and obstacles
    first and the ego last.
    With ``gauge`` > 0 (cells per m/s), the top row is the ego's speed gauge instead (the top:
    a conv trunk of 8-pixel windows at stride 4 never sees the bottom 2 rows of 42). On a
    closed road (``seam``, its length in m, else 0) the view runs on round the seam.
    """
    n_frames, H, W = frames.shape[1], frames.shape[2], frames.shape[3]
    lanes = lane_start.shape[0]
    N = F.shape[2]
    for b in range(first, stop):
        if not worlds[b]:
            continue
        if shift:
            shift_stack(frames[b])
        img = frames[b, n_frames - 1]
        ego_s = F[layout.S, b, 0]
        top = F[layout.D, b, 0] - 0.5 * H * my
        for j in range(W):
            s = _view_s(ego_s + (j - behind + 0.5) * mx, seam)
            on_road = 0.0 <= s <= road_length
            for i in range(H):
                d = top + (i + 0.5) * my
                lane = int(math.floor(d / lane_width))
                drivable = on_road and lane_exists(lane_start, lane_end, lane, s)
                img[i, j] = ROAD if drivable else OFFROAD
        for dashed_pass in (True, False):
            for k in range(lanes + 1):
                row = int(math.floor((k * lane_width - top) / my))
                if row < 0 or row >= H:
                    continue
                for j in range(W):
                    s = _view_s(ego_s + (j - behind + 0.5) * mx, seam)
                    left = lane_exists(lane_start, lane_end, k - 1, s)
                    right = lane_exists(lane_start, lane_end, k, s)
                    centre = left and right and lane_direction[k - 1] != lane_direction[k]
                    if dashed_pass and left and right and s % DASH_PERIOD < DASH_LENGTH:
                        img[row, j] = DASHED
                    elif not dashed_pass and (left != right or centre):
                        img[row, j] = SOLID
        for n in range(1, N + 1):
            e = n % N  # traffic and obstacles, then the ego
            grey = EGO if e == 0 else (OBSTACLE if I[layout.KIND, b, e] >= STALLED else TRAFFIC)
            rel = F[layout.HEADING, b, e] - F[layout.ROAD_HEADING, b, e]
            cr, sr = math.cos(rel), math.sin(rel)
            # Anything smaller than a cell still covers one, so cones never vanish.
            half_l = 0.5 * max(F[layout.LENGTH, b, e], mx)
            half_w = 0.5 * max(F[layout.WIDTH, b, e], my)
            col_c = along_offset(F[layout.S, b, e] - ego_s, seam) / mx + behind
            row_c = (F[layout.D, b, e] - top) / my
            if col_c < -pw or col_c > W + pw or row_c < -ph or row_c > H + ph:
                continue
            c0 = int(math.floor(col_c)) - pw // 2
            r0 = int(math.floor(row_c)) - ph // 2
            for ii in range(ph):
                row = r0 + ii
                if row < 0 or row >= H:
                    continue
                pd = (row + 0.5 - row_c) * my
                for jj in range(pw):
                    col = c0 + jj
                    if col < 0 or col >= W:
                        continue
                    ps = (col + 0.5 - col_c) * mx
                    # Forward is (cos, -sin) in (along, right): a positive heading points left.
                    if abs(ps * cr - pd * sr) <= half_l and abs(ps * sr + pd * cr) <= half_w:
                        img[row, col] = grey
        if gauge > 0.0:
            lit = round(F[layout.SPEED, b, 0] * gauge)
            for j in range(W):
                img[0, j] = EGO if j < lit else OFFROAD


@kernel_inline
def _view_s(s, seam):
    """A view's ``s`` (m) taken round a closed road (``seam`` its length; 0: open, as is)."""
    if seam > 0.0:
        return s % seam
    return s


class CameraObservation(FrameStack):
    """``(frame_stack, H, W)`` uint8 grey, or ``(3 × frame_stack, H, W)`` RGB with
    ``camera_color``, frames of the driver's-seat camera (``Options.camera``), newest last;
    drawn by :class:`~lanesim.camera.raster.CameraRaster` straight into the newest slot."""

    def __init__(self, options: Options, world: World) -> None:
        h, w = options.image_shape
        colour = options.camera_color
        super().__init__(world, options.frame_stack, (3, h, w) if colour else (h, w))
        self.raster = CameraRaster(options.camera, world, colour)
        # The raster writes channel-last images: a colour frame's view as (B, H, W, 3).
        newest = self.frames[:, -1]
        self._newest = newest.transpose(0, 2, 3, 1) if colour else newest

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        if shift:
            self.world.over_worlds(_shift_stacks, self.frames, worlds)
        self.raster.draw(worlds, self._newest)


class BirdseyeObservation(FrameStack):
    """``(frame_stack, rows, columns)`` uint8 grey, or ``(3 × frame_stack, rows, columns)`` RGB
    with ``camera_color``, bird's-eye frames, newest last: the camera's image warped onto the
    ``birdseye_extent`` grid by :class:`~lanesim.camera.birdseye.BirdseyeWarp` (row 0 the
    farthest, column 0 the leftmost)."""

    def __init__(self, options: Options, world: World) -> None:
        camera = options.camera
        colour = options.camera_color
        self.warp = BirdseyeWarp(camera, options.birdseye_extent, options.birdseye_resolution)
        rows, cols = self.warp.shape
        super().__init__(world, options.frame_stack, (3, rows, cols) if colour else (rows, cols))
        self.raster = self._camera_raster(camera, world, colour)
        w, h = camera.image_size
        # The camera's current images, and both sides of the gather as (B, H, W, C) and
        # (B, C, rows, columns) views.
        self.images = np.zeros((world.B, h, w, 3) if colour else (world.B, h, w), np.uint8)
        self._source = self.images if colour else self.images[..., None]
        newest = self.frames[:, -1]
        self._newest = newest if colour else newest[:, None]

    @staticmethod
    def _camera_raster(camera, world, colour: bool):
        """The renderer of the camera's images (a road network's overrides it)."""
        return CameraRaster(camera, world, colour)

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        self.raster.draw(worlds, self.images)
        if shift:
            self.world.over_worlds(_shift_stacks, self.frames, worlds)
        self.world.over_worlds(gather, *self.warp.maps, self._source, self._newest, worlds)


class OccupancyObservation:
    """``(4, H, W)`` float32 grid: occupancy, relative speed (velocity along the road, so an
    oncoming car's is its negative speed, minus the ego's), drivable area, ego footprint.

    Columns are 4 m along the road (32 columns: 8 behind the ego, 24 ahead); rows are a quarter
    lane across, covering the whole road (``4 × lanes`` rows, lane 0 at the top).
    """

    CHANNELS = ("occupancy", "relative_speed", "drivable", "ego")

    def __init__(self, options: Options, world: World) -> None:
        self.world = world
        road = world.road
        H = 4 * road.lanes
        self.raster = RoadRaster(world, (H, 32), (road.lane_width / 4, 4.0), 8, road_rows=True)
        self.space = spaces.Box(-1.0, 1.0, (4, H, 32), np.float32)

    def reset(self, worlds: np.ndarray) -> np.ndarray:
        return self()

    def __call__(self) -> np.ndarray:
        w, r = self.world, self.raster
        out = np.zeros((w.B, 4, r.H, r.W), dtype=np.float32)
        out[:, 2] = r.drivable()
        b, e, rows, cols = r.footprints(slice(1, w.N))
        out[b, 0, rows, cols] = 1.0
        vmax = w.spec.ego.max_speed
        # Velocity along the road: oncoming cars travel their lane's way, toward -s.
        way = np.where(w.kind == layout.EGO, 1, w.road.lane_direction[w.lane])
        velocity = w.speed * way
        out[b, 1, rows, cols] = np.clip((velocity[b, e + 1] - velocity[b, 0]) / vmax, -1, 1)
        b, _, rows, cols = r.footprints(slice(0, 1))
        out[b, 3, rows, cols] = 1.0
        return out


def make_observation(options: Options, world: World):
    """The observation builder named by ``options.observation``."""
    return {
        "kinematics": KinematicsObservation,
        "occupancy": OccupancyObservation,
        "pixels": PixelObservation,
        "camera": CameraObservation,
        "birdseye": BirdseyeObservation,
    }[options.observation](options, world)
