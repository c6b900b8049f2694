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
from dataclasses import dataclass

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
from lanesim.envs.core import INFO_FIELDS, DrivingCore
from lanesim.envs.netobs import NetworkKinematics
from lanesim.envs.options import NETWORK_REWARD_TERMS, OptionError, Options, build_network
from lanesim.sim import netrun
from lanesim.sim.conflicts import LaneGraph
from lanesim.sim.jit import kernel
from lanesim.sim.memory import check_memory
from lanesim.sim.models import EgoModel
from lanesim.sim.netego import RouteArrays
from lanesim.sim.netstep import NetParams, NetState
from lanesim.sim.network import Network
from lanesim.sim.state import COMMAND_LANE, COMMAND_SPEED

# Info on a network: the one-road fields (``lane`` is the global lane id, ``distance`` the
# metres made along the route), then how much of the route is done (0 to 1) and whether the
# ego has arrived.
NETWORK_INFO_FIELDS = (*INFO_FIELDS, "route_progress", "arrived")
_BOOL_INFO = ("crashed", "offroad", "arrived")
_INT_INFO = ("lane", "traffic_collisions")
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

    def reset(self, worlds: np.ndarray) -> None:
        w = self.world
        w.command[COMMAND_LANE, worlds] = w.lane[worlds, 0]
        nearest = np.abs(self.speeds[None, :] - w.speed[worlds, :1]).argmin(axis=1)
        self.speed_index[worlds] = nearest
        w.command[COMMAND_SPEED, worlds] = self.speeds[nearest]

    @property
    def target_lane(self) -> np.ndarray:
        return self.world.command[COMMAND_LANE].astype(np.int64)

    def set(self, actions, batched: bool) -> None:
        a = integer_actions(actions, 5, self.world.B, batched)
        w = self.world
        _network_meta(a, self.speed_index, self.speeds, w.lane, w.neighbours, w.command)
        w.autopilot[:] = True


@kernel
def _network_meta(actions, speed_index, speeds, lane, neighbours, command):
    """Apply meta ``actions`` ``(B,)``: the target lane becomes a neighbour of the ego's lane
    (``neighbours`` ``(lanes, 2)``: left, right; -1 none), the target speed a step of
    ``speeds``."""
    for b in range(actions.shape[0]):
        a = actions[b]
        # The target follows the ego's own lane; a change asks for its neighbour.
        target = lane[b, 0]
        if a == LANE_LEFT or a == LANE_RIGHT:
            side = 0 if a == LANE_LEFT else 1
            if neighbours[target, side] >= 0:
                target = neighbours[target, side]
        elif int(command[COMMAND_LANE, b]) != lane[b, 0]:
            # A change under way: keep its target while it is the ego's neighbour.
            t = int(command[COMMAND_LANE, b])
            if neighbours[lane[b, 0], 0] == t or neighbours[lane[b, 0], 1] == t:
                target = t
        command[COMMAND_LANE, b] = target
        dv = 1 if a == FASTER else (-1 if a == SLOWER else 0)
        speed_index[b] = min(max(speed_index[b] + dv, 0), speeds.shape[0] - 1)
        command[COMMAND_SPEED, b] = speeds[speed_index[b]]


@dataclass(frozen=True)
class NetworkScene:
    """A snapshot of one network world for model-based planners: what ``env.unwrapped.scene()``
    returns on a road network (:class:`lanesim.envs.driving.Scene` is the one-road one).

    Attributes:
        time: s since the reset.
        state: the world's :class:`~lanesim.sim.netstep.NetState`, copied, as a batch of one
            (world 0; entity 0 the ego): positions, lanes and lane coordinates, speeds,
            traffic's IDM parameters and exits (``dest``, a column of ``graph.dist``).
        network: the roads (:class:`~lanesim.sim.network.Network`).
        graph: its lane graph and conflicts (:class:`~lanesim.sim.conflicts.LaneGraph`).
        routes: the ego's routes (:class:`~lanesim.sim.netego.RouteArrays`); it follows
            route ``goal``.
        goal: the index of the ego's route in ``routes``.
        params: the traffic models' values (:class:`~lanesim.sim.netstep.NetParams`).
        ego_target_lane, ego_target_speed: the meta action's targets (global lane id, m/s);
            None for the other action types.
        ego_model: the ego's :class:`~lanesim.sim.models.EgoModel`.
    """

    time: float
    state: NetState
    network: Network
    graph: LaneGraph
    routes: RouteArrays
    goal: int
    params: NetParams
    ego_target_lane: int | None
    ego_target_speed: float | None
    ego_model: EgoModel


