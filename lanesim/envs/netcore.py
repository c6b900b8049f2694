"""The Gymnasium-facing core on a road network: :class:`NetworkCore` is :class:`DrivingCore`'s
counterpart for scenarios with a ``network``, with the same interface, so that the single and
the vector environment run either.

What differs from one road: the ego drives a route from its start lane to a goal lane (drawn
per episode from ``ego_start_lanes`` and ``goals``); progress is the distance it makes along that
route; lane keeping is relative to the lane it is in; arriving at the goal ends the episode with
the ``arrival`` term, a wrong turn (onto a lane from which the goal cannot be reached) with the
``wrong_turn`` term; observations are in the ego's frame (:mod:`lanesim.envs.netobs`).
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Callable

import numpy as np
from gymnasium import spaces

from lanesim.envs.actions import (
    FASTER,
    LANE_LEFT,
    LANE_RIGHT,
    SLOWER,
    ContinuousActions,
    DiscreteActions,
    integer_actions,
)
from lanesim.envs.core import (
    INFO_FIELDS,
    DrivingCore,
    advance_traced,
    batch_info,
    world_info,
)
from lanesim.envs.netobs import NetworkKinematics
from lanesim.envs.options import NETWORK_REWARD_TERMS, OptionError, Options, build_network
from lanesim.sim import netrun
from lanesim.sim import netstep as nt
from lanesim.sim.jit import compiled_for, kernel
from lanesim.sim.memory import check_memory
from lanesim.sim.state import COMMAND_LANE, COMMAND_SPEED

# Info on a network: the one-road fields (``lane`` is the global lane id, ``distance`` the
# metres made along the route), then how much of the route is done (0 to 1) and whether the
# ego has arrived.
NETWORK_INFO_FIELDS = (*INFO_FIELDS, "route_progress", "arrived")
NetInfoRows = namedtuple("NetInfoRows", NETWORK_INFO_FIELDS)
NetRewardRows = namedtuple("NetRewardRows", NETWORK_REWARD_TERMS)
NINFO = NetInfoRows(*range(len(NETWORK_INFO_FIELDS)))
NTERM = NetRewardRows(*range(len(NETWORK_REWARD_TERMS)))


class NetworkMetaActions:
    """``Discrete(5)`` meta actions on a network: LANE_LEFT / LANE_RIGHT move the target to the
    neighbouring lane of the ego's road that travels its way (where there is none, the target
    stays), FASTER / SLOWER step through ``meta_speeds``. The autopilot follows the target lane
    and, past its end, the route (:mod:`lanesim.sim.netego`)."""

    def __init__(self, options: Options, world) -> None:
        self.world = world
        self.space = spaces.Discrete(5)
        self.speeds = np.array(options.meta_speeds, dtype=np.float64)
        self.speed_index = np.zeros(world.B, dtype=np.int64)
        # The command kernel without numba's per-call dispatch (int64 actions, these arrays).
        self._command_args = (self.speed_index, self.speeds, world.lane, world.neighbours,
                              world.command)
        self._command = compiled_for(_network_meta, np.zeros(world.B, dtype=np.int64),
                                     *self._command_args)

    def reset(self, worlds: np.ndarray) -> None:
        w = self.world
        rows = slice(None) if worlds.all() else worlds  # basic indexing where it can
        w.command[COMMAND_LANE, rows] = w.lane[rows, 0]
        nearest = np.abs(self.speeds[None, :] - w.speed[rows, :1]).argmin(axis=1)
        self.speed_index[rows] = nearest
        w.command[COMMAND_SPEED, rows] = self.speeds[nearest]

    @property
    def target_lane(self) -> np.ndarray:
        return self.world.command[COMMAND_LANE].astype(np.int64)

    def set(self, actions, batched: bool) -> None:
        a = integer_actions(actions, 5, self.world.B, batched)
        self._command(a, *self._command_args)
        self.world.autopilot[:] = True


@kernel
def _network_meta(actions, speed_index, speeds, lane, neighbours, command):
    """Apply meta ``actions`` ``(B,)``: the target lane becomes a neighbour of the ego's lane
    (``neighbours`` ``(lanes, 2)``: left, right; -1 none), the target speed a step of
    ``speeds``."""
    for b in range(actions.shape[0]):
        a = actions[b]
        # The target follows the ego's own lane; a change asks for its neighbour. Off the
        # network (the episode has ended) the targets stay.
        target = lane[b, 0]
        if target < 0:
            target = int(command[COMMAND_LANE, b])
            if target < 0:
                continue
        if a == LANE_LEFT or a == LANE_RIGHT:
            side = 0 if a == LANE_LEFT else 1
            if neighbours[target, side] >= 0:
                target = neighbours[target, side]
        elif lane[b, 0] >= 0 and int(command[COMMAND_LANE, b]) != lane[b, 0]:
            # A change under way: keep its target while it is the ego's neighbour.
            t = int(command[COMMAND_LANE, b])
            if neighbours[lane[b, 0], 0] == t or neighbours[lane[b, 0], 1] == t:
                target = t
        command[COMMAND_LANE, b] = target
        dv = 1 if a == FASTER else (-1 if a == SLOWER else 0)
        speed_index[b] = min(max(speed_index[b] + dv, 0), speeds.shape[0] - 1)
        command[COMMAND_SPEED, b] = speeds[speed_index[b]]


def make_network_action(options: Options, world):
    if options.action == "meta":
        return NetworkMetaActions(options, world)
    return {"discrete": DiscreteActions, "continuous": ContinuousActions}[options.action](
        options, world)


def make_network_observation(options: Options, world):
    if options.observation == "kinematics":
        return NetworkKinematics(options, world)
    from lanesim.envs.netcamera import NetworkBirdseye, NetworkCamera
    from lanesim.envs.netpixels import NetworkOccupancy, NetworkPixels

    return {"occupancy": NetworkOccupancy, "pixels": NetworkPixels, "camera": NetworkCamera,
            "birdseye": NetworkBirdseye}[options.observation](options, world)


def make_core(options: Options, n_worlds: int, max_episode_steps: int | None = None):
    """The core for ``options``: :class:`NetworkCore` with a ``network``, else
    :class:`~lanesim.envs.core.DrivingCore`."""
    cls = NetworkCore if options.network is not None else DrivingCore
    return cls(options, n_worlds, max_episode_steps)


class NetworkCore:
    """``B`` worlds on a road network behind one action, observation and reward definition;
    the interface of :class:`~lanesim.envs.core.DrivingCore`."""

    def __init__(self, options: Options, n_worlds: int,
                 max_episode_steps: int | None = None) -> None:
        self.options = options
        self.max_episode_steps = max_episode_steps
        self.network = build_network(options.network)
        self.spec = netrun.build_net_spec(options, self.network)
        shared = 0.0
        if options.observation in ("camera", "birdseye"):  # the ground map, at most this big
            from lanesim.camera.netraster import MAX_TEXELS

            shared = 4 / 3 * MAX_TEXELS * (3 if options.camera_color else 1)
        check_memory(
            n_worlds * netrun.bytes_per_world(options, self.spec) + shared,
            f"{n_worlds:,} worlds of {1 + options.vehicles} entities with "
            f"{options.observation} observations",
            "use fewer environments, vehicles or a smaller observation",
            OptionError,
        )
        self.world = netrun.NetRun(self.spec, n_worlds)
        self.B = n_worlds
        self.action = make_network_action(options, self.world)
        self.observation = make_network_observation(options, self.world)
        self.weights = np.array([options.rewards[t] for t in NETWORK_REWARD_TERMS])
        self.frames = options.frames_per_decision
        self.prev_controls = np.zeros((2, n_worlds))
        self.crashed = np.zeros(n_worlds, dtype=bool)
        self.offroad = np.zeros(n_worlds, dtype=bool)
        self.arrived = np.zeros(n_worlds, dtype=bool)
        self.wrong = np.zeros(n_worlds, dtype=bool)
        self.terms = np.zeros((len(NETWORK_REWARD_TERMS), n_worlds))
        self.reward = np.zeros(n_worlds)
        self.terminated = np.zeros(n_worlds, dtype=bool)
        self.truncated = np.zeros(n_worlds, dtype=bool)
        self.decisions = np.zeros(n_worlds, dtype=np.int64)
        self.report = np.zeros((len(NETWORK_INFO_FIELDS), n_worlds))
        self.distance = np.zeros(n_worlds)  # m along the route since the reset
        # m of route made since the reset, and its most so far: progress pays new ground only
        # (_score_network).
        self.made = np.zeros(n_worlds)
        self.best = np.zeros(n_worlds)
        self._every = np.ones(n_worlds, dtype=bool)
        em = self.spec.ego
        self._control_scale = np.array([em.max_steer, em.max_accel + em.max_brake])
        # Both kernels without numba's per-call dispatch: every call passes the same arrays
        # (and a float trace, a bool mask, floats).
        w, o = self.world, options
        self._score_args = (
            w.applied, self.weights, o.reward_speed * w.dt, self._control_scale, o.duration,
            w.clock, self.prev_controls, self.crashed, self.offroad, self.arrived, self.wrong,
            self.distance, self.made, self.best, self.terms, self.reward, self.terminated,
            self.truncated)
        self._score = compiled_for(_score_network, np.zeros((nt.N_NET_TRACE, n_worlds, 0)),
                                   *self._score_args)
        self._report_args = (
            w.speed, w.lane, w.offset, w.scratch.lead, w.scratch.lead_gap,
            w.ego_route_features(), w.traffic_crashes, self.crashed, self.offroad, self.arrived,
            self.distance, w.route_length, self.report)
        self._report_kernel = compiled_for(_network_report, *self._report_args, self._every)

    def reset(self, worlds: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        w = self.world
        w.reset(worlds, seeds)
        self.action.reset(worlds)
        # Every world (a single env's reset): basic indexing, cheaper than a mask.
        rows = slice(None) if worlds.all() else worlds
        self.prev_controls[:, rows] = 0.0
        for a in (self.crashed, self.offroad, self.arrived, self.wrong):
            a[rows] = False
        self.terms[:, rows] = 0.0
        self.decisions[rows] = 0
        self.distance[rows] = 0.0
        self.made[rows] = 0.0
        self.best[rows] = 0.0
        self._report(worlds)
        return self.observation.reset(worlds)

    def step(self, actions, on_frame: Callable[[], None] | None = None, batched: bool = True):
        self.action.set(actions, batched)
        w = self.world
        trace = advance_traced(w, self.frames, on_frame)
        self._score(trace, *self._score_args)
        self.decisions += 1
        if self.max_episode_steps is not None:
            self.truncated |= self.decisions >= self.max_episode_steps
        self._report(self._every)
        obs = self.observation()
        if not batched:  # the single env turns them into Python scalars at once
            return obs, self.reward, self.terminated, self.truncated
        return obs, self.reward.copy(), self.terminated.copy(), self.truncated.copy()

    def _report(self, worlds: np.ndarray) -> None:
        self._report_kernel(*self._report_args, np.ascontiguousarray(worlds, dtype=bool))

    def info(self) -> dict:
        return batch_info(self.report, self.terms, NETWORK_INFO_FIELDS, NETWORK_REWARD_TERMS)

    def info_of(self, b: int) -> dict:
        return world_info(self.report, self.terms, b, NETWORK_INFO_FIELDS,
                          NETWORK_REWARD_TERMS)


@kernel
def _score_network(trace, applied, weights, step_scale, control_scale, duration, clock,
                   prev_controls, crashed, offroad, arrived, wrong, distance, made, best, terms,
                   reward, terminated, truncated):
    """Reward terms of one decision from the ego's ``trace`` ``(netstep.N_NET_TRACE, B,
    frames)``, as on one road with the route for the road: per simulation step, progress is
    the metres of *new* route made over ``step_scale`` (``reward_speed × dt``), at most 1,
    or the metres lost over ``step_scale``, at least -1; lane keeping (1 - (offset / half
    lane)²)₊ × cos(heading error)₊ × progress₊ relative to the lane the ego is in; lane changes
    count moves to a neighbouring lane of the same road (not the step from a lane onto its
    successor). Arrival and a wrong turn score 1 (times their weight) on the decision they
    happen and end the episode, as a collision or leaving the road does; the first of these
    events in a decision ends its scoring (an arrival is not undone by a later frame).

    Progress cannot be farmed: ``made`` is the route made since the reset (m) and ``best`` its
    most; ground lost (driving back, or round a roundabout again past the exit) costs once,
    and earns nothing again until the ego is past its best.
    """
    B, frames = trace.shape[1], trace.shape[2]
    for b in range(B):
        keep = 0.0
        progress = 0.0
        changes = 0.0
        ended = crashed[b] or offroad[b] or arrived[b] or wrong[b]
        count = 0
        for f in range(frames):
            if ended:
                break
            count += 1
            step = trace[nt.NT_ALONG, b, f]
            distance[b] += step
            made[b] += step
            if step < 0.0:
                p = max(step / step_scale, -1.0)
            else:
                p = min(max(made[b] - best[b], 0.0) / step_scale, 1.0)
            best[b] = max(best[b], made[b])
            r = trace[nt.NT_OFFSET, b, f] / trace[nt.NT_HALF_LANE, b, f]
            centred = max(0.0, 1.0 - r * r)
            aligned = max(0.0, math.cos(trace[nt.NT_HEADING_ERROR, b, f]))
            keep += centred * aligned * max(p, 0.0)
            progress += p
            changes += trace[nt.NT_CHANGE, b, f]
            if trace[nt.NT_CRASHED, b, f] > 0.0:
                crashed[b] = ended = True
            elif trace[nt.NT_OFFROAD, b, f] > 0.0:
                offroad[b] = ended = True
            elif trace[nt.NT_ARRIVED, b, f] > 0.0:
                arrived[b] = ended = True
            elif trace[nt.NT_WRONG_TURN, b, f] > 0.0:
                wrong[b] = ended = True
        n = max(count, 1)
        comfort = 0.0
        for k in range(2):
            control = applied[k, b] / control_scale[k]
            comfort += (control - prev_controls[k, b]) ** 2
            prev_controls[k, b] = control
        terms[NTERM.lane_keeping, b] = keep / n
        terms[NTERM.progress, b] = progress / n
        terms[NTERM.collision, b] = 1.0 if crashed[b] else 0.0
        terms[NTERM.offroad, b] = 1.0 if offroad[b] else 0.0
        terms[NTERM.lane_change, b] = changes
        terms[NTERM.comfort, b] = comfort
        terms[NTERM.arrival, b] = 1.0 if arrived[b] else 0.0
        terms[NTERM.wrong_turn, b] = 1.0 if wrong[b] else 0.0
        total = 0.0
        for t in range(terms.shape[0]):
            terms[t, b] *= weights[t]
            total += terms[t, b]
        reward[b] = total
        terminated[b] = crashed[b] or offroad[b] or arrived[b] or wrong[b]
        truncated[b] = clock[b] >= duration - 1e-9 and not terminated[b]


@kernel
def _network_report(speed, lane, offset, lead, lead_gap, features, traffic_crashes, crashed,
                    offroad, arrived, distance, route_length, out, worlds):
    """The info values (rows ``NINFO``) of the ``worlds`` (bool ``(B,)``) into ``out``: the
    ego's state, its leader along its route (gap and time gaps; inf without one), the route
    made (``distance`` m, ``route_progress`` its fraction of the route at the reset, 0 to 1)."""
    for b in range(speed.shape[0]):
        if not worlds[b]:
            continue
        v = speed[b, 0]
        j = lead[b, 0]
        gap = lead_gap[b, 0]
        closing = v - (speed[b, j] if j >= 0 else 0.0)
        out[NINFO.crashed, b] = 1.0 if crashed[b] else 0.0
        out[NINFO.offroad, b] = 1.0 if offroad[b] else 0.0
        out[NINFO.speed, b] = v
        out[NINFO.lane, b] = lane[b, 0]
        out[NINFO.lane_offset, b] = offset[b, 0]
        out[NINFO.heading_error, b] = features[b, 3]
        out[NINFO.distance, b] = distance[b]
        # Off the network the ego follows no one (the leader search runs on its lanes).
        led = j >= 0 and lane[b, 0] >= 0
        out[NINFO.headway, b] = gap / v if v > 0.1 and led else np.inf
        out[NINFO.time_to_collision, b] = gap / closing if closing > 1e-6 and led else np.inf
        out[NINFO.traffic_collisions, b] = traffic_crashes[b]
        done = distance[b] / route_length[b] if route_length[b] > 0.0 else 0.0
        out[NINFO.route_progress, b] = min(max(done, 0.0), 1.0)
        out[NINFO.arrived, b] = 1.0 if arrived[b] else 0.0
