"""The batched simulator: ``B`` independent worlds of ``N`` entities, stepped together.

Entity ``0`` of every world is the ego car (kinematic bicycle model, driven by steering and
acceleration). Entities ``1 .. V`` are traffic (IDM car following and MOBIL lane changes, moving
in road coordinates so they follow curved lanes exactly). The last ``O`` are static obstacles
(cones, stalled cars) placed where the scenario says. Every field is a ``(B, N)`` array, a
named view into the packed state of :mod:`lanesim.sim.state`; a step is one compiled call
over all worlds (:func:`lanesim.sim.step.run_worlds`), with no Python loop over worlds or
vehicles.

This module knows nothing of Gymnasium or pygame.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit

from lanesim.sim import state as layout
from lanesim.sim.jit import compiled_for
from lanesim.sim.models import SPAWN_MARGIN, EgoModel, TrafficModel, as_record
from lanesim.sim.rng import WorldRandom
from lanesim.sim.road import Road, along_offset, wrap_angles
from lanesim.sim.state import CAR, CONE, EGO, STALLED, LaneIndex, Timing, WorldState, plain
from lanesim.sim.step import ego_leaders, refresh_worlds, run_worlds
from lanesim.sim.traffic import settle_speeds

__all__ = [
    "CAR",
    "CONE",
    "EGO",
    "STALLED",
    "EgoModel",
    "Obstacle",
    "TrafficModel",
    "Trace",
    "World",
    "WorldSpec",
]


class Trace(NamedTuple):
    """The ego after each simulation step of :meth:`World.run`; every field ``(B, frames)``."""

    speed_along: np.ndarray  # m/s along the road direction (negative when facing back)
    lane_offset: np.ndarray  # m from the lane centre, + right
    heading_error: np.ndarray  # rad from the road direction, + left
    lane: np.ndarray  # lane index under the centre
    offroad: np.ndarray  # the centre is off the drivable area
    crashed: np.ndarray  # the ego has collided (stays set)


@dataclass(frozen=True)
class Obstacle:
    """A static obstacle: ``kind`` is ``STALLED`` or ``CONE``; placed at ``s`` (m) in ``lane``,
    ``offset`` (m, to the right) from the lane centre."""

    kind: int
    lane: int
    s: float
    offset: float = 0.0


@dataclass
class WorldSpec:
    """Everything fixed about a batch of worlds: road, models, obstacles and timing."""

    road: Road
    ego: EgoModel = field(default_factory=EgoModel)
    traffic: TrafficModel = field(default_factory=TrafficModel)
    obstacles: tuple[Obstacle, ...] = ()
    sim_hz: float = 15.0
    ego_start: float = 200.0  # m along the road
    ego_lanes: tuple[int, ...] = ()  # lanes the ego may start in; empty: any full forward lane
    ego_speed: tuple[float, float] = (20.0, 25.0)  # m/s


OBSTACLE_SIZE = {STALLED: (4.5, 1.9), CONE: (0.6, 0.6)}  # (length, width) m by kind


class World:
    """``B`` worlds stepped in lockstep. State arrays are public and read by observations and
    rendering; only :meth:`reset`, :meth:`place` and the stepping methods (:meth:`step`,
    :meth:`run`, :meth:`advance`) write them. The action types write :attr:`command` and
    :attr:`autopilot`, which :meth:`advance` follows.

    The kernels take the state whole: :attr:`state` (:class:`~lanesim.sim.state.WorldState`),
    :attr:`index` (:class:`~lanesim.sim.state.LaneIndex`), ``road.arrays``, :attr:`timing`
    and the models as records (:func:`~lanesim.sim.models.as_record`), :attr:`ego_params` and
    :attr:`traffic_params`.

    Attributes (all ``(B, N)`` unless noted): ``x, y, heading`` (world pose, m and rad),
    ``speed`` (m/s), ``s, d`` (road frame, m), ``lane`` (lane under the centre), ``target_lane``,
    ``length, width`` (m), ``kind``, ``crashed``, ``crashes_without_ego`` (each traffic car's
    collisions with anything but the ego since reset); ``steer`` and ``accel`` ``(B,)`` are the
    ego's last controls; ``time`` ``(B,)`` is simulated seconds since reset.
    """

    def __init__(self, spec: WorldSpec, n_worlds: int) -> None:
        self.spec = spec
        self.road = spec.road
        self.B = int(n_worlds)
        self.V = spec.traffic.vehicles
        self.O = len(spec.obstacles)
        self.N = 1 + self.V + self.O
        self.dt = 1.0 / spec.sim_hz
        self.rng = WorldRandom(self.B)
        B, N = self.B, self.N
        self.F = np.zeros((layout.N_FLOAT, B, N))
        self.I = np.zeros((layout.N_INT, B, N), dtype=np.int64)
        self.crashed = np.zeros((B, N), dtype=bool)
        F, I = self.F, self.I
        self.x, self.y = F[layout.X], F[layout.Y]
        self.heading, self.speed = F[layout.HEADING], F[layout.SPEED]
        self.s, self.d, self.lateral_speed = F[layout.S], F[layout.D], F[layout.LAT_SPEED]
        self.length, self.width = F[layout.LENGTH], F[layout.WIDTH]
        self.desired_speed, self.time_headway = F[layout.DESIRED_SPEED], F[layout.TIME_HEADWAY]
        self.max_accel, self.comfort_decel = F[layout.MAX_ACCEL], F[layout.COMFORT_DECEL]
        self.min_gap, self.politeness = F[layout.MIN_GAP], F[layout.POLITENESS]
        self.brake_timer = F[layout.BRAKE_TIMER]
        self.lane, self.target_lane = I[layout.LANE], I[layout.TARGET_LANE]
        self.kind = I[layout.KIND]
        self.crashes_without_ego = I[layout.CRASHES_WITHOUT_EGO]
        self.applied = np.zeros((2, B))  # the ego's last steering and acceleration
        # What the ego follows in run()/advance(): rows state.COMMAND_*, fixed controls or,
        # where autopilot, the lane-following controller's target lane and speed.
        self.command = np.zeros((layout.N_COMMAND, B))
        self.autopilot = np.zeros(B, dtype=bool)
        self.time = np.zeros(B)
        self.steps = np.zeros(B, dtype=np.int64)
        self.kind[:, 1 : 1 + self.V] = CAR
        self.traffic = slice(1, 1 + self.V)
        self.obstacle = slice(1 + self.V, N)
        # The lane index (see lane_index.build_index). Room for three occupancies per entity:
        # its lane, a lane it straddles, and one it is changing into.
        tm = spec.traffic
        shift = 2 * tm.recycle_distance + 5e3
        lanes = self.road.lanes
        self.index = LaneIndex(
            keys=np.zeros((B, 3 * N)),
            ents=np.zeros((B, 3 * N), dtype=np.int64),
            counts=np.zeros(B, dtype=np.int64),
            pos=np.zeros((B, N), dtype=np.int64),
            order=np.tile(np.arange(N), (B, 1)),  # entities sorted by s, for collisions
            work=np.zeros((B, N + lanes + 1), dtype=np.int64),
            stride=self.road.length + 2 * shift,
            shift=shift,
            lanes=lanes,
            next=self.road.lane_next,
            prev=self.road.lane_prev,
            seam=self.road.seam,
            direction=self.road.lane_direction,
        )
        self.state = WorldState(
            F=self.F,
            I=self.I,
            crashed=self.crashed,
            steps=self.steps,
            clock=self.time,
            applied=self.applied,
            rng_seed=self.rng.seed,
            rng_counter=self.rng.counter,
        )
        self.ego_params = as_record(spec.ego)
        self.traffic_params = as_record(tm)
        period = max(1, round(tm.decision_period * spec.sim_hz))
        self.timing = Timing(dt=self.dt, period=period)
        # Per-car behaviour: the state field and the range it is drawn from at spawn.
        self._behaviour = (
            ("desired_speed", tm.desired_speed),
            ("time_headway", tm.time_headway),
            ("max_accel", tm.max_accel),
            ("comfort_decel", tm.comfort_decel),
            ("min_gap", tm.min_gap),
            ("politeness", tm.politeness),
            ("length", tm.length),
        )
        # The same fields as rows of F, with their ranges' lows and spans (hi - lo), for the
        # compiled draw (_draw_traffic).
        self._behaviour_rows = (
            np.array([getattr(layout, name.upper()) for name, _ in self._behaviour]),
            np.array([lo for _, (lo, _) in self._behaviour], dtype=np.float64),
            np.array([hi - lo for _, (lo, hi) in self._behaviour], dtype=np.float64),
        )
        self._poses: dict[tuple[float, float], tuple[np.ndarray, ...]] = {}
        self._spawn_slots()
        self._obstacles = self._obstacle_template()
        self._ego_lane_choices = np.array(spec.ego_lanes or self._full_lanes(), dtype=np.int64)
        self._traces: dict[int, np.ndarray] = {}
        # The kernels' structures as plain tuples, cheap to pass on every call (state.plain).
        self._plain = plain(self.state, self.road.arrays, self.index)
        self._step_args = (
            *self._plain,
            self.ego_params,
            self.traffic_params,
            tuple(self.timing),
        )
        # run_worlds without numba's per-call dispatch, which types the argument tuples in
        # Python: every call passes these arrays, a float trace and ints.
        self._run_worlds = compiled_for(run_worlds, *self._step_args, self.command,
                                        self.autopilot, np.zeros((layout.N_TRACE, B, 0)), 0, B)
        # Large batches run on every core; small ones are not worth a thread hand-off.
        self._threads = min(os.cpu_count() or 1, 8)
        self._pool = None
        if self.B >= 8 * self._threads and self._threads > 1:
            self._pool = ThreadPoolExecutor(self._threads - 1, thread_name_prefix="lanesim")
            bounds = np.linspace(0, B, self._threads + 1).astype(int)
            self._splits = list(zip(bounds[:-1], bounds[1:], strict=True))

    # ------------------------------------------------------------------ reset
    def reset(self, worlds: np.ndarray, seeds: np.ndarray) -> None:
        """Start new episodes in ``worlds`` (bool mask ``(B,)``) from ``seeds`` (``(W,)`` ints)."""
        worlds = np.asarray(worlds, dtype=bool)
        if not worlds.any():
            return
        self.rng.reseed(worlds, seeds)
        spec = self.spec
        W = int(worlds.sum())
        # Resetting every world (a single env's every reset): basic indexing, much cheaper on
        # small arrays than a mask, and the same values.
        rows = slice(None) if W == self.B else worlds
        # Everything random about an episode's start comes from one draw per world.
        u = self.rng.uniform(
            (2 + len(self._behaviour) * self.V + len(self._slot_s) + 2 * self.V,), worlds
        )

        # Ego: a random allowed lane, centred, aligned with the road.
        allowed = self._ego_lane_choices
        pick = (u[:, 0] * len(allowed)).astype(np.int64)
        ego_lane = allowed[np.minimum(pick, len(allowed) - 1)]
        lo, hi = spec.ego_speed
        ego_speed = lo + (hi - lo) * u[:, 1]
        self._place(rows, 0, np.full(W, spec.ego_start), ego_lane, ego_speed)
        self.length[rows, 0] = spec.ego.length
        self.width[rows, 0] = spec.ego.width
        self.applied[:, rows] = 0.0

        # Obstacles: the same in every world, placed from a template made once.
        if self.O:
            fields, values, ints = self._obstacles
            for f, v in zip(fields, values, strict=True):
                self.F[f][rows, self.obstacle] = v
            for f, v in zip((layout.KIND, layout.LANE, layout.TARGET_LANE), ints, strict=True):
                self.I[f][rows, self.obstacle] = v

        if self.V:
            self._spawn_traffic(rows, u[:, 2:])
        self.crashed[rows] = False
        self.crashes_without_ego[rows] = 0
        self.time[rows] = 0.0
        self.steps[rows] = 0
        self._refresh_lanes(worlds)
        settle_speeds(self.F, self.I, *self._plain[1:], worlds)

    def place(self, entity: int, s: float, lane: int, speed: float) -> None:
        """Put ``entity`` of every world on ``lane``'s centre at ``s`` (m), aligned with the road,
        at ``speed`` (m/s), and refresh the neighbour index. For building test situations and
        hand-made scenes; episodes start from :meth:`reset`."""
        every = np.ones(self.B, dtype=bool)
        self._place(every, entity, np.full(self.B, float(s)), np.full(self.B, lane), float(speed))
        self._refresh_lanes()

    def _full_lanes(self) -> list[int]:
        """Lanes that run the whole road the road's way (the ego never starts oncoming)."""
        road = self.road
        full = ~road.lane_closes & (road.lane_direction > 0)
        return [int(i) for i in np.flatnonzero(full)] or [int(np.argmax(road.lane_direction))]

    def _place(self, worlds, e, s, lane, speed) -> None:
        """Put entity ``e`` of ``worlds`` on a lane centre, aligned with the road (on a closed
        road at ``s`` taken round the loop); a car in an oncoming lane faces back (the ego
        always faces forward)."""
        s = self.road.wrap(s)
        self.s[worlds, e] = s
        self.d[worlds, e] = self.road.lane_centre[lane]
        self.lane[worlds, e] = lane
        self.target_lane[worlds, e] = lane
        self.speed[worlds, e] = speed
        self.lateral_speed[worlds, e] = 0.0
        self.F[layout.PASSED][worlds, e] = 0.0
        x, y, h = self._pose(s, self.d[worlds, e])
        if e != 0:
            h = np.where(self.road.lane_direction[lane] < 0, h + np.pi, h)
        self.x[worlds, e], self.y[worlds, e], self.heading[worlds, e] = x, y, h

    def _pose(self, s: np.ndarray, d: np.ndarray):
        """:meth:`Road.to_world` of ``(s, d)`` ``(W,)``; one world's, remembered: a single
        env's ego starts at the same few points every episode."""
        if s.shape != (1,):
            return self.road.to_world(s, d)
        key = (float(s[0]), float(d[0]))
        pose = self._poses.get(key)
        if pose is None:
            pose = self.road.to_world(s, d)
            if len(self._poses) < 256:
                self._poses[key] = pose
        return pose

    def _obstacle_template(self):
        """The obstacles' state fields, ``(fields, values (O,) per field, int rows (O,))``."""
        obs, road = self.spec.obstacles, self.road
        lane = np.array([ob.lane for ob in obs], dtype=np.int64)
        s = np.array([ob.s for ob in obs], dtype=np.float64)
        d = road.lane_centre[lane] + np.array([ob.offset for ob in obs])
        x, y, h = road.to_world(s, d)
        size = np.array([OBSTACLE_SIZE[ob.kind] for ob in obs]).reshape(-1, 2)
        zeros = np.zeros(len(obs))
        L = layout
        fields = (L.S, L.D, L.X, L.Y, L.HEADING, L.SPEED, L.LAT_SPEED, L.LENGTH, L.WIDTH)
        values = (s, d, x, y, h, zeros, zeros, size[:, 0], size[:, 1])
        kind = np.array([ob.kind for ob in obs], dtype=np.int64)
        return fields, values, (kind, lane, lane)

    def _spawn_slots(self) -> None:
        """The grid of spawn slots: ``spawn_spacing`` apart along every lane around the ego
        (on a closed road at most the loop's length shared out, round the loop)."""
        spec, road, tm = self.spec, self.road, self.spec.traffic
        per_lane = max(int(np.ceil(1.6 * self.V / road.lanes)) + 2, 4)
        if road.closed:
            # Traffic circulates: the slots share out the loop, never overlapping round it.
            self._spacing = min(tm.spawn_spacing, road.length / per_lane)
        else:
            # Keep every slot inside the recycling radius, so no car is moved on the first
            # decision.
            self._spacing = min(tm.spawn_spacing, 1.8 * tm.recycle_distance / per_lane)
        offsets = (np.arange(per_lane) - per_lane // 2) * self._spacing
        self._slot_s = road.wrap(spec.ego_start + np.tile(offsets, road.lanes))
        self._slot_lane = np.repeat(np.arange(road.lanes), per_lane)
        s = self._slot_s
        # Slots on the road, and before the point where a closing lane stops its traffic.
        open_lane = s < road.lane_stop[self._slot_lane] - SPAWN_MARGIN
        self._slot_ok = road.lane_exists(self._slot_lane, s) & open_lane
        if not road.closed:
            self._slot_ok &= (s > 5) & (s < road.length - 5)

    def _spawn_traffic(self, worlds, u: np.ndarray) -> None:
        """Draw every traffic car of ``worlds`` (bool mask ``(B,)``, or ``slice(None)`` for
        all) from uniforms ``u`` ``(W, ...)``: behaviour, then a random subset of the spawn
        slots that exist, are on the road and keep clear of the ego, so gaps are plausible by
        construction (:func:`_draw_traffic`); their poses from the road."""
        road, V, cars = self.road, self.V, self.traffic
        mask = np.ones(self.B, dtype=bool) if isinstance(worlds, slice) else worlds
        W = len(u)
        s, lane = np.empty((W, V)), np.empty((W, V), dtype=np.int64)
        fields, lo, span = self._behaviour_rows
        far = self.spec.ego_start - 2 * self.spec.traffic.recycle_distance
        _draw_traffic(mask, u, self.F, self.I, fields, lo, span,
                      self.spec.traffic.width, self._slot_s, self._slot_lane, self._slot_ok,
                      self._spacing, max(self._spacing, 12.0), road.seam,
                      road.length if road.closed else 0.0, far,
                      float(self.spec.traffic.spawn_spacing), road.lane_centre, s, lane)
        x, y, h = road.to_world(s, self.d[worlds, cars])
        h = np.where(road.lane_direction[lane] < 0, h + np.pi, h)  # oncoming cars face back
        self.x[worlds, cars], self.y[worlds, cars], self.heading[worlds, cars] = x, y, h

    # ------------------------------------------------------------------ step
    def step(self, steer: np.ndarray, accel: np.ndarray) -> Trace:
        """One simulation step with ego controls ``steer`` (rad) and ``accel`` (m/s²), ``(B,)``."""
        return self.run(1, steer=steer, accel=accel)

    def run(
        self,
        frames: int,
        steer: np.ndarray | None = None,
        accel: np.ndarray | None = None,
        target_lane: np.ndarray | None = None,
        target_speed: np.ndarray | None = None,
    ) -> Trace:
        """Advance every world by ``frames`` simulation steps in one compiled call.

        The ego either holds ``steer`` (rad) and ``accel`` (m/s²) — clipped to its limits — or,
        given ``target_lane`` and ``target_speed`` (m/s), is driven by the lane-following
        autopilot; all ``(B,)``. Traffic reacts to the state at the start of each step; every
        ``decision_period`` of a world's own clock its cars consider lane changes and far cars
        are recycled. Returns the ego's :class:`Trace` after each step.
        """
        c = self.command
        if target_lane is not None:
            c[layout.COMMAND_LANE] = target_lane
            c[layout.COMMAND_SPEED] = target_speed
            self.autopilot[:] = True
        else:
            c[layout.COMMAND_STEER] = 0.0 if steer is None else steer
            c[layout.COMMAND_ACCEL] = 0.0 if accel is None else accel
            self.autopilot[:] = False
        trace = self.advance(frames)
        return Trace(
            *trace[: layout.TRACE_LANE].copy(),
            trace[layout.TRACE_LANE].astype(np.int64),
            trace[layout.TRACE_OFFROAD] > 0,
            trace[layout.TRACE_CRASHED] > 0,
        )

    def advance(self, frames: int) -> np.ndarray:
        """:meth:`run` following :attr:`command` and :attr:`autopilot` as they are; returns the
        raw trace ``(N_TRACE, B, frames)`` (rows ``lanesim.sim.state.TRACE_*``), a buffer that
        the next call with the same ``frames`` overwrites."""
        trace = self._traces.get(frames)
        if trace is None:
            trace = self._traces[frames] = np.zeros((layout.N_TRACE, self.B, frames))
        self.over_worlds(self._run_worlds, *self._step_args, self.command, self.autopilot, trace)
        return trace

    def over_worlds(self, kernel, *args) -> None:
        """Run ``kernel(*args, first, stop)`` over every world: one call, or for large batches
        disjoint ranges on the thread pool (the kernel must release the GIL), the first range
        on the calling thread, so it works while the pool's threads wake up."""
        if self._pool is None:
            kernel(*args, 0, self.B)
            return
        jobs = [self._pool.submit(kernel, *args, lo, hi) for lo, hi in self._splits[1:]]
        kernel(*args, *self._splits[0])
        for job in jobs:
            job.result()

    @property
    def steer(self) -> np.ndarray:
        """``(B,)``: the ego's steering (rad) in the last simulation step."""
        return self.applied[0]

    @property
    def accel(self) -> np.ndarray:
        """``(B,)``: the ego's acceleration (m/s²) in the last simulation step."""
        return self.applied[1]

    def _refresh_lanes(self, worlds: np.ndarray | None = None) -> None:
        """Recompute lanes, the lane index and the collision order of ``worlds`` (default all)
        from their current state."""
        worlds = np.ones(self.B, dtype=bool) if worlds is None else worlds
        refresh_worlds(*self._plain, worlds)

    # ------------------------------------------------------------------ ego queries
    def ego_offroad(self) -> np.ndarray:
        """``(B,)``: the ego's centre is not on any existing lane."""
        return ~self.road.drivable(self.s[:, 0], self.d[:, 0])

    def ego_lane_frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lane, lane_offset, heading_error)`` of the ego, each ``(B,)``.

        ``lane_offset`` (m) is positive right of the lane centre; ``heading_error`` (rad,
        in [-π, π)) is positive when the ego points left of the road direction.
        """
        lane = self.lane[:, 0]
        offset = self.d[:, 0] - self.road.lane_centre[lane]
        road_h = self.road.reference_pose(self.s[:, 0])[2]
        err = wrap_angles(self.heading[:, 0] - road_h)
        return lane, offset, err

    def leader_of_ego(self) -> tuple[np.ndarray, np.ndarray]:
        """Bumper gap (m, ``inf`` if none) and leader speed (m/s) ahead of the ego, ``(B,)``.

        The gap is measured along the ego's lane, so it is exact on curves too.
        """
        out = np.empty((2, self.B))
        ego_leaders(self.F, self.I, self.index, out)
        return out[0], out[1]


@njit(cache=True)  # allocates its sorting space
def _draw_traffic(worlds, u, F, I, fields, lo, span, width, slot_s, slot_lane, slot_ok, spacing,
                  near, seam, loop, far, park_spacing, lane_centre, s_out, lane_out):
    """Every traffic car (entities 1 to V) of the ``worlds`` (bool ``(B,)``) from their rows of
    uniforms ``u`` ``(W, 7 V + slots + 2 V)``: behaviour ``fields`` of F drawn in ``lo + span
    u``; then, per world, the V first slots in the order of random keys with the unusable ones
    (off the road, or within ``near`` m of the ego's place in its lane) pushed last (a stable
    order: ties keep slot order), each jittered by up to ±0.15 ``spacing`` m and taken round
    a loop of length ``loop`` (0: open road); a car whose slot ran out parks far behind at
    ``far - k park_spacing``. Writes s, d, lanes, speeds and the cleared rates into F and I,
    and the cars' s and lanes into ``s_out`` and ``lane_out`` ``(W, V)`` (for their poses)."""
    V = s_out.shape[1]
    n_b = fields.shape[0] * V
    n_slots = slot_s.shape[0]
    keys = np.empty(n_slots)
    order = np.empty(n_slots, dtype=np.int64)
    usable = np.empty(n_slots, dtype=np.bool_)
    r = 0
    for b in range(F.shape[1]):
        if not worlds[b]:
            continue
        for i in range(fields.shape[0]):
            for v in range(V):
                F[fields[i], b, 1 + v] = lo[i] + span[i] * u[r, i * V + v]
        for v in range(V):
            F[layout.WIDTH, b, 1 + v] = width
        ego_s, ego_lane = F[layout.S, b, 0], I[layout.LANE, b, 0]
        # A stable insertion sort of the slots by key.
        for k in range(n_slots):
            close = slot_lane[k] == ego_lane and abs(along_offset(slot_s[k] - ego_s, seam)) < near
            usable[k] = slot_ok[k] and not close
            keys[k] = u[r, n_b + k] + 2.0 * (0.0 if usable[k] else 1.0)
            j = k
            while j > 0 and keys[order[j - 1]] > keys[k]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = k
        for v in range(V):
            c = order[v]
            if usable[c]:
                sv = slot_s[c] + (u[r, n_b + n_slots + v] - 0.5) * 0.3 * spacing
                if loop > 0.0:
                    sv = sv % loop
            else:
                sv = far - v * park_spacing
            e = 1 + v
            F[layout.S, b, e] = sv
            F[layout.D, b, e] = lane_centre[slot_lane[c]]
            I[layout.LANE, b, e] = slot_lane[c]
            I[layout.TARGET_LANE, b, e] = slot_lane[c]
            speed_u = u[r, n_b + n_slots + V + v]
            F[layout.SPEED, b, e] = F[layout.DESIRED_SPEED, b, e] * (0.85 + 0.15 * speed_u)
            F[layout.LAT_SPEED, b, e] = 0.0
            F[layout.BRAKE_TIMER, b, e] = 0.0
            F[layout.PASSED, b, e] = 0.0
            s_out[r, v], lane_out[r, v] = sv, slot_lane[c]
        r += 1
