"""The Gymnasium-facing core, batched: options -> world, actions -> controls, state -> rewards.

:class:`DrivingCore` runs ``B`` worlds. The single environment uses ``B = 1`` and the vector
environment ``B = num_envs``; both are thin wrappers over it, so they cannot drift apart.
"""

from __future__ import annotations

import math
import os
from collections import namedtuple
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from lanesim.envs.actions import make_action
from lanesim.envs.observations import make_observation
from lanesim.envs.options import (
    DEFAULT_TAPER,
    REWARD_TERMS,
    OptionError,
    Options,
    road_segments,
)
from lanesim.sim import state as layout
from lanesim.sim.jit import compiled_for, kernel
from lanesim.sim.memory import check_memory
from lanesim.sim.road import LaneSpan, Road, wrap_angle
from lanesim.sim.state import LANE, LaneIndex
from lanesim.sim.step import ego_leader
from lanesim.sim.world import CONE, STALLED, EgoModel, Obstacle, TrafficModel, World, WorldSpec

CONE_SPACING = 5.0  # m between cones along a closure taper


def build_spec(o: Options) -> WorldSpec:
    """The simulator's description of the scenario in ``o``."""
    ego = EgoModel()
    segments = road_segments(o)
    length = sum(s.length for s in segments)
    spans = [LaneSpan(0.0, length) for _ in range(o.lanes)]
    spans += [LaneSpan(r["start"], r["start"] + r["length"]) for r in o.ramp]
    obstacles = []
    for c in o.closures:
        lane, start = c["lane"], c["start"]
        taper = c.get("taper", DEFAULT_TAPER)
        spans[lane] = LaneSpan(spans[lane].start, min(spans[lane].end, start + taper), taper)
        half = 0.5 * o.lane_width - 0.4
        n = max(int(taper // CONE_SPACING) + 1, 2)
        # Cones run from the lane's outer side across it, so they never block the open lane.
        outer = -1.0 if lane == 0 else 1.0
        for i in range(n):
            f = i / (n - 1)
            obstacles.append(Obstacle(CONE, lane, start + f * taper, outer * half * (1 - 2 * f)))
    obstacles += [Obstacle(STALLED, c["lane"], c["s"]) for c in o.stalled]
    road = Road(segments, o.lanes + len(o.ramp), o.lane_width, spans, closed=o.loop,
                directions=o.lane_directions)
    traffic = TrafficModel(
        vehicles=o.vehicles,
        desired_speed=tuple(o.traffic_speed),
        politeness=tuple(o.traffic_politeness),
        brake_rate=o.traffic_brake_rate,
        spawn_spacing=o.spawn_spacing,
        recycle_distance=o.recycle_distance,
    )
    return WorldSpec(
        road=road,
        ego=ego,
        traffic=traffic,
        obstacles=tuple(obstacles),
        sim_hz=o.sim_hz,
        ego_start=o.ego_start,
        ego_lanes=o.start_lanes,
        ego_speed=tuple(o.ego_speed),
    )


def decisions_per_episode(o: Options) -> int:
    """Decisions until ``duration`` truncates an episode (the ``_score`` kernel's test)."""
    return math.ceil(o.duration * o.policy_hz - 1e-9)


def warn_if_limit_unreachable(o: Options, max_episode_steps: int | None) -> None:
    """``max_episode_steps`` beyond ``duration`` never truncates: say so instead of ignoring it."""
    if max_episode_steps is not None and max_episode_steps > decisions_per_episode(o):
        gym.logger.warn(
            f"max_episode_steps={max_episode_steps} is never reached: duration={o.duration} s "
            f"truncates episodes after {decisions_per_episode(o)} decisions at policy_hz="
            f"{o.policy_hz}; raise duration for longer episodes"
        )


def _bytes_per_world(o: Options, spec: WorldSpec) -> float:
    """Estimated peak memory of one world (bytes): its state and lane index, a decision's
    trace, the draws of a reset and the observation with the temporaries that build it."""
    lanes, V = spec.road.lanes, o.vehicles
    N = 1 + V + len(spec.obstacles)
    fields = layout.N_FLOAT + layout.N_INT + 10
    state = 8 * (fields * N + layout.N_TRACE * o.frames_per_decision)
    slots = lanes * max(math.ceil(1.6 * V / lanes) + 2, 4)
    reset = 8 * 4 * (9 * V + 2 * slots)  # the uniforms, sort keys and their copies
    if o.observation == "kinematics":
        obs = 2 * 4 * (1 + o.observed_vehicles) * 8  # two float32 copies
    elif o.observation == "occupancy":
        # RoadRaster.footprints: about six float64 (rows x cols) patches per entity.
        patch = (math.ceil(6.4 / (o.lane_width / 4)) + 2) * 4
        obs = 2 * 4 * 4 * (4 * lanes * 32) + 8 * 6 * patch * N
    else:
        # Measured (tracemalloc, 500 worlds): the stacks, the copies handed out and the vector
        # env's buffers peak at about nine stacks.
        channels = 3 if o.camera_color and o.observation != "pixels" else 1
        image = channels * o.image_shape[0] * o.image_shape[1]
        if o.observation == "birdseye":  # the stacks hold warped frames; one camera image
            obs = 9 * o.frame_stack * channels * math.prod(o.birdseye_shape) + image
        else:
            obs = 9 * o.frame_stack * image
    return float(state + reset + obs)


def _shared_bytes(o: Options) -> float:
    """Estimated peak memory shared by every world (bytes): the camera renderer's per-pixel
    tables, measured (tracemalloc, 512 × 512 and 1024 × 1024) at about 300 bytes a pixel while
    they are built, and its float32 depth buffer, one per drawing thread (at most one a core)."""
    if o.observation not in ("camera", "birdseye"):
        return 0.0
    pixels = o.image_shape[0] * o.image_shape[1]
    return 320.0 * pixels + 4.0 * pixels * (os.cpu_count() or 1)


# Info fields, in the order of DrivingCore.report's rows.
INFO_FIELDS = (
    "crashed",
    "offroad",
    "speed",
    "lane",
    "lane_offset",
    "heading_error",
    "distance",
    "headway",
    "time_to_collision",
    "traffic_collisions",
)
# Info fields that are flags and counts (the rest are floats), one road's and a network's.
BOOL_INFO, INT_INFO = ("crashed", "offroad", "arrived"), ("lane", "traffic_collisions")
# The row of each info field and reward term, by name, for the kernels that write them
# (``INFO.speed``, ``TERM.progress``): derived from the lists above, so they cannot disagree.
# The classes live at module level so that numba can cache the kernels that read them.
InfoRows = namedtuple("InfoRows", INFO_FIELDS)
RewardRows = namedtuple("RewardRows", REWARD_TERMS)
INFO = InfoRows(*range(len(INFO_FIELDS)))
TERM = RewardRows(*range(len(REWARD_TERMS)))


class DrivingCore:
    """``B`` driving worlds behind one action, observation and reward definition.

    A decision is a few calls into preallocated buffers, the heavy ones compiled (the
    simulation, the reward terms with the info values, the kinematics and pixel observations);
    dicts are built only when asked for.

    Args:
        options: validated options.
        n_worlds: B.
        max_episode_steps: truncate each episode after this many decisions as well (Gymnasium's
            ``TimeLimit``: truncated even on a terminating decision); None for ``duration`` only.
    """

    def __init__(
        self, options: Options, n_worlds: int, max_episode_steps: int | None = None
    ) -> None:
        self.options = options
        self.max_episode_steps = max_episode_steps
        self.spec = build_spec(options)
        check_memory(
            n_worlds * _bytes_per_world(options, self.spec) + _shared_bytes(options),
            f"{n_worlds:,} worlds of {1 + options.vehicles + len(self.spec.obstacles)} entities "
            f"with {options.observation} observations",
            "use fewer environments, vehicles or a smaller observation",
            OptionError,
        )
        self.world = World(self.spec, n_worlds)
        self.B = n_worlds
        self.action = make_action(options, self.world)
        self.observation = make_observation(options, self.world)
        self.weights = np.array([options.rewards[t] for t in REWARD_TERMS])
        self.frames = options.frames_per_decision
        self.start_s = np.zeros(n_worlds)
        self.prev_controls = np.zeros((2, n_worlds))
        self.crashed = np.zeros(n_worlds, dtype=bool)
        self.offroad = np.zeros(n_worlds, dtype=bool)
        # The last decision's weighted reward terms ``(len(REWARD_TERMS), B)`` (zero right after
        # a reset), its reward, episode ends, and the info values ``(len(INFO_FIELDS), B)``.
        self.terms = np.zeros((len(REWARD_TERMS), n_worlds))
        self.reward = np.zeros(n_worlds)
        self.terminated = np.zeros(n_worlds, dtype=bool)
        self.truncated = np.zeros(n_worlds, dtype=bool)
        self.decisions = np.zeros(n_worlds, dtype=np.int64)  # since each world's reset
        self.report = np.zeros((len(INFO_FIELDS), n_worlds))
        self._lane_before = np.zeros(n_worlds, dtype=np.int64)
        self._every = np.ones(n_worlds, dtype=bool)
        em = self.spec.ego
        w = self.world
        self._score_args = (
            self.weights,
            options.reward_speed,
            0.5 * w.road.lane_width,
            np.array([em.max_steer, em.max_accel + em.max_brake]),
            options.duration,
            w.time,
            self.prev_controls,
            self.crashed,
            self.offroad,
            self.terms,
            self.reward,
            self.terminated,
            self.truncated,
        )
        self._report_args = (
            w.F,
            w.I,
            tuple(w.index),
            w.road.lane_width,
            self.start_s,
            self.crashed,
            self.offroad,
            self.report,
        )
        # Both kernels without numba's per-call dispatch (which types the index tuple in
        # Python): every call passes these arrays, a bool mask, a float trace.
        self._report = compiled_for(_report, *self._report_args, self._every)
        self._score = compiled_for(_score, np.zeros((layout.N_TRACE, n_worlds, 0)),
                                   self._lane_before, w.applied, *self._score_args)

    def reset(self, worlds: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Reset ``worlds`` (bool ``(B,)``) with ``seeds`` (``(W,)`` ints); returns all obs.

        The reset worlds' :attr:`terms` become zero and their :attr:`report` the new episode's.
        """
        w = self.world
        w.reset(worlds, seeds)
        self.action.reset(worlds)
        # Every world (a single env's reset): basic indexing, cheaper than a mask.
        rows = slice(None) if worlds.all() else worlds
        self.start_s[rows] = w.s[rows, 0]
        self.prev_controls[:, rows] = 0.0
        self.crashed[rows] = False
        self.offroad[rows] = False
        self.terms[:, rows] = 0.0
        self.decisions[rows] = 0
        self._report(*self._report_args, np.ascontiguousarray(worlds, dtype=bool))
        return self.observation.reset(worlds)

    def step(self, actions, on_frame: Callable[[], None] | None = None, batched: bool = True):
        """One decision: validate ``actions``, run ``frames_per_decision`` simulation steps.

        ``actions`` hold one action per world (shape ``(B, *action_shape)``) when ``batched``,
        else they are the single action of a one-world core, shaped as the action space is
        (a single env must refuse ``[1]`` for ``Discrete``, which a batch of one accepts).
        ``on_frame`` is called after every simulation step (for rendering and video); without
        it the whole decision runs in one compiled call. Returns ``(obs, reward (B,),
        terminated (B,), truncated (B,))``, arrays of their own when ``batched`` (else the
        reward and ends are the core's, which the next step overwrites); :meth:`info` and
        :meth:`info_of` give the info.
        """
        self.action.set(actions, batched)
        w = self.world
        np.copyto(self._lane_before, w.I[LANE, :, 0])
        trace = advance_traced(w, self.frames, on_frame)
        self._score(trace, self._lane_before, w.applied, *self._score_args)
        self.decisions += 1
        if self.max_episode_steps is not None:
            self.truncated |= self.decisions >= self.max_episode_steps
        self._report(*self._report_args, self._every)
        obs = self.observation()
        if not batched:  # the single env turns them into Python scalars at once
            return obs, self.reward, self.terminated, self.truncated
        return obs, self.reward.copy(), self.terminated.copy(), self.truncated.copy()

    def info(self) -> dict:
        """Info of every world, as Gymnasium's vector envs report it: arrays ``(B,)`` and
        ``rewards``, a dict of the weighted terms."""
        return batch_info(self.report, self.terms, INFO_FIELDS, REWARD_TERMS)

    def info_of(self, b: int) -> dict:
        """Info of world ``b`` as a single environment reports it (Python scalars)."""
        return world_info(self.report, self.terms, b, INFO_FIELDS, REWARD_TERMS)


def advance_traced(world, frames: int, on_frame: Callable[[], None] | None):
    """``frames`` simulation steps of ``world`` and their trace ``(rows, B, frames)``: in one
    compiled call, or with ``on_frame`` called after every step (rendering, video)."""
    if on_frame is None:
        return world.advance(frames)
    parts = []
    for _ in range(frames):
        parts.append(world.advance(1).copy())
        on_frame()
    return np.concatenate(parts, axis=2)


def batch_info(report, terms, fields, term_names, bools=BOOL_INFO, ints=INT_INFO) -> dict:
    """The info dict of every world from a core's ``report`` rows (``fields``) and weighted
    reward ``terms`` (``term_names``): ``(B,)`` arrays, the ``bools`` as bool and the ``ints``
    as int64, and ``rewards`` a dict of the terms."""
    out = {"rewards": dict(zip(term_names, terms.copy(), strict=True))}
    for name, row in zip(fields, report.copy(), strict=True):
        out[name] = row.astype(bool) if name in bools else (
            row.astype(np.int64) if name in ints else row
        )
    return out


def world_info(report, terms, b, fields, term_names, bools=BOOL_INFO, ints=INT_INFO) -> dict:
    """World ``b``'s info as :func:`batch_info` gives it, in Python scalars."""
    key = (fields, bools, ints)
    typed = _TYPED_INFO.get(key)
    if typed is None:  # once per field list: which values become bool or int
        typed = _TYPED_INFO[key] = tuple(
            (i, name, bool if name in bools else int)
            for i, name in enumerate(fields) if name in bools or name in ints)
    values = report[:, b].tolist()
    out = dict(zip(fields, values, strict=True))
    for i, name, kind in typed:
        out[name] = kind(values[i])
    out["rewards"] = dict(zip(term_names, terms[:, b].tolist(), strict=True))
    return out


_TYPED_INFO: dict = {}  # (fields, bools, ints) -> ((row, name, bool or int), ...)


# Flat arguments, unlike the simulator's entry points: called from Python at every decision,
# and numba types flat arrays in its C fast path; the same arrays grouped into a RewardModel and
# an Episode tuple measured 1 µs a step slower (4 % of a single env's step at highway-fast scale).
@kernel
def _score(
    trace,
    lane_before,
    applied,
    weights,
    reward_speed,
    half_lane,
    control_scale,
    duration,
    clock,
    prev_controls,
    crashed,
    offroad,
    terms,
    reward,
    terminated,
    truncated,
):
    """Reward terms of one decision from the ego's ``trace`` ``(N_TRACE, B, frames)``.

    Per simulation step, progress is the speed along the road over ``reward_speed`` in [-1, 1]:
    stopping earns nothing and driving against the road costs. Lane keeping,
    (1 - (offset / half lane)²)₊ × cos(heading error)₊ × progress₊, rewards a centred, aligned
    car scaled by forward progress, so a car parked on the lane centre earns nothing. Both are
    averaged over the decision. Writes the weighted ``terms``, ``reward``, ``terminated`` and
    ``truncated``, and updates the episode's ``crashed``, ``offroad`` and ``prev_controls``.
    """
    B, frames = trace.shape[1], trace.shape[2]
    for b in range(B):
        keep = 0.0
        progress = 0.0
        changes = 0.0
        lane = float(lane_before[b])
        off = False
        for f in range(frames):
            p = min(max(trace[layout.TRACE_ALONG, b, f] / reward_speed, -1.0), 1.0)
            r = trace[layout.TRACE_OFFSET, b, f] / half_lane
            centred = max(0.0, 1.0 - r * r)
            aligned = max(0.0, math.cos(trace[layout.TRACE_HEADING_ERROR, b, f]))
            keep += centred * aligned * max(p, 0.0)
            progress += p
            changes += abs(trace[layout.TRACE_LANE, b, f] - lane)
            lane = trace[layout.TRACE_LANE, b, f]
            off = off or trace[layout.TRACE_OFFROAD, b, f] > 0.0
        crashed[b] = crashed[b] or trace[layout.TRACE_CRASHED, b, frames - 1] > 0.0
        offroad[b] = offroad[b] or off
        comfort = 0.0
        for k in range(2):
            control = applied[k, b] / control_scale[k]
            comfort += (control - prev_controls[k, b]) ** 2
            prev_controls[k, b] = control
        terms[TERM.lane_keeping, b] = keep / frames
        terms[TERM.progress, b] = progress / frames
        terms[TERM.collision, b] = 1.0 if crashed[b] else 0.0
        terms[TERM.offroad, b] = 1.0 if offroad[b] and not crashed[b] else 0.0
        terms[TERM.lane_change, b] = changes
        terms[TERM.comfort, b] = comfort
        total = 0.0
        for t in range(terms.shape[0]):
            terms[t, b] *= weights[t]
            total += terms[t, b]
        reward[b] = total
        terminated[b] = crashed[b] or offroad[b]
        truncated[b] = clock[b] >= duration - 1e-9 and not terminated[b]


@kernel
def _report(F, I, index, lane_width, start_s, crashed, offroad, out, worlds):
    """The info values (rows ``INFO``) of the ``worlds`` (bool ``(B,)``) into ``out``, from the
    world's state arrays and its :class:`LaneIndex` (named, or a plain tuple: cheaper to pass)."""
    index = LaneIndex(*index)
    for b in range(F.shape[1]):
        if not worlds[b]:
            continue
        lane = I[LANE, b, 0]
        speed = F[layout.SPEED, b, 0]
        gap, leader_speed = ego_leader(F, I, index, b)
        closing = speed - leader_speed
        out[INFO.crashed, b] = 1.0 if crashed[b] else 0.0
        out[INFO.offroad, b] = 1.0 if offroad[b] else 0.0
        out[INFO.speed, b] = speed
        out[INFO.lane, b] = lane
        out[INFO.lane_offset, b] = F[layout.D, b, 0] - (lane + 0.5) * lane_width
        err = F[layout.HEADING, b, 0] - F[layout.ROAD_HEADING, b, 0]
        out[INFO.heading_error, b] = wrap_angle(err)
        # Along its lanes: s restarts past a closed road's seam, PASSED carries on.
        out[INFO.distance, b] = F[layout.S, b, 0] + F[layout.PASSED, b, 0] - start_s[b]
        out[INFO.headway, b] = gap / speed if speed > 0.1 else np.inf
        out[INFO.time_to_collision, b] = gap / closing if closing > 1e-6 else np.inf
        # Traffic cars that collided without the ego this episode (each collision once).
        out[INFO.traffic_collisions, b] = I[layout.CRASHES_WITHOUT_EGO, b].sum()