def network_scene_of(core: NetworkCore, b: int) -> NetworkScene:
    """The :class:`NetworkScene` of world ``b`` of ``core``."""
    w = core.world
    B = w.B
    rows = []
    for a in w.state:
        if a.ndim >= 1 and a.shape[0] == B:
            rows.append(a[b:b + 1].copy())
        else:  # (2, B): the applied controls
            rows.append(a[:, b:b + 1].copy())
    meta = isinstance(core.action, NetworkMetaActions)
    return NetworkScene(
        time=float(w.time[b]),
        state=NetState(*rows),
        network=w.network,
        graph=w.graph,
        routes=w.routes,
        goal=int(w.goal_of[b]),
        params=w.params,
        ego_target_lane=int(w.command[COMMAND_LANE, b]) if meta else None,
        ego_target_speed=float(w.command[COMMAND_SPEED, b]) if meta else None,
        ego_model=w.run_spec.ego,
    )


def make_network_action(options: Options, world):
    if options.action == "meta":
        return NetworkMetaActions(options, world)
    return {"discrete": DiscreteActions, "continuous": ContinuousActions}[options.action](
        options, world)


def make_network_observation(options: Options, world):
    if options.observation == "kinematics":
        return NetworkKinematics(options, world)
    from lanesim.envs.netpixels import NetworkOccupancy, NetworkPixels

    return {"occupancy": NetworkOccupancy, "pixels": NetworkPixels}[options.observation](
        options, world)


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
        check_memory(
            n_worlds * netrun.bytes_per_world(options, self.spec),
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
        em = self.spec.ego
        self._control_scale = np.array([em.max_steer, em.max_accel + em.max_brake])

    def reset(self, worlds: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        w = self.world
        w.reset(worlds, seeds)
        self.action.reset(worlds)
        self.prev_controls[:, worlds] = 0.0
        for a in (self.crashed, self.offroad, self.arrived, self.wrong):
            a[worlds] = False
        self.terms[:, worlds] = 0.0
        self.decisions[worlds] = 0
        self.distance[worlds] = 0.0
        self._report(worlds)
        return self.observation.reset(worlds)

    def step(self, actions, on_frame: Callable[[], None] | None = None, batched: bool = True):
        self.action.set(actions, batched)
        w = self.world
        if on_frame is None:
            trace = w.advance(self.frames)
        else:
            parts = []
            for _ in range(self.frames):
                parts.append(w.advance(1).copy())
                on_frame()
            trace = np.concatenate(parts, axis=2)
        o = self.options
        _score_network(trace, w.applied, self.weights, o.reward_speed * w.dt, self._control_scale,
                       o.duration, w.clock, self.prev_controls, self.crashed, self.offroad,
                       self.arrived, self.wrong, self.distance, self.terms, self.reward,
                       self.terminated, self.truncated)
        self.decisions += 1
        if self.max_episode_steps is not None:
            self.truncated |= self.decisions >= self.max_episode_steps
        self._report(np.ones(self.B, dtype=bool))
        obs = self.observation()
        return obs, self.reward.copy(), self.terminated.copy(), self.truncated.copy()

    def _report(self, worlds: np.ndarray) -> None:
        w = self.world
        r = self.report
        gap, leader_speed = w.leader_of_ego()
        speed = w.speed[:, 0]
        closing = speed - leader_speed
        with np.errstate(divide="ignore", invalid="ignore"):
            headway = np.where(speed > 0.1, gap / np.maximum(speed, 1e-9), np.inf)
            ttc = np.where(closing > 1e-6, gap / np.maximum(closing, 1e-12), np.inf)
        total = w.route_length
        done = np.where(total > 0, self.distance / np.where(total > 0, total, 1.0), 0.0)
        rows = {
            "crashed": self.crashed,
            "offroad": self.offroad,
            "speed": speed,
            "lane": w.lane[:, 0],
            "lane_offset": w.offset[:, 0],
            "heading_error": w.heading_error(),
            "distance": self.distance,
            "headway": headway,
            "time_to_collision": ttc,
            "traffic_collisions": w.traffic_collisions(),
            "route_progress": np.clip(done, 0.0, 1.0),
            "arrived": self.arrived,
        }
        for name, value in rows.items():
            r[getattr(NINFO, name), worlds] = np.asarray(value, dtype=np.float64)[worlds]

    def info(self) -> dict:
        rows = self.report.copy()
        out = {"rewards": dict(zip(NETWORK_REWARD_TERMS, self.terms.copy(), strict=True))}
        for name, row in zip(NETWORK_INFO_FIELDS, rows, strict=True):
            out[name] = row.astype(bool) if name in _BOOL_INFO else (
                row.astype(np.int64) if name in _INT_INFO else row
            )
        return out

    def info_of(self, b: int) -> dict:
        out = dict(zip(NETWORK_INFO_FIELDS, self.report[:, b].tolist(), strict=True))
        for name in _BOOL_INFO:
            out[name] = bool(out[name])
        for name in _INT_INFO:
            out[name] = int(out[name])
        out["rewards"] = dict(zip(NETWORK_REWARD_TERMS, self.terms[:, b].tolist(), strict=True))
        return out


@kernel
def _score_network(trace, applied, weights, step_scale, control_scale, duration, clock,
                   prev_controls, crashed, offroad, arrived, wrong, distance, terms, reward,
                   terminated, truncated):
    """Reward terms of one decision from the ego's ``trace`` ``(netrun.N_NET_TRACE, B,
    frames)``, as on one road with the route for the road: per simulation step, progress is the
    metres made along the route over ``step_scale`` (``reward_speed × dt``) within [-1, 1]; lane
    keeping (1 - (offset / half lane)²)₊ × cos(heading error)₊ × progress₊ relative to the lane
    the ego is in; lane changes count moves to a neighbouring lane of the same road (not the
    step from a lane onto its successor). Arrival and a wrong turn score 1 (times their weight)
    on the decision they happen and end the episode, as a collision or leaving the road does.
    """
    B, frames = trace.shape[1], trace.shape[2]
    for b in range(B):
        keep = 0.0
        progress = 0.0
        changes = 0.0
        off = False
        came = False
        wrong_now = False
        for f in range(frames):
            made = trace[netrun.NT_ALONG, b, f]
            distance[b] += made
            p = min(max(made / step_scale, -1.0), 1.0)
            r = trace[netrun.NT_OFFSET, b, f] / trace[netrun.NT_HALF_LANE, b, f]
            centred = max(0.0, 1.0 - r * r)
            aligned = max(0.0, math.cos(trace[netrun.NT_HEADING_ERROR, b, f]))
            keep += centred * aligned * max(p, 0.0)
            progress += p
            changes += trace[netrun.NT_CHANGE, b, f]
            off = off or trace[netrun.NT_OFFROAD, b, f] > 0.0
            came = came or trace[netrun.NT_ARRIVED, b, f] > 0.0
            wrong_now = wrong_now or trace[netrun.NT_WRONG_TURN, b, f] > 0.0
        crashed[b] = crashed[b] or trace[netrun.NT_CRASHED, b, frames - 1] > 0.0
        offroad[b] = offroad[b] or off
        arrived[b] = arrived[b] or (came and not crashed[b] and not offroad[b])
        wrong[b] = wrong[b] or (wrong_now and not crashed[b] and not offroad[b])
        comfort = 0.0
        for k in range(2):
            control = applied[k, b] / control_scale[k]
            comfort += (control - prev_controls[k, b]) ** 2
            prev_controls[k, b] = control
        terms[NTERM.lane_keeping, b] = keep / frames
        terms[NTERM.progress, b] = progress / frames
        terms[NTERM.collision, b] = 1.0 if crashed[b] else 0.0
        terms[NTERM.offroad, b] = 1.0 if offroad[b] and not crashed[b] else 0.0
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
