"""The world step: a whole decision (several simulation steps) of every world in one compiled
call, over the named structures of :mod:`lanesim.sim.state`.

Why compiled: a step is a few hundred small operations per world; in numpy each one costs a
few microseconds of call overhead whatever the batch size, which capped a single world at a
few hundred steps per second. Here a world's step is one pass over its entities. Compiled code
is cached on disk; the first run on a machine compiles it once.

Every kernel is deterministic: randomness comes from each world's counter-based stream
(:mod:`lanesim.sim.rng`), the same numbers whether drawn here or by
:class:`~lanesim.sim.rng.WorldRandom` in numpy.
"""

from __future__ import annotations

import math

import numpy as np

from lanesim.sim.collision import collide
from lanesim.sim.ego import autopilot, move_ego
from lanesim.sim.jit import kernel, kernel_inline, kernel_nogil
from lanesim.sim.lane_index import (
    beyond_end,
    build_index,
    direction_of,
    lane_exists,
    leader,
    refresh_lanes,
)
from lanesim.sim.rng import stream_base
from lanesim.sim.road import RoadArrays, pose_at, wrap_angle
from lanesim.sim.state import (
    COMMAND_ACCEL,
    COMMAND_LANE,
    COMMAND_SPEED,
    COMMAND_STEER,
    CURVATURE,
    HEADING,
    LANE,
    ROAD_HEADING,
    SPEED,
    TRACE_ALONG,
    TRACE_CRASHED,
    TRACE_HEADING_ERROR,
    TRACE_LANE,
    TRACE_OFFROAD,
    TRACE_OFFSET,
    D,
    LaneIndex,
    S,
    Timing,
    WorldState,
)
from lanesim.sim.traffic import bumper_gap, change_lanes, follow, move_traffic, recycle


@kernel_inline
def step_world(state, road, index, ego, traffic, timing, steer, accel, brake_base, decide,
               recycle_base, b):
    """One simulation step of world ``b`` with ego controls ``steer`` (rad), ``accel`` (m/s²).

    Traffic reacts to the state at the start of the step. ``brake_base`` is the draw for
    sudden braking (:func:`lanesim.sim.traffic.move_traffic`); ``decide`` runs lane changes,
    then, on an open road, recycling with the draw of base ``recycle_base`` (on a closed road
    traffic circulates).
    """
    F, I, crashed = state.F, state.I, state.crashed
    dt = timing.dt
    follow(F, I, road, index, traffic, ego.max_speed, b)
    move_ego(F, I, road, ego, crashed[b, 0], b, steer, accel, dt)
    move_traffic(F, I, crashed, road, traffic, b, dt, traffic.brake_rate * dt, brake_base)
    refresh_lanes(F, I, road.lane_width, index, b)
    collide(F, I, crashed, index.order, road.seam, b)
    if decide and traffic.vehicles > 0:
        change_lanes(F, I, crashed, road, index, traffic, ego.max_speed, b)
        # A car that started a change now blocks its target lane instead of a lane it straddled:
        # rebuild, so recycling sees the index the state describes.
        build_index(F, I, road.lane_width, index, b)
        if road.seam == 0.0:
            recycle(F, I, crashed, road, index, traffic, recycle_base, b)


@kernel_nogil
def run_worlds(state, road, index, ego, traffic, timing, command, use_autopilot, trace, first,
               stop):
    """Advance worlds ``first`` to ``stop - 1`` by ``frames = trace.shape[2]`` simulation steps.

    Takes :class:`~lanesim.sim.state.WorldState`, :class:`~lanesim.sim.road.RoadArrays`,
    :class:`~lanesim.sim.state.LaneIndex` and :class:`~lanesim.sim.state.Timing`, named or as
    plain tuples (:func:`lanesim.sim.state.plain`, cheaper to pass from Python), and the ego's
    and traffic's models as records (:func:`lanesim.sim.models.as_record`). Releases the GIL:
    disjoint ranges of worlds may run on several threads at once.

    Per world ``b``, ``command`` ``(N_COMMAND, B)`` holds either fixed controls (rows
    ``COMMAND_STEER`` rad and ``COMMAND_ACCEL`` m/s², clipped to the ego's limits) or, where
    ``use_autopilot[b]``, the lane-following controller's target lane and speed (rows
    ``COMMAND_LANE``, ``COMMAND_SPEED``). Every ``timing.period`` steps of a world's own clock
    ``state.steps[b]`` its cars consider lane changes and far cars are recycled. Random numbers
    come from each world's stream (``state.rng_seed``, ``state.rng_counter``, advanced here
    exactly as :meth:`lanesim.sim.rng.WorldRandom.uniform` would be): one draw per step for
    sudden braking (with ``traffic.brake_rate > 0``), one per decision step, so ``frames`` steps
    in one call or in several give the same worlds. Advances ``state.steps`` and
    ``state.clock`` (s), writes the controls used into ``state.applied`` ``(2, B)`` and the
    ego's state after each step into ``trace`` ``(N_TRACE, B, frames)``.
    """
    # Named again here, at no cost: they come as plain tuples, cheaper to pass from Python.
    state, road, index = WorldState(*state), RoadArrays(*road), LaneIndex(*index)
    ego, traffic, timing = ego[0], traffic[0], Timing(*timing)
    F, I, crashed = state.F, state.I, state.crashed
    steps, rng_seed, rng_counter = state.steps, state.rng_seed, state.rng_counter
    lane_width = road.lane_width
    road_end = road.geometry[0][-1] + road.geometry[1][-1]
    frames = trace.shape[2]
    V = traffic.vehicles
    one = np.uint64(1)
    for b in range(first, stop):
        for f in range(frames):
            if use_autopilot[b]:
                st, ac = autopilot(
                    F, lane_width, ego, b, int(command[COMMAND_LANE, b]), command[COMMAND_SPEED, b]
                )
            else:
                st = min(max(command[COMMAND_STEER, b], -ego.max_steer), ego.max_steer)
                ac = min(max(command[COMMAND_ACCEL, b], -ego.max_brake), ego.max_accel)
            state.applied[0, b], state.applied[1, b] = st, ac
            steps[b] += 1
            decide = steps[b] % timing.period == 0
            brake_base = recycle_base = np.uint64(0)
            if traffic.brake_rate > 0.0 and V > 0:
                brake_base = stream_base(rng_seed[b], rng_counter[b])
                rng_counter[b] += one
            if decide and V > 0:
                recycle_base = stream_base(rng_seed[b], rng_counter[b])
                rng_counter[b] += one
            step_world(
                state, road, index, ego, traffic, timing, st, ac, brake_base, decide,
                recycle_base, b,
            )
            s, d = F[S, b, 0], F[D, b, 0]
            lane = I[LANE, b, 0]
            err = wrap_angle(F[HEADING, b, 0] - F[ROAD_HEADING, b, 0])
            under = int(math.floor(d / lane_width))
            trace[TRACE_ALONG, b, f] = F[SPEED, b, 0] * math.cos(err)
            trace[TRACE_OFFSET, b, f] = d - (lane + 0.5) * lane_width
            trace[TRACE_HEADING_ERROR, b, f] = err
            trace[TRACE_LANE, b, f] = lane
            on_road = 0.0 <= s <= road_end and lane_exists(road.lane_start, road.lane_end, under, s)
            trace[TRACE_OFFROAD, b, f] = 0.0 if on_road else 1.0
            trace[TRACE_CRASHED, b, f] = 1.0 if crashed[b, 0] else 0.0
        state.clock[b] += frames * timing.dt


@kernel
def refresh_worlds(state, road, index, worlds):
    """Recompute the road under every entity, lanes, the lane index and the ``s`` order of the
    ``worlds`` (bool ``(B,)``) whose entities were placed by hand or reset. The structures come
    named or as plain tuples, as for :func:`run_worlds`."""
    state, road, index = WorldState(*state), RoadArrays(*road), LaneIndex(*index)
    F = state.F
    for b in range(F.shape[1]):
        if not worlds[b]:
            continue
        for e in range(F.shape[2]):
            _, _, F[ROAD_HEADING, b, e], F[CURVATURE, b, e] = pose_at(road.geometry, F[S, b, e])
        refresh_lanes(F, state.I, road.lane_width, index, b)


@kernel
def ego_leader(F, I, index, b):
    """Bumper gap (m, ``inf`` if none) and speed (m/s) of the leader in world ``b``'s ego lane,
    measured along that lane (across a closed road's seam); the speed is along the ego's way,
    negative for an oncoming car coming head-on."""
    lead = leader(index, b, I[LANE, b, 0], F[S, b, 0])
    if lead < 0:
        lead = beyond_end(index, b, I[LANE, b, 0], F[S, b, 0])
    gap = bumper_gap(F, b, 0, lead, F[S, b, 0], F[D, b, 0], index.seam)
    if lead < 0:
        return gap, 0.0
    return gap, F[SPEED, b, lead] * direction_of(I, index.direction, b, lead)


@kernel
def ego_leaders(F, I, index, out):
    """:func:`ego_leader` of every world into ``out`` ``(2, B)``."""
    for b in range(F.shape[1]):
        out[0, b], out[1, b] = ego_leader(F, I, index, b)
